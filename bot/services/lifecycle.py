"""The incident lifecycle beyond declare/ack/mitigate/resolve: lead, notes, follow-ups, the
dedicated channel, the postmortem draft and the PagerDuty hand-off (README "Incident lifecycle").

Every use-case runs inside the caller's transaction and queues what it causes in the outbox with
it (``bot.services.outbox``): a thread line and a card refresh, a channel to create, a file to
upload, a PagerDuty event to send. Only the outbox worker talks to Slack or PagerDuty.

The deployment's choices (``DORA_INCIDENT_CHANNELS``, ``PAGERDUTY_*``) are installed per engine
by the runtime (``install``); ``after_change`` applies them to every incident change, called by
the outbox with the change's own thread line (``outbox.incident_event``) or new card
(``outbox.announce_incident``), so an incident reaching the paging severity, however it got
there (Slack, the API, Alertmanager), is paged once, and resolved with it.
"""

from __future__ import annotations

import re
import threading
import unicodedata
import weakref
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from bot.core import rules
from bot.core.errors import NotFound, StateError
from bot.core.incident_events import EventKind
from bot.core.inputs import SEVERITIES, check_slack_user, check_text, check_url
from bot.services import outbox
from bot.services.lookup import find_incident, incident_ref
from bot.store.models import Incident, IncidentEvent, IncidentFollowup, Service

CHANNEL_NAME_MAX = 80  # https://docs.slack.dev/reference/methods/conversations.create ("name": at most 80 characters)
CHANNEL_LEVELS = ("none", "sev1", "sev2", "all")
PAGED_TRIGGERED = "triggered"
PAGED_RESOLVED = "resolved"


# --- the deployment's choices, per engine ----------------------------------------------------

@dataclass(frozen=True)
class Policy:
    incident_channels: str = "none"  # none | sev1 | sev2 | all
    paging: bool = False  # PAGERDUTY_ROUTING_KEY is set
    paging_severity: str = "sev2"


_policies: "weakref.WeakKeyDictionary[Engine, Policy]" = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def install(engine: Engine, settings) -> Policy:
    """Apply these settings to every incident change made on ``engine`` (the runtime calls it)."""
    policy = Policy(
        incident_channels=getattr(settings, "incident_channels", "none"),
        paging=bool(getattr(settings, "pagerduty_routing_key", None)),
        paging_severity=getattr(settings, "pagerduty_min_severity", "sev2"),
    )
    with _lock:
        _policies[engine] = policy
    return policy


def uninstall(engine: Engine) -> None:
    """Back to the defaults (no paging, no channels) for ``engine``."""
    with _lock:
        _policies.pop(engine, None)


def policy_for(session: Session) -> Policy:
    bind = session.get_bind()
    engine = getattr(bind, "engine", bind)
    with _lock:
        return _policies.get(engine) or Policy()


def at_or_above(severity: str, threshold: str) -> bool:
    """``sev1`` is the highest: is ``severity`` at least as severe as ``threshold``?"""
    if threshold == "all":
        return True
    if threshold == "none" or threshold not in SEVERITIES or severity not in SEVERITIES:
        return False
    return SEVERITIES.index(severity) <= SEVERITIES.index(threshold)


def is_live(incident: Incident) -> bool:
    return incident.resolved_at is None and rules.counts(incident.status)


def after_change(session: Session, incident_id: int, *, now: datetime, declared: bool = False, severity_changed: bool = False) -> None:
    """What the deployment's policy asks of an incident that just changed (or was declared).

    The dedicated channel comes with a declaration at or above ``DORA_INCIDENT_CHANNELS``, or with
    a severity change that brings a live, not yet mitigated incident there (a sev3 raised to sev1
    gets its war room as a sev1 declared would). Paging, likewise, is for an incident whose impact
    is not over (not mitigated); an incident from PagerDuty is not paged back."""
    policy = policy_for(session)
    incident = session.get(Incident, incident_id)
    if incident is None:
        return
    if policy.paging and not rules.came_from_pagerduty(incident.external_id):
        if incident.paged is None and is_live(incident) and incident.mitigated_at is None \
                and at_or_above(incident.severity, policy.paging_severity):
            incident.paged = PAGED_TRIGGERED
            session.add(incident)
            outbox.enqueue(session, kind=outbox.Kind.PAGERDUTY, key=pagerduty_key(incident.id),
                           payload={"id": incident.id, "action": "trigger"}, now=now)
        elif incident.paged == PAGED_TRIGGERED and not is_live(incident):
            incident.paged = PAGED_RESOLVED
            session.add(incident)
            outbox.enqueue(session, kind=outbox.Kind.PAGERDUTY, key=pagerduty_key(incident.id),
                           payload={"id": incident.id, "action": "resolve"}, now=now)
    raised = severity_changed and incident.mitigated_at is None
    if (declared or raised) and is_live(incident) and incident.channel_name is None \
            and at_or_above(incident.severity, policy.incident_channels):
        _queue_channel(session, incident, now=now)


def pagerduty_key(incident_id: int) -> str:
    return f"pagerduty:{incident_id}"


def dedup_key(incident_id: int) -> str:
    """The PagerDuty dedup key: one alert per incident, resolved by the same key."""
    return f"dora-bot-INC-{incident_id}"


# --- timeline entries ------------------------------------------------------------------------

def _event(session: Session, incident: Incident, *, now: datetime, kind: str, actor: str | None, text: str | None = None,
           url: str | None = None) -> IncidentEvent:
    event = IncidentEvent(incident_id=incident.id, at=now, kind=kind, actor=actor, text=text, url=url)
    session.add(event)
    session.flush()
    return event


def _announce(session: Session, incident: Incident, event: IncidentEvent, *, now: datetime) -> None:
    outbox.incident_event(session, incident.id, event.id, now=now)


@dataclass
class Outcome:
    incident: Incident
    changed: bool
    message: str | None = None

    @property
    def ref(self) -> str:
        return incident_ref(self.incident)


def set_lead(session: Session, *, ref: str, user: str, now: datetime, actor: str | None, only_if_none: bool = False) -> Outcome:
    """Make ``user`` the incident lead; the timeline keeps the change (old -> new).

    ``only_if_none`` (the card's **I'm the lead**): a second click, or a click after someone else
    took it, changes nothing and says who leads.
    """
    user = check_slack_user(user, "lead")
    incident = find_incident(session, ref, for_update=True)
    iref = incident_ref(incident)
    if incident.lead == user:
        return Outcome(incident, False, f"<@{user}> already leads {iref}.")
    if only_if_none and incident.lead is not None:
        return Outcome(incident, False, f"<@{incident.lead}> already leads {iref}.")
    if not is_live(incident):
        return Outcome(incident, False, f"{iref} is {incident.state}; it needs no lead now.")
    old, incident.lead = incident.lead, user
    session.add(incident)
    if incident.channel_id is not None:  # the new lead joins the incident's channel
        outbox.enqueue(session, kind=outbox.Kind.CHANNEL_CREATE, key=outbox.card_key("incident", incident.id),
                       payload={"id": incident.id, "invite_only": True}, now=now)
    text = f"<@{old}> -> <@{user}>" if old else f"<@{user}>"
    _announce(session, incident, _event(session, incident, now=now, kind=EventKind.LEAD, actor=actor, text=text), now=now)
    return Outcome(incident, True)


def add_note(session: Session, *, ref: str, text: str, now: datetime, actor: str | None, url: str | None = None) -> Outcome:
    """A timeline entry: typed (``/incident note``) or a Slack message with its permalink."""
    text = check_text(text, "note", required=True)
    if url is not None:
        url = check_url(url)
    incident = find_incident(session, ref)
    event = _event(session, incident, now=now, kind=EventKind.NOTE, actor=actor, text=text, url=url)
    _announce(session, incident, event, now=now)
    return Outcome(incident, True)


# --- follow-ups ------------------------------------------------------------------------------

def add_followup(session: Session, *, ref: str, text: str, now: datetime, actor: str | None, owner: str | None = None) -> IncidentFollowup:
    text = check_text(text, "note", required=True)
    owner = check_slack_user(owner, "owner") if owner else (actor if actor and re.match(r"^[UW]", actor) else None)
    incident = find_incident(session, ref)
    followup = IncidentFollowup(incident_id=incident.id, text=text, owner=owner, created_by=actor, created_at=now)
    session.add(followup)
    session.flush()
    label = f"F-{followup.id} " + (f"(<@{owner}>) " if owner else "") + text
    _announce(session, incident, _event(session, incident, now=now, kind=EventKind.FOLLOWUP, actor=actor, text=label), now=now)
    return followup


def complete_followup(session: Session, *, followup_id: int, now: datetime, actor: str | None) -> tuple[IncidentFollowup, bool]:
    query = select(IncidentFollowup).where(IncidentFollowup.id == followup_id).with_for_update()
    followup = session.exec(query).first()
    if followup is None:
        raise NotFound(f"No follow-up F-{followup_id}.")
    if followup.done_at is not None:
        return followup, False
    followup.done_at, followup.done_by = now, actor
    session.add(followup)
    incident = session.get(Incident, followup.incident_id)
    event = _event(session, incident, now=now, kind=EventKind.FOLLOWUP_DONE, actor=actor, text=f"F-{followup.id} {followup.text}")
    _announce(session, incident, event, now=now)
    return followup, True


def open_followups(session: Session, *, owner: str | None = None, limit: int = 500) -> list[tuple[IncidentFollowup, Incident]]:
    query = (
        select(IncidentFollowup, Incident)
        .join(Incident, Incident.id == IncidentFollowup.incident_id)
        .where(col(IncidentFollowup.done_at).is_(None))
    )
    if owner is not None:
        query = query.where(IncidentFollowup.owner == owner)
    return [(f, i) for f, i in session.exec(query.order_by(IncidentFollowup.id).limit(limit)).all()]


def followups_of(session: Session, incident_id: int) -> list[IncidentFollowup]:
    return list(session.exec(
        select(IncidentFollowup).where(IncidentFollowup.incident_id == incident_id).order_by(IncidentFollowup.id)
    ).all())


def led_by(session: Session, user: str, *, limit: int = 20) -> list[tuple[Incident, str]]:
    """Open incidents ``user`` leads (App Home)."""
    query = (
        select(Incident, Service.name)
        .join(Service, Service.id == Incident.service_id)
        .where(Incident.lead == user, col(Incident.resolved_at).is_(None), col(Incident.status).is_(None))
        .order_by(Incident.severity, Incident.started_at)
        .limit(limit)
    )
    return [(i, name) for i, name in session.exec(query).all()]


# --- the dedicated channel -------------------------------------------------------------------

def channel_slug(title: str) -> str:
    """Slack's channel-name rules: lowercase letters, digits, ``-`` and ``_`` (no spaces or dots)."""
    ascii_title = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9_-]+", "-", ascii_title.lower())
    return re.sub(r"-{2,}", "-", slug).strip("-_")


def channel_name(incident_id: int, title: str, *, suffix: int = 1) -> str:
    """``inc-<n>-<slug of title>``, at most 80 characters; ``suffix`` > 1 for a name clash (``-2``)."""
    head = f"inc-{incident_id}"
    tail = f"-{suffix}" if suffix > 1 else ""
    slug = channel_slug(title)
    room = CHANNEL_NAME_MAX - len(head) - len(tail) - 1
    slug = slug[:room].rstrip("-_") if room > 0 else ""
    return f"{head}-{slug}{tail}" if slug else f"{head}{tail}"


def _queue_channel(session: Session, incident: Incident, *, now: datetime) -> None:
    incident.channel_name = channel_name(incident.id, incident.title)
    session.add(incident)
    outbox.enqueue(session, kind=outbox.Kind.CHANNEL_CREATE, key=outbox.card_key("incident", incident.id),
                   payload={"id": incident.id}, now=now)


def request_channel(session: Session, *, ref: str, now: datetime, actor: str | None) -> Outcome:
    """Ask for the incident's own channel (created, and the card posted there, by the outbox worker)."""
    incident = find_incident(session, ref, for_update=True)
    iref = incident_ref(incident)
    if incident.channel_id is not None:
        return Outcome(incident, False, f"{iref} already has its channel: <#{incident.channel_id}>.")
    if incident.channel_name is not None:
        return Outcome(incident, False, f"The channel of {iref} is being created (#{incident.channel_name}).")
    if not is_live(incident):
        raise StateError(f"{iref} is {incident.state}; a channel is for an incident still being worked on.")
    _queue_channel(session, incident, now=now)
    return Outcome(incident, True)


# --- the postmortem draft --------------------------------------------------------------------

def request_postmortem(session: Session, *, ref: str, now: datetime, actor: str | None) -> Outcome:
    """Queue the postmortem draft as a file in the card's thread (rendered when it is sent)."""
    incident = find_incident(session, ref)
    event = _event(session, incident, now=now, kind=EventKind.POSTMORTEM, actor=actor, text="postmortem draft")
    outbox.enqueue(session, kind=outbox.Kind.POSTMORTEM_POST, key=outbox.card_key("incident", incident.id),
                   payload={"id": incident.id, "event": event.id}, now=now)
    return Outcome(incident, True)
