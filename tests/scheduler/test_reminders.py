"""Incident reminders: due times, once each, snooze, and none after resolve."""

from datetime import datetime, timedelta, timezone

from sqlmodel import select

from bot.core.inputs import IncidentInput
from bot.services import outbox, reminders
from bot.services.incidents import acknowledge_incident, declare_incident, post_update, resolve_incident
from bot.store.db import session_scope
from bot.store.models import OutboxMessage, SlackMessage

UTC = timezone.utc
T0 = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
ACK, UPDATE = timedelta(minutes=15), timedelta(hours=1)


def declare(engine, at=T0, *, card=True) -> int:
    """An incident, with its card posted in the alert channel (reminders go in the card's thread)."""
    with session_scope(engine) as s:
        incident = declare_incident(s, data=IncidentInput(service="checkout", started_at=at, severity="sev2", title="5xx"), now=at,
                                    source="slack", actor="U1").incident
        if card:
            s.add(SlackMessage(kind="incident", object_id=incident.id, channel="C_ALERTS", ts="1.0", created_at=at))
        return incident.id


def due(engine, now):
    with session_scope(engine) as s:
        return [(i.id, kind, at) for i, kind, at in reminders.due_reminders(s, now=now, ack_after=ACK, update_every=UPDATE)]


def send(engine, now) -> int:
    sent = 0
    with session_scope(engine) as s:
        for incident, kind, at in reminders.due_reminders(s, now=now, ack_after=ACK, update_every=UPDATE):
            sent += reminders.record_reminder(s, incident, kind, at, now=now)
    return sent


def test_ack_reminder_after_the_configured_wait_and_only_once(engine):
    inc = declare(engine)
    assert due(engine, T0 + timedelta(minutes=14)) == []
    assert due(engine, T0 + timedelta(minutes=15)) == [(inc, "ack", T0 + ACK)]
    assert send(engine, T0 + timedelta(minutes=15)) == 1
    assert send(engine, T0 + timedelta(minutes=16)) == 0  # the same reminder is never sent twice
    with session_scope(engine) as s:
        assert [m.kind for m in s.exec(select(OutboxMessage)).all()] == ["reminder.post"]


def test_an_unacknowledged_incident_keeps_being_reminded_every_update_interval(engine):
    inc = declare(engine)
    assert send(engine, T0 + ACK) == 1
    assert due(engine, T0 + ACK + UPDATE - timedelta(minutes=1)) == []
    assert due(engine, T0 + ACK + UPDATE) == [(inc, "ack", T0 + ACK + UPDATE)]
    assert send(engine, T0 + ACK + UPDATE) == 1
    # a job that runs late (the bot was down) sends the one reminder that is due, and the next
    # comes an interval after that one went out, not one per missed hour
    assert due(engine, T0 + ACK + 5 * UPDATE) == [(inc, "ack", T0 + ACK + 2 * UPDATE)]
    assert send(engine, T0 + ACK + 5 * UPDATE) == 1
    assert due(engine, T0 + ACK + 5 * UPDATE + timedelta(minutes=1)) == []
    with session_scope(engine) as s:
        acknowledge_incident(s, ref=f"INC-{inc}", now=T0 + ACK + 5 * UPDATE, actor="U2")
    # acknowledged: from now on update reminders, an interval after the acknowledgement
    assert due(engine, T0 + ACK + 6 * UPDATE - timedelta(minutes=1)) == []
    assert due(engine, T0 + ACK + 6 * UPDATE) == [(inc, "update", T0 + ACK + 6 * UPDATE)]


def test_update_reminders_repeat_after_last_activity_until_resolved(engine):
    inc = declare(engine)
    with session_scope(engine) as s:
        acknowledge_incident(s, ref=f"INC-{inc}", now=T0 + timedelta(minutes=5), actor="U2")
    assert due(engine, T0 + timedelta(minutes=64)) == []
    assert due(engine, T0 + timedelta(minutes=65)) == [(inc, "update", T0 + timedelta(minutes=65))]
    assert send(engine, T0 + timedelta(minutes=65)) == 1
    # The next one is an hour after the previous reminder ...
    assert due(engine, T0 + timedelta(minutes=124)) == []
    # ... and an update resets the clock.
    with session_scope(engine) as s:
        post_update(s, ref=f"INC-{inc}", text="rolling back", now=T0 + timedelta(minutes=100), actor="U2")
    assert due(engine, T0 + timedelta(minutes=125)) == []
    assert due(engine, T0 + timedelta(minutes=160)) == [(inc, "update", T0 + timedelta(minutes=160))]
    with session_scope(engine) as s:
        resolve_incident(s, ref=f"INC-{inc}", now=T0 + timedelta(minutes=150), actor="U2")
    assert due(engine, T0 + timedelta(hours=10)) == []


def test_snooze_pushes_the_next_reminder_out(engine):
    inc = declare(engine)
    assert send(engine, T0 + ACK) == 1
    with session_scope(engine) as s:
        reminders.snooze(s, ref=f"INC-{inc}", minutes=60, now=T0 + ACK, actor="U3")
    assert due(engine, T0 + ACK + timedelta(minutes=59)) == []
    assert due(engine, T0 + ACK + timedelta(minutes=60)) == [(inc, "ack", T0 + ACK + timedelta(minutes=60))]


def test_only_incidents_with_a_card_are_reminded(engine):
    # An imported history's open incidents, or one declared with no alert channel, have no thread
    # to be reminded in: nothing is queued for them, however long they stay open.
    no_card = declare(engine, card=False)
    assert due(engine, T0 + timedelta(days=3)) == []
    # a card waiting in the outbox (Slack is down) counts: the reminder queues behind it
    with session_scope(engine) as s:
        outbox.enqueue(s, kind="card.post", key=outbox.card_key("incident", no_card),
                       payload={"object": "incident", "id": no_card, "channel": "C1"}, now=T0)
    assert due(engine, T0 + ACK) == [(no_card, "ack", T0 + ACK)]
