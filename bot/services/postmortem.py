"""The postmortem draft of an incident, in Markdown: what a person needs to start writing it.

Summary (service, severity, lead, state), the impact window (started, detected, acknowledged,
mitigated, resolved) with the time to restore and the failed deployment recovery time
(``bot.core.rules``), the causing deploy with its commits and their lead times, the full timeline
with who did what, the follow-ups with their state, and the headings still to write. Served by
``/incident postmortem`` (a file in the card's thread) and ``GET /api/v1/incidents/{id}/postmortem``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, select

from bot.core import rules
from bot.core.incident_events import EventKind
from bot.core.timeutil import format_duration
from bot.services.lifecycle import followups_of
from bot.services.lookup import find_incident
from bot.store.models import Deploy, DeployCommit, Incident, IncidentEvent, IncidentFollowup, Service

WHAT = {
    EventKind.DECLARED: "declared", EventKind.ACKNOWLEDGED: "acknowledged", EventKind.UPDATE: "update",
    EventKind.CAUSE: "linked the cause", EventKind.ROLLBACK: "rolled back", EventKind.MITIGATED: "mitigated",
    EventKind.RESOLVED: "resolved", EventKind.CANCELLED: "cancelled", EventKind.SEVERITY: "severity",
    EventKind.CORRECTED: "corrected", EventKind.LEAD: "lead", EventKind.NOTE: "note", EventKind.FOLLOWUP: "follow-up",
    EventKind.FOLLOWUP_DONE: "follow-up done", EventKind.CHANNEL: "channel", EventKind.POSTMORTEM: "postmortem",
}


@dataclass
class Postmortem:
    incident: Incident
    service: str
    cause: Deploy | None
    commits: list[tuple[DeployCommit, float | None]]
    events: list[IncidentEvent]
    followups: list[IncidentFollowup]


def gather(session: Session, ref: str) -> Postmortem:
    incident = find_incident(session, ref)
    service = session.get(Service, incident.service_id).name
    cause = session.get(Deploy, incident.caused_by_id) if incident.caused_by_id else None
    commits = []
    if cause is not None:
        rows = session.exec(select(DeployCommit).where(DeployCommit.deploy_id == cause.id).order_by(DeployCommit.id)).all()
        commits = [(c, rules.lead_seconds(cause.deployed_at, c.committed_at)) for c in rows]
    events = list(session.exec(
        select(IncidentEvent).where(IncidentEvent.incident_id == incident.id, IncidentEvent.kind != EventKind.SNOOZED)
        .order_by(IncidentEvent.at, IncidentEvent.id)
    ).all())
    return Postmortem(incident, service, cause, commits, events, followups_of(session, incident.id))


def _at(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S UTC") if value else "—"


def _who(user: str | None) -> str:
    return f"@{user}" if user else "someone"


def _one_line(text: str | None) -> str:
    """User text on one Markdown line (no line breaks that would start a heading or a list)."""
    return " ".join((text or "").split()).replace("|", "\\|")


_USER_MENTION = re.compile(r"<@([UW][A-Z0-9]+)(?:\|[^<>]*)?>")
_CHANNEL_MENTION = re.compile(r"<#([CG][A-Z0-9]+)(?:\|([^<>]*))?>")


def _as_text(text: str, incident: Incident) -> str:
    """Slack's mention markup in timeline text (the lead, a follow-up's owner, the incident channel)
    as a reader of the Markdown file reads it: ``@U…`` and ``#name``."""
    def channel(m: re.Match) -> str:
        name = m.group(2) or (incident.channel_name if m.group(1) == incident.channel_id else None)
        return "#" + (name or m.group(1))
    return _CHANNEL_MENTION.sub(channel, _USER_MENTION.sub(r"@\1", text))


def render(pm: Postmortem) -> str:
    i = pm.incident
    recovered = rules.recovery_instant(i.mitigated_at, i.resolved_at)
    lines = [
        f"# Postmortem (draft): INC-{i.id} {_one_line(i.title)}",
        "",
        "## Summary",
        "",
        f"- **Service:** `{pm.service}` ({i.environment})",
        f"- **Severity:** {i.severity.upper()}",
        f"- **State:** {i.state}" + (f" ({_one_line(i.cancel_reason)})" if i.cancel_reason else ""),
        f"- **Lead:** {_who(i.lead) if i.lead else 'none assigned'}",
        f"- **Declared by:** {_who(i.declared_by)}",
    ]
    if i.resolution_note:
        lines.append(f"- **Resolution:** {_one_line(i.resolution_note)}")
    lines += [
        "",
        "## Impact window",
        "",
        "| | When |",
        "|---|---|",
        f"| Started | {_at(i.started_at)} |",
        f"| Detected (declared) | {_at(i.declared_at)} |",
        f"| Acknowledged | {_at(i.acknowledged_at)} |",
        f"| Mitigated | {_at(i.mitigated_at)} |",
        f"| Resolved | {_at(i.resolved_at)} |",
        "",
        f"- **Time to restore:** {format_duration(rules.restore_seconds(i.started_at, i.mitigated_at, i.resolved_at))}"
        + ("" if recovered else " (not restored yet)"),
        f"- **Time to acknowledge:** {format_duration(rules.ack_seconds(i.started_at, i.acknowledged_at))}",
    ]
    cause_at = pm.cause.deployed_at if pm.cause else None
    fdrt = rules.recovery_seconds(i.started_at, i.mitigated_at, i.resolved_at, cause_at)
    lines.append(f"- **Failed deployment recovery time:** {format_duration(fdrt)}" + ("" if pm.cause else " (no causing deploy linked)"))
    lines += ["", "## Causing deploy", ""]
    if pm.cause is None:
        lines.append("No causing deploy is linked" + (" (recorded as not caused by a change)." if i.not_caused_by_change else "."))
    else:
        d = pm.cause
        lines.append(f"D-{d.id} `{_one_line(d.version)}` to {d.environment} at {_at(d.deployed_at)} ({d.status})"
                     + (f": {_one_line(d.note)}" if d.note else ""))
        lines.append("")
        if pm.commits:
            lines += ["| Commit | Committed | Lead time |", "|---|---|---|"]
            lines += [f"| `{c.sha[:12]}` | {_at(c.committed_at)} | {format_duration(lead)} |" for c, lead in pm.commits]
        else:
            lines.append("No commits were recorded with this deploy.")
    lines += ["", "## Timeline", ""]
    for e in pm.events:
        what = WHAT.get(e.kind, e.kind)
        text = _as_text(_one_line(e.text), pm.incident)
        entry = f"- {_at(e.at)} · {_who(e.actor)} · {what}" + (f": {text}" if text else "")
        if e.url:
            entry += f" ([message]({e.url}))"
        lines.append(entry)
    lines += ["", "## Follow-ups", ""]
    if not pm.followups:
        lines.append("None recorded yet (`/incident followup INC-%d <text>`)." % i.id)
    for f in pm.followups:
        state = f"done {_at(f.done_at)} by {_who(f.done_by)}" if f.done_at else "open"
        owner = f" ({_who(f.owner)})" if f.owner else ""
        lines.append(f"- [{'x' if f.done_at else ' '}] F-{f.id} {_one_line(f.text)}{owner}: {state}")
    lines += ["", "## What happened", "", "_To write._", "", "## What went well, what went wrong", "", "_To write._", ""]
    return "\n".join(lines)


def markdown(session: Session, ref: str) -> str:
    return render(gather(session, ref))


def summary(pm: Postmortem) -> str:
    """The reply to ``/incident postmortem``: what the draft says, in a few lines (plain text: the
    Slack adapter escapes it and shows the lead as a mention)."""
    i = pm.incident
    ttr = format_duration(rules.restore_seconds(i.started_at, i.mitigated_at, i.resolved_at))
    cause = (f"D-{pm.cause.id} {pm.cause.version} ({len(pm.commits)} commit{'s' if len(pm.commits) != 1 else ''})" if pm.cause
             else "none linked")
    open_f = sum(1 for f in pm.followups if f.done_at is None)
    return "\n".join([
        f"INC-{i.id} {i.title} · {i.severity.upper()} · lead {('@' + i.lead) if i.lead else 'none'}",
        f"Impact: started {_at(i.started_at)}, mitigated {_at(i.mitigated_at)}, resolved {_at(i.resolved_at)}; time to restore {ttr}",
        f"Causing deploy: {cause} · timeline: {len(pm.events)} entries · follow-ups: {len(pm.followups)} ({open_f} open)",
    ])
