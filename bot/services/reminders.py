"""Incident reminders: nudge when nobody acknowledged, and keep asking for updates until resolved.

* ``ack``: once an incident has waited ``DORA_ACK_REMINDER`` without acknowledgement (or when a
  snooze ends and it still is not acknowledged), then again every ``DORA_UPDATE_REMINDER`` for as
  long as nobody acknowledges it;
* ``update``: once acknowledged and while unresolved, every ``DORA_UPDATE_REMINDER`` after the
  last activity (a state change, an update, or the previous reminder).

Each reminder is a row unique on (incident, kind, due time), written with its outbox message, so
it is posted once whatever runs the job; snoozing pushes the next due time out; resolved
incidents get none.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import String, cast, exists, func, literal, or_
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from bot.core.errors import ValidationError
from bot.core.incident_events import EventKind
from bot.services import outbox
from bot.services.lookup import find_incident
from bot.store.models import Incident, IncidentEvent, IncidentReminder, OutboxMessage, SlackMessage

SNOOZE_CHOICES = (30, 60, 240)  # minutes, the buttons on a reminder


def due_reminders(
    session: Session, *, now: datetime, ack_after: timedelta, update_every: timedelta
) -> list[tuple[Incident, str, datetime]]:
    out = []
    # Only incidents with a card (posted, or waiting in the outbox): a reminder goes in the card's
    # thread, and an imported history's old open incidents, or ones declared with no alert channel
    # set, have none.
    has_card = or_(
        exists().where(SlackMessage.kind == "incident", SlackMessage.object_id == Incident.id),
        exists().where(
            OutboxMessage.key == literal("incident:") + cast(Incident.id, String),
            OutboxMessage.kind == outbox.Kind.CARD_POST, col(OutboxMessage.status).in_(outbox.WAITING),
        ),
    )
    incidents = session.exec(
        select(Incident).where(col(Incident.resolved_at).is_(None), col(Incident.status).is_(None), has_card).order_by(Incident.id)
    ).all()
    for incident in incidents:
        snooze = incident.snoozed_until
        if incident.acknowledged_at is None:
            # counted from when the last reminder went out, so a job that ran late sends one, not a burst
            last_ack = session.exec(
                select(func.max(IncidentReminder.created_at))
                .where(IncidentReminder.incident_id == incident.id, IncidentReminder.kind == "ack")
            ).one()
            due = incident.declared_at + ack_after if last_ack is None else last_ack + update_every
            if snooze and snooze > due:
                due = snooze
            if due <= now:
                out.append((incident, "ack", due))
            continue
        last_event = session.exec(
            select(func.max(IncidentEvent.at)).where(IncidentEvent.incident_id == incident.id, IncidentEvent.kind != EventKind.SNOOZED)
        ).one()
        last_reminder = session.exec(
            select(func.max(IncidentReminder.created_at))
            .where(IncidentReminder.incident_id == incident.id, IncidentReminder.kind == "update")
        ).one()
        base = max(t for t in (last_event, last_reminder, incident.acknowledged_at) if t is not None)
        due = base + update_every
        if snooze and snooze > due:
            due = snooze
        if due <= now:
            out.append((incident, "update", due))
    return out


def record_reminder(session: Session, incident: Incident, kind: str, due_at: datetime, *, now: datetime) -> bool:
    """Write the reminder and its outbox message; False if this one was already sent."""
    try:
        with session.begin_nested():
            session.add(IncidentReminder(incident_id=incident.id, kind=kind, due_at=due_at, created_at=now))
            session.flush()
    except IntegrityError:
        return False
    outbox.enqueue(
        session, kind=outbox.Kind.REMINDER_POST, key=outbox.card_key("incident", incident.id),
        payload={"incident": incident.id, "reminder": kind}, now=now,
    )
    return True


def snooze(session: Session, *, ref: str, minutes: int, now: datetime, actor: str | None) -> Incident:
    if minutes not in SNOOZE_CHOICES and not 1 <= minutes <= 24 * 60:
        raise ValidationError("snooze between 1 minute and 24 hours")
    incident = find_incident(session, ref, for_update=True)
    incident.snoozed_until = now + timedelta(minutes=minutes)
    session.add(incident)
    session.add(IncidentEvent(incident_id=incident.id, at=now, kind=EventKind.SNOOZED, actor=actor,
                              text=f"reminders snoozed for {minutes}m"))
    session.flush()
    return incident

