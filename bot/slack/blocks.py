"""Block Kit builders: pure functions from domain objects to ``(text, blocks)`` or a view.

Every message sets a plain ``text`` too (notifications, screen readers). Slack's limits are kept
here: at most 50 blocks per message and 100 per view, 3000 characters per section text,
150 per header, 75 per button text and option, 24 per view title
(https://docs.slack.dev/reference/block-kit/blocks, .../block-elements/button-element,
.../surfaces/modals).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Sequence

from slack_sdk.models.blocks import (
    ActionsBlock,
    ButtonElement,
    ConfirmObject,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    InputBlock,
    MarkdownTextObject,
    Option,
    PlainTextInputElement,
    PlainTextObject,
    SectionBlock,
    StaticSelectElement,
)

from bot.core.incident_events import EventKind
from bot.core.inputs import is_link
from bot.core.report_text import (
    BENCHMARK_NOTE,
    FACTORS,
    FIVE_KEYS,
    RESTORE_TITLE,
    counted,
    local_zone,
    sample_text,
    scope_label,
    value_text,
    window_end,
)
from bot.core.rules import deployed_after_start
from bot.core.timeutil import format_duration
from bot.slack.ids import Action, Block, View
from bot.store.models import Deploy, Incident, IncidentEvent

MAX_MESSAGE_BLOCKS = 50
MAX_VIEW_BLOCKS = 100
SECTION_TEXT = 3000
HEADER_TEXT = 150
BUTTON_TEXT = 75
OPTION_TEXT = 75

SEVERITY_ICON = {"sev1": ":red_circle:", "sev2": ":large_orange_circle:", "sev3": ":large_yellow_circle:", "sev4": ":white_circle:"}
STATE_ICON = {
    "open": ":rotating_light:", "acknowledged": ":eyes:", "mitigated": ":adhesive_bandage:", "resolved": ":white_check_mark:",
    "cancelled": ":no_entry_sign:",
}
TIER_ICON = {
    "elite": ":star2:", "high": ":large_green_circle:", "medium": ":large_yellow_circle:", "low": ":red_circle:", None: ":white_circle:",
}


_MENTION_RE = re.compile(r"(<[@#][UWCGD][A-Z0-9]+>)")
_SLACK_USER_RE = re.compile(r"^[UW][A-Z0-9]{2,}$")


def typed_in_slack(origin: str | None) -> bool:
    """Whether text was typed by a Slack user: a record's ``source`` ("slack") or an actor's user id.

    Only such text may keep its ``<@U123>``/``<#C123>`` mentions; text from the API, the import,
    Alertmanager or GitHub is shown literally, so it can never ping anyone.
    """
    return origin == "slack" or bool(origin and _SLACK_USER_RE.match(origin))


def esc(text: str | None, *, mentions: bool = False) -> str:
    """Every piece of text a card shows goes through here: ``&``, ``<`` and ``>`` escaped for
    Slack's mrkdwn, so nothing can become a link, a mention or ``@channel``.

    ``mentions=True`` (text a Slack user typed, see ``typed_in_slack``, and the bot's own
    messages) keeps ``<@U123>``/``<#C123>`` user and channel mentions; ``<!channel>``,
    ``<!here>`` and links are escaped whatever the origin
    (https://docs.slack.dev/messaging/formatting-message-text#escaping).
    """
    if not text:
        return ""
    parts = _MENTION_RE.split(text) if mentions else [text]
    return "".join(
        part if i % 2 else part.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        for i, part in enumerate(parts)
    )


def link(url: str | None, label: str) -> str:
    """The one way a card links: ``<url|label>`` for a URL ``check_url`` accepts, else the label alone.

    (A URL stored before the check existed, or read from elsewhere, is never sent raw.)
    """
    if not is_link(url):
        return esc(label)
    return f"<{url.replace('&', '&amp;')}|{esc(label)}>"


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def ts(value: datetime) -> str:
    """A Slack date token: shown in each reader's own time zone, with a UTC fallback."""
    epoch = int(value.timestamp())
    return f"<!date^{epoch}^{{date_short_pretty}} {{time}}|{value:%Y-%m-%d %H:%M} UTC>"


def md(text: str) -> SectionBlock:
    return SectionBlock(text=MarkdownTextObject(text=clip(text, SECTION_TEXT)))


def context(*parts: str) -> ContextBlock:
    return ContextBlock(elements=[MarkdownTextObject(text=clip(p, SECTION_TEXT)) for p in parts[:10]])


def header(text: str) -> HeaderBlock:
    return HeaderBlock(text=PlainTextObject(text=clip(text, HEADER_TEXT), emoji=True))


CONFIRM_TITLE, CONFIRM_TEXT, CONFIRM_BUTTON = 100, 300, 30  # https://docs.slack.dev/reference/block-kit/composition-objects/confirmation-dialog-object


def confirm(title: str, text: str, yes: str, *, style: str | None = None) -> ConfirmObject:
    """A Slack confirmation dialog (title 100, text 300, button labels 30 characters)."""
    return ConfirmObject(
        title=PlainTextObject(text=clip(title, CONFIRM_TITLE)), text=PlainTextObject(text=clip(text, CONFIRM_TEXT)),
        confirm=PlainTextObject(text=clip(yes, CONFIRM_BUTTON)), deny=PlainTextObject(text="Not now"), style=style,
    )


def button(text: str, action: str, value: str, *, style: str | None = None, confirm: ConfirmObject | None = None) -> ButtonElement:
    return ButtonElement(text=PlainTextObject(text=clip(text, BUTTON_TEXT), emoji=True), action_id=action, value=value, style=style,
                         confirm=confirm)


def dicts(blocks) -> list[dict]:
    out = [b.to_dict() if hasattr(b, "to_dict") else b for b in blocks]
    if len(out) > MAX_MESSAGE_BLOCKS:
        out = out[: MAX_MESSAGE_BLOCKS - 1] + [context(f"_{len(out) - MAX_MESSAGE_BLOCKS + 1} more not shown_").to_dict()]
    return out


def who(user: str | None) -> str:
    if not user:
        return "someone"
    return f"<@{user}>" if user[:1] in ("U", "W") else user


# --- errors and help ----------------------------------------------------------------------

def error_message(message: str, usage: str | None = None) -> tuple[str, list[dict]]:
    blocks = [md(f":warning: {esc(message, mentions=True)}")]
    if usage:
        blocks.append(context(esc(usage)))
    return f"Problem: {esc(message, mentions=True)}", dicts(blocks)


def help_message(title: str, usage: str) -> tuple[str, list[dict]]:
    return f"{title}: usage", dicts([md(f"*{title}*"), md(esc(usage))])


# --- deploys ------------------------------------------------------------------------------

def deploy_label(deploy: Deploy) -> str:
    return f"D-{deploy.id}"


def freeze_line(f, *, during: bool = False) -> str:
    """A deploy freeze (``bot.services.gate.Freeze``): what, until when, by whom, why (escaped)."""
    what = "*every service*" if f.service is None else f"`{f.service}`"
    until = f" until {ts(f.until)}" if f.until else " until unfrozen"
    why = f": {esc(f.reason, mentions=typed_in_slack(f.created_by))}" if f.reason else ""
    if during:
        return f":snowflake: Deployed during a freeze of {what} (set by {who(f.created_by)}{',' + until if f.until else ''}){why}"
    return f":snowflake: {what} is frozen{until} (by {who(f.created_by)}){why}"


def deploy_card(
    deploy: Deploy, service: str, *, commits: int = 0, open_incidents: Sequence[Incident] = (), rolled_back: Deploy | None = None,
    freezes: Sequence = (),
) -> tuple[str, list[dict]]:
    hotfix = deploy.rework and not deploy.rollback_of_id and not deploy.fixes_id
    kind = "Rollback" if deploy.rollback_of_id else ("Hotfix" if hotfix else "Deploy")
    icon = ":rewind:" if deploy.rollback_of_id else (":adhesive_bandage:" if hotfix or deploy.fixes_id else ":rocket:")
    slack_typed = typed_in_slack(deploy.source)
    line = f"{icon} *{kind} {deploy_label(deploy)}*: `{service}` *{esc(deploy.version)}* to *{deploy.environment}*"
    if deploy.status != "success":
        line += " (failed)"
    parts = [f"by {who(deploy.created_by)}", ts(deploy.deployed_at)]
    if commits:
        parts.append(f"{commits} commit{'s' if commits != 1 else ''}")
    if rolled_back is not None:
        parts.append(f"reverts {deploy_label(rolled_back)} ({esc(rolled_back.version)})")
    if deploy.fixes_id:
        parts.append(f"fixes INC-{deploy.fixes_id}")
    if deploy.url:
        parts.append(link(deploy.url, "pipeline"))
    blocks = [md(line)]
    if deploy.note:
        blocks.append(md(f">{esc(clip(deploy.note, 2000), mentions=slack_typed)}"))
    blocks.append(context(" · ".join(parts)))
    for f in freezes[:3]:  # the freezes that held when it was deployed
        blocks.append(md(freeze_line(f, during=True)))
    for inc in open_incidents[:5]:
        blocks.append(md(f":warning: `{service}` has an open incident: *INC-{inc.id}* {SEVERITY_ICON.get(inc.severity, '')} {inc.severity}"
                         f" {esc(clip(inc.title, 200), mentions=typed_in_slack(inc.source))}"))
    text = f"{kind} {deploy_label(deploy)}: {service} {esc(deploy.version)} to {deploy.environment}"
    return text, dicts(blocks)


def deploy_list(rows: Sequence[tuple[Deploy, str]]) -> tuple[str, list[dict]]:
    if not rows:
        return "No deploys recorded yet.", dicts([md("No deploys match. Record one with `/deploy &lt;service&gt; &lt;version&gt;`.")])
    lines = []
    for d, service in rows:
        flags = []
        if d.change_failure:
            flags.append(":boom: failure")
        if d.rollback_of_id:
            flags.append(f":rewind: rollback of D-{d.rollback_of_id}")
        if d.fixes_id:
            flags.append(f"fixes INC-{d.fixes_id}")
        elif d.rework and not d.rollback_of_id:
            flags.append("hotfix")
        if d.status != "success":
            flags.append("deploy failed")
        suffix = f"  _{', '.join(flags)}_" if flags else ""
        lines.append(f"*D-{d.id}* `{service}` {esc(clip(d.version, 60))} → {d.environment} · {ts(d.deployed_at)}{suffix}")
    body = "\n".join(lines)
    return f"{len(rows)} recent deploys", dicts([md(clip(body, SECTION_TEXT))])


# --- incidents ----------------------------------------------------------------------------

def incident_label(incident: Incident) -> str:
    return f"INC-{incident.id}"


def incident_card(
    incident: Incident,
    service: str,
    *,
    now: datetime,
    cause: Deploy | None = None,
    suspect: Deploy | None = None,
    rolled_back_by: Deploy | None = None,
) -> tuple[str, list[dict]]:
    """The incident card: state, severity, service, who, elapsed or time to restore, buttons."""
    state = incident.state
    title = f"{STATE_ICON[state]} {incident_label(incident)} {incident.title}"
    fields = [
        f"*Severity*\n{SEVERITY_ICON.get(incident.severity, '')} {incident.severity.upper()}",
        f"*Service*\n`{service}`",
        f"*State*\n{state.capitalize()}",
        f"*Declared by*\n{who(incident.declared_by)}",
        f"*Lead*\n{who(incident.lead) if incident.lead else '_none yet_'}",
    ]
    if state in ("resolved", "mitigated"):
        fields.append(f"*Time to restore*\n{format_duration(incident.restore_seconds)}")
        if state == "mitigated":  # impact is over, the incident is not closed yet
            fields.append(f"*Open for*\n{format_duration((now - incident.started_at).total_seconds())}")
    elif state == "cancelled":
        fields.append("*Cancelled*\nnot counted in any metric")
    else:
        fields.append(f"*Open for*\n{format_duration((now - incident.started_at).total_seconds())}")
    def cause_field(name: str, deploy: Deploy) -> str:
        field = f"*{name}*\nD-{deploy.id} {esc(clip(deploy.version, 40))}"
        if (late := deployed_after_start(deploy.deployed_at, incident.started_at)) is not None:
            field += f"\n:warning: deployed {format_duration(late)} after the incident started"
        return field

    if cause is not None:
        fields.append(cause_field("Caused by", cause))
    elif incident.not_caused_by_change:
        fields.append("*Caused by*\nnot a deploy")
    elif suspect is not None:
        fields.append(cause_field("Suspected deploy", suspect))
    section = SectionBlock(fields=[MarkdownTextObject(text=clip(f, 2000)) for f in fields[:10]])
    blocks = [header(title), section]
    facts = [f"Started {ts(incident.started_at)}"]
    if incident.acknowledged_at:
        facts.append(f"acknowledged by {who(incident.acknowledged_by)} {ts(incident.acknowledged_at)}")
    if incident.mitigated_at and incident.mitigated_at != incident.resolved_at:
        facts.append(f"mitigated {ts(incident.mitigated_at)}")
    if incident.resolved_at:
        facts.append(f"resolved by {who(incident.resolved_by)} {ts(incident.resolved_at)}")
    if rolled_back_by is not None:
        facts.append(f"rolled back by D-{rolled_back_by.id} ({esc(clip(rolled_back_by.version, 40))})")
    blocks.append(context(" · ".join(facts)))
    if incident.resolution_note:
        note = esc(clip(incident.resolution_note, 2500), mentions=typed_in_slack(incident.resolved_by))
        blocks.append(md(f"*Resolution:* {note}"))
    if incident.cancel_reason:
        blocks.append(md(f"*Cancelled:* {esc(clip(incident.cancel_reason, 2500))}"))
    if incident.channel_id:
        blocks.append(context(f"Incident channel: <#{incident.channel_id}>"))
    value = str(incident.id)
    if state not in ("resolved", "cancelled"):
        label = incident_label(incident)
        buttons = []
        if state == "open":
            buttons.append(button("Acknowledge", Action.ACK, value, style="primary"))
        if state in ("open", "acknowledged"):
            buttons.append(button("Mitigated", Action.MITIGATE, value, style="primary" if state == "acknowledged" else None))
        buttons.append(button("Resolve", Action.RESOLVE, value, style="primary" if state == "mitigated" else None, confirm=confirm(
            f"Resolve {label}?", "The incident is closed and its time to restore is fixed. Impact that has not ended "
            "yet ends now (use Mitigated if it is over but you are still watching).", "Resolve")))
        target = cause or suspect
        if target is not None and rolled_back_by is None:
            buttons.append(button(f"Roll back D-{target.id}", Action.ROLLBACK, value, style="danger", confirm=confirm(
                f"Roll back D-{target.id}?", f"Records a rollback of `{service}` to the version before D-{target.id} "
                f"and links D-{target.id} as the cause of {label} (a change failure).", "Roll back", style="danger")))
        buttons.append(button("Post update", Action.UPDATE, value))
        if not incident.lead:
            buttons.append(button("I'm the lead", Action.LEAD, value))
        buttons.append(button("Cancel", Action.CANCEL, value, confirm=confirm(
            f"Cancel {label}?", "For a false alarm or an incident declared by mistake: it is then counted in no metric. "
            "You will be asked why.", "Cancel it", style="danger")))
        blocks.append(ActionsBlock(block_id=Block.ACTIONS, elements=buttons))
    text = (f"{incident_label(incident)} [{incident.severity.upper()}] {service}:"
            f" {esc(incident.title, mentions=typed_in_slack(incident.source))} ({state})")
    return text, dicts(blocks)


EVENT_TEXT = {
    EventKind.DECLARED: ":rotating_light: Declared by {who}",
    EventKind.ACKNOWLEDGED: ":eyes: Acknowledged by {who}",
    EventKind.MITIGATED: ":adhesive_bandage: Mitigated by {who}",
    EventKind.RESOLVED: ":white_check_mark: Resolved by {who}",
    EventKind.CANCELLED: ":no_entry_sign: Cancelled by {who}",
    EventKind.SEVERITY: ":arrows_counterclockwise: {who} changed the severity",
    EventKind.UPDATE: ":speech_balloon: Update from {who}",
    EventKind.CAUSE: ":link: {who} linked the cause",
    EventKind.NOT_CAUSED: ":heavy_minus_sign: {who} answered",
    EventKind.ROLLBACK: ":rewind: {who} rolled back",
    EventKind.LEAD: ":bust_in_silhouette: {who} set the lead",
    EventKind.NOTE: ":pushpin: {who} added to the timeline",
    EventKind.FOLLOWUP: ":ballot_box_with_check: {who} recorded a follow-up",
    EventKind.FOLLOWUP_DONE: ":heavy_check_mark: {who} finished a follow-up",
    EventKind.CHANNEL: ":hash: Incident channel created",
    EventKind.POSTMORTEM: ":memo: {who} asked for the postmortem draft",
    EventKind.SERVICE: ":label: {who} changed the service's name",
}
BOT_TEXT = (EventKind.CHANNEL, EventKind.LEAD)  # text the bot wrote (mentions of users and channels)


def timeline_line(event: IncidentEvent, *, restore_seconds: float | None = None) -> str:
    line = EVENT_TEXT.get(event.kind, "{who}: " + event.kind).format(who=who(event.actor))
    if event.kind in (EventKind.MITIGATED, EventKind.RESOLVED) and restore_seconds is not None:
        line += f" after {format_duration(restore_seconds)}"
    if event.text and event.kind != EventKind.DECLARED:
        line += f": {esc(clip(event.text, 2500), mentions=event.kind in BOT_TEXT or typed_in_slack(event.actor))}"
    if getattr(event, "url", None):
        line += f" ({link(event.url, 'message')})"
    return line


def incident_list(rows: Sequence[tuple[Incident, str]], *, now: datetime) -> tuple[str, list[dict]]:
    if not rows:
        return "No open incidents.", dicts([md(":white_check_mark: No open incidents.")])
    lines = [
        f"{SEVERITY_ICON.get(i.severity, '')} *INC-{i.id}* `{service}` {esc(clip(i.title, 120), mentions=typed_in_slack(i.source))}"
        f" · {'' if i.state == 'open' else i.state + ', '}open for {format_duration((now - i.started_at).total_seconds())}"
        for i, service in rows
    ]
    return counted(len(rows), 'open incident'), dicts([md(clip("\n".join(lines), SECTION_TEXT))])


def incident_detail(
    incident: Incident, service: str, events: Sequence[IncidentEvent], *, now: datetime, cause: Deploy | None
) -> tuple[str, list[dict]]:
    text, blocks = incident_card(incident, service, now=now, cause=cause)
    blocks = [b for b in blocks if b.get("type") != "actions"]
    # The 30 newest events, oldest first, packed into as many sections as they need.
    recent = events[-30:]
    lines = [clip(f"{ts(e.at)} {timeline_line(e)}", SECTION_TEXT) for e in recent]
    if len(events) > len(recent):
        hidden = len(events) - len(recent)
        lines.insert(0, f"_{hidden} earlier event{'s' if hidden != 1 else ''} not shown_")
    if lines:
        blocks.append(DividerBlock().to_dict())
        chunk: list[str] = []
        for line in lines:
            if chunk and len("\n".join(chunk)) + 1 + len(line) > SECTION_TEXT:
                blocks.append(md("\n".join(chunk)).to_dict())
                chunk = []
            chunk.append(line)
        blocks.append(md("\n".join(chunk)).to_dict())
    return text, blocks


def _option(text: str, value: str) -> Option:
    return Option(text=PlainTextObject(text=clip(text, OPTION_TEXT)), value=value)


SEVERITY_OPTIONS = [
    ("sev1", "SEV1: critical, customers down"),
    ("sev2", "SEV2: major, degraded for many"),
    ("sev3", "SEV3: minor, some impact"),
    ("sev4", "SEV4: low, no customer impact"),
]


def declare_modal(
    *, services: Sequence[str], service: str | None = None, deploys: Sequence[Deploy] = (), channel: str | None = None,
    values: dict | None = None,
) -> dict:
    """The ``/incident`` form. Picking a service reloads the form with that service's deploys."""
    values = values or {}
    blocks = [
        InputBlock(
            block_id=Block.TITLE,
            label=PlainTextObject(text="What is happening?"),
            element=PlainTextInputElement(action_id="value", placeholder=PlainTextObject(text="Checkout returns 5xx"), max_length=300,
                                          initial_value=values.get("title") or None),
        )
    ]
    if services:
        # A static select holds at most 100 options (https://docs.slack.dev/reference/block-kit/block-elements/select-menu-element):
        # a service past those, or a new one, is typed into the field under it.
        options = [_option(s, s) for s in services[:100]]
        initial = next((o for o in options if o.value == service), None)
        blocks.append(
            InputBlock(
                block_id=Block.SERVICE,
                label=PlainTextObject(text="Service"),
                dispatch_action=True,
                optional=True,
                element=StaticSelectElement(action_id=Action.DECLARE_SERVICE, options=options, initial_option=initial,
                                            placeholder=PlainTextObject(text="Pick a service")),
            )
        )
        if service is None:  # once a service is picked, the form does not ask to type one as well
            blocks.append(
                InputBlock(
                    block_id=Block.NEW_SERVICE,
                    label=PlainTextObject(text="…or type its name"),
                    optional=True,
                    hint=PlainTextObject(text="For a service not in the list (a new one is created)."),
                    element=PlainTextInputElement(action_id="value", placeholder=PlainTextObject(text="checkout"), max_length=100,
                                                  initial_value=values.get("new_service") or None),
                )
            )
    else:
        blocks.append(
            InputBlock(
                block_id=Block.SERVICE,
                label=PlainTextObject(text="Service"),
                element=PlainTextInputElement(action_id="value", placeholder=PlainTextObject(text="checkout"), max_length=100),
            )
        )
    sev_options = [_option(label, value) for value, label in SEVERITY_OPTIONS]
    initial_sev = next((o for o in sev_options if o.value == values.get("severity", "sev2")), None)
    blocks.append(
        InputBlock(
            block_id=Block.SEVERITY,
            label=PlainTextObject(text="Severity"),
            element=StaticSelectElement(action_id="value", options=sev_options, initial_option=initial_sev),
        )
    )
    blocks.append(
        InputBlock(
            block_id=Block.STARTED,
            label=PlainTextObject(text="Started"),
            optional=True,
            hint=PlainTextObject(text="How long ago (15m, 2h) or an ISO time (2026-11-24T09:30Z). Empty: now."),
            element=PlainTextInputElement(action_id="value", placeholder=PlainTextObject(text="15m"), max_length=40,
                                          initial_value=values.get("started") or None),
        )
    )
    if deploys:
        dep_options = [_option(f"D-{d.id} {d.version} · {d.deployed_at:%b %d %H:%M}", str(d.id)) for d in deploys[:100]]
        blocks.append(
            InputBlock(
                block_id=Block.SUSPECT,
                label=PlainTextObject(text="Suspected deploy"),
                optional=True,
                element=StaticSelectElement(action_id="value", options=dep_options,
                                            placeholder=PlainTextObject(text="Pick a recent deploy")),
            )
        )
    elif service:
        blocks.append(context(f"No recent deploys of `{service}` to suspect."))
    return {
        "type": "modal",
        "callback_id": View.DECLARE,
        "private_metadata": channel or "",
        "title": {"type": "plain_text", "text": "Declare an incident"},
        "submit": {"type": "plain_text", "text": "Declare"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [b.to_dict() for b in blocks][:MAX_VIEW_BLOCKS],
    }


def modal_heading(incident: Incident, service: str) -> dict:
    """The first block of a modal about one incident: its number, service and title."""
    return md(f"*INC-{incident.id}* `{service}` {esc(clip(incident.title, 200), mentions=typed_in_slack(incident.source))}").to_dict()


def update_modal(incident: Incident, service: str) -> dict:
    return {
        "type": "modal",
        "callback_id": View.UPDATE,
        "private_metadata": str(incident.id),
        "title": {"type": "plain_text", "text": clip(f"Update INC-{incident.id}", 24)},
        "submit": {"type": "plain_text", "text": "Post update"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            modal_heading(incident, service),
            InputBlock(
                block_id=Block.UPDATE_TEXT,
                label=PlainTextObject(text="Update"),
                element=PlainTextInputElement(action_id="value", multiline=True, max_length=2000,
                                              placeholder=PlainTextObject(text="What changed, what's next")),
            ).to_dict(),
        ],
    }


# --- the five keys ------------------------------------------------------------------------

KEY_TITLES = FIVE_KEYS  # DORA's names, by factor (bot.core.report_text)
LOWER_IS_BETTER = {"lead_time", "failed_deployment_recovery_time", "change_failure_rate", "deployment_rework_rate", "time_to_restore"}
RATES = {"change_failure_rate", "deployment_rework_rate"}


def _value(key: str, m: dict, days: int = 30) -> str:
    return value_text(key, m, days=days, p90=False)  # the CLI's words: one wording everywhere


def _sample(key: str, m: dict) -> str:
    return f"n={sample_text(key, m)}"


def _headline(key: str, m: dict) -> float | None:
    if key == "deployment_frequency":
        return m["per_day"]
    if key in RATES:
        return m["rate"]
    return m["median_seconds"]


def _change(key: str, now: dict, before: dict | None) -> str:
    if before is None:
        return ""
    a, b = _headline(key, now), _headline(key, before)
    if a is None or b is None:
        return "vs previous: n/a"
    if a == b:
        return "vs previous: no change"
    better = a < b if key in LOWER_IS_BETTER else a > b
    arrow = ":arrow_up:" if a > b else ":arrow_down:"
    mark = "better" if better else "worse"
    if key in RATES:
        delta = f"{(a - b) * 100:+.1f} pts"
    elif key == "deployment_frequency":
        delta = f"{a - b:+.2f}/day"
    else:
        delta = ("+" if a > b else "-") + format_duration(abs(a - b))
    return f"{arrow} {delta} vs previous ({mark})"


def _key_blocks(key: str, title: str, m: dict, before: dict | None, days: int = 30) -> list:
    tier = m["tier"]
    line = f"{TIER_ICON[tier]} *{title}*: {_value(key, m, days)}"
    line += f" · *{tier}*" if tier else ""
    detail = [_sample(key, m)]
    change = _change(key, m, before)
    if change:
        detail.append(change)
    if m["reason"]:
        detail.append(f"_{m['reason']}_")
    return [md(line), context(" · ".join(detail))]


def dora_card(report: dict, previous: dict | None = None, *, title: str = "DORA five keys") -> tuple[str, list[dict]]:
    """The ``/dora`` card: the five keys grouped as DORA groups them (throughput, instability),
    each with its value, tier, sample size and change against the previous window; then time to
    restore over all incidents and the other facts as secondary lines.

    ``title``: what the card is (the digest calls itself "Weekly DORA digest").
    """
    scope = report["scope"]
    who_ = scope_label(scope, code=True)
    name = title
    blocks = [header(f"{name}: {scope_label(scope)}")]
    dates = f" · dates in {tz}" if (tz := local_zone(scope)) else ""
    blocks.append(context(f"Last {counted(scope['days'], 'day')} to {window_end(scope)}{dates} · {BENCHMARK_NOTE}"))
    summary = []
    for factor, keys in FACTORS:
        blocks.append(md(f"*{factor}*"))
        for key, title in keys:
            m = report[key]
            blocks.extend(_key_blocks(key, title, m, previous[key] if previous else None, scope["days"]))
            summary.append(f"{title} {_value(key, m, scope['days'])} ({m['tier'] or 'n/a'})")
    blocks.append(DividerBlock())
    ttr = report["time_to_restore"]
    blocks.extend(_key_blocks("time_to_restore", RESTORE_TITLE, ttr, previous["time_to_restore"] if previous else None, scope["days"]))
    extra = []
    if ttr["open_incidents"]:
        extra.append(f":rotating_light: {ttr['open_incidents']} open, oldest {format_duration(ttr['oldest_open_seconds'])}")
    cfr = report["change_failure_rate"]
    if cfr["unlinked_incidents"]:
        extra.append(f"{counted(cfr['unlinked_incidents'], 'incident')} not linked to a deploy")
    if cfr["not_change_incidents"]:
        extra.append(f"{counted(cfr['not_change_incidents'], 'incident')} not caused by a deploy")
    if report["mtta"]["median_seconds"] is not None:
        extra.append(f"time to acknowledge {format_duration(report['mtta']['median_seconds'])}")
    if extra:
        blocks.append(context(" · ".join(extra)))
    blocks.append(context("`/dora explain df|lt|cfr|rework|ttr` shows what was counted"))
    return f"{name} for {who_}: " + "; ".join(summary), dicts(blocks)


def reminder_message(
    incident: Incident, service: str, kind: str, *, now: datetime, snooze_choices: Sequence[int]
) -> tuple[str, list[dict]]:
    """A nudge in the card's thread with the next useful button and snooze buttons."""
    age = format_duration((now - incident.started_at).total_seconds())
    if kind == "ack":
        line = f":alarm_clock: *INC-{incident.id}* `{service}` has been open for {age} and nobody has acknowledged it."
        first = button("Acknowledge", Action.ACK, str(incident.id), style="primary")
    else:
        line = f":alarm_clock: *INC-{incident.id}* is still open after {age}. Post an update so everyone knows where it stands."
        first = button("Post update", Action.UPDATE, str(incident.id), style="primary")
    snoozes = [button(f"Snooze {format_duration(m * 60)}", f"{Action.SNOOZE}_{m}", f"{incident.id}:{m}") for m in snooze_choices]
    return f"Reminder: INC-{incident.id} {incident.state} for {age}", dicts([md(line), ActionsBlock(elements=[first, *snoozes])])


def explain_message(head: str, lines: Sequence[str], note: str, *, limit: int) -> tuple[str, list[dict]]:
    """``/dora explain``: what one key counted, one line per deploy, commit or incident."""
    lines = list(lines) or ["_nothing counted in this window_"]
    shown = f" Showing at most {limit}." if len(lines) >= limit else ""
    return head.replace("*", ""), dicts([md(head), md("\n".join(lines)), context(note + shown)])


def key_line(report: dict) -> str:
    """One line of a report's five keys with their tiers."""
    return " · ".join(f"*{title}* {_value(key, report[key])} ({report[key]['tier'] or 'n/a'})" for key, title in KEY_TITLES.items())


def home_view(org: dict, mine: Sequence[tuple[str, dict]], open_incidents: Sequence[tuple[Incident, str]], *, now: datetime,
              freezes: Sequence = ()) -> dict:
    """App Home: the org's four keys, one line per service of the viewer, the open incidents, the freezes."""
    _, blocks = dora_card(org)
    if freezes:
        blocks.append(header("Deploy freezes").to_dict())
        blocks.append(md(clip("\n".join(freeze_line(f) for f in freezes), SECTION_TEXT)).to_dict())
    if mine:
        blocks.append(header("Your services").to_dict())
        for name, report in mine:
            parts = [f"*{title}* {_value(key, report[key], report['scope']['days'])} ({report[key]['tier'] or 'n/a'})"
                     for key, title in KEY_TITLES.items()]
            blocks.append(md(f"`{name}`\n" + " · ".join(parts)).to_dict())
    blocks.append(header("Open incidents").to_dict())
    blocks.extend(incident_list(open_incidents, now=now)[1])
    blocks.append({"type": "actions", "elements": [button("Refresh", Action.HOME_REFRESH, "refresh").to_dict()]})
    return {"type": "home", "blocks": blocks[:MAX_VIEW_BLOCKS]}
