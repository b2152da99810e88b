"""The outbox: every Slack post and card edit is stored before it is sent.

A message is written in the same transaction as the change it announces (a declared incident, an
acknowledgement, a recorded deploy, a due digest), so a committed change always has its message
and a rolled-back one never does: a crash or a Slack outage delays messages, it never loses them.
Payloads name the object (and, for a thread line, the incident event it announces); the Slack
adapter renders them when it sends.

The delivery worker (in the Slack adapter) claims due messages, sends them and marks them sent;
failures are retried with exponential backoff or at the time Slack's ``Retry-After`` asks for.
Messages with the same ``key`` (one card) are delivered strictly in order; a card refresh renders
the card's state at send time, and an older pending refresh is superseded by a newer one, so the
latest state wins. A committed session that queued something wakes the workers registered for
its engine (``on_queued``), so a message goes out at once instead of at the next poll.
"""

from __future__ import annotations

import json
import logging
import threading
import weakref
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Callable, Iterable

from sqlalchemy import Engine, and_, event, or_, select, update
from sqlmodel import Session

from bot.services.app_settings import get_alert_channel
from bot.store.db import session_scope
from bot.store.models import OutboxMessage

log = logging.getLogger(__name__)


class Kind(StrEnum):
    """What an outbox message does when it is sent."""

    CARD_POST = "card.post"  # {"object": "incident"|"deploy", "id", "channel"}
    CARD_REFRESH = "card.refresh"  # {"object", "id"}: edit every card of the object in place
    THREAD_POST = "thread.post"  # {"object": "incident", "id", "event"}: the event's line under each card
    REMINDER_POST = "reminder.post"  # {"incident", "reminder": "ack"|"update"}
    DIGEST_POST = "digest.post"  # {"subscription", "period", "channel"}
    DIGEST_CHART = "digest.chart"  # the digest's trend chart (queued when its text went out)
    RESPONSE_POST = "response.post"  # a reply to a command's response_url that Slack could not take at once
    CHANNEL_CREATE = "channel.create"  # {"id"[, "invite_only"]}: the incident's own channel, its invitations and card
    POSTMORTEM_POST = "postmortem.post"  # {"id", "event"}: the postmortem draft as a file in the card's thread
    PAGERDUTY = "pagerduty.event"  # {"id", "action": "trigger"|"resolve"}: PagerDuty Events API v2
    WATCH_POST = "watch.post"  # {"watch", "event": "fired"|"cleared", "channel", ...the facts it states}
    NUDGE_POST = "nudge.post"  # {"nudge"}: the question (or hint) in the thread of its incident's (deploy's) card
    NUDGE_UPDATE = "nudge.update"  # {"nudge"}: the question edited in place to show the answer


class Status(StrEnum):
    PENDING = "pending"
    SENDING = "sending"  # claimed; due again when its lease runs out (its sender died)
    SENT = "sent"
    SUPERSEDED = "superseded"  # a newer refresh of the same card replaced it
    DEAD = "dead"  # Slack refused it, or our code failed on it too often


WAITING = (Status.PENDING, Status.SENDING)

outbox_t = OutboxMessage.__table__
LEASE = timedelta(minutes=2)  # a claimed message whose sender died becomes due again after this
# A Slack outage, a 429 or a revoked token only delays a message: it is retried (backoff capped at
# MAX_BACKOFF) until it goes out. Only errors retrying cannot fix (Slack rejects the message
# itself) and repeated failures of our own code (a bug while rendering) end in "dead".
MAX_FAULT_ATTEMPTS = 12
MAX_BACKOFF = timedelta(minutes=10)


def enqueue(
    session: Session, *, kind: str, key: str, payload: dict[str, Any], now: datetime,
    next_attempt_at: datetime | None = None, attempts: int = 0, last_error: str | None = None,
) -> OutboxMessage:
    """Store a message to send (due now, or at ``next_attempt_at`` after a first attempt that failed)."""
    message = OutboxMessage(
        kind=str(kind), key=key, payload=json.dumps(payload), next_attempt_at=next_attempt_at or now, created_at=now,
        attempts=attempts, last_error=last_error[:2000] if last_error else None,
    )
    session.add(message)
    session.flush()
    session.info[_QUEUED] = True
    return message


def card_key(kind: str, object_id: int) -> str:
    return f"{kind}:{object_id}"


# --- what a change announces (called inside the change's own transaction) --------------------

def post_cards(session: Session, obj: str, object_id: int, channels: Iterable[str | None], *, now: datetime) -> list[OutboxMessage]:
    """The object's card in each channel (once; a channel that has it gets it refreshed)."""
    key = card_key(obj, object_id)
    return [
        enqueue(session, kind=Kind.CARD_POST, key=key, payload={"object": obj, "id": object_id, "channel": c}, now=now)
        for c in dict.fromkeys(c for c in channels if c)
    ]


def announce_incident(
    session: Session, incident_id: int, *, now: datetime, default_alert_channel: str | None, declared_in: str | None = None
) -> list[OutboxMessage]:
    """A new incident's card: in the alert channel, and in the channel it was declared in (not a DM)."""
    channels = [get_alert_channel(session, default=default_alert_channel)]
    if declared_in and not declared_in.startswith("D"):
        channels.append(declared_in)
    if not any(channels):
        # Declared by the API or Alertmanager with nowhere to post: say so where operators look.
        log.warning("INC-%s has no channel for its card: set DORA_ALERT_CHANNEL or run /dora alerts #channel", incident_id)
    posted = post_cards(session, "incident", incident_id, channels, now=now)
    from bot.services import lifecycle  # paging and the dedicated channel (DORA_INCIDENT_CHANNELS)

    lifecycle.after_change(session, incident_id, now=now, declared=True)
    return posted


def refresh_card(session: Session, obj: str, object_id: int, *, now: datetime) -> OutboxMessage:
    return enqueue(session, kind=Kind.CARD_REFRESH, key=card_key(obj, object_id), payload={"object": obj, "id": object_id}, now=now)


def incident_event(session: Session, incident_id: int, event_id: int, *, now: datetime) -> None:
    """An incident changed: its cards show the new state and the event's line goes under each card."""
    refresh_card(session, "incident", incident_id, now=now)
    enqueue(
        session, kind=Kind.THREAD_POST, key=card_key("incident", incident_id),
        payload={"object": "incident", "id": incident_id, "event": event_id}, now=now,
    )
    from bot.core.incident_events import EventKind
    from bot.services import lifecycle  # paging: a severity raise triggers, a resolution resolves
    from bot.store.models import IncidentEvent

    event = session.get(IncidentEvent, event_id)
    lifecycle.after_change(session, incident_id, now=now, severity_changed=event is not None and event.kind == EventKind.SEVERITY)


# --- waking the workers ------------------------------------------------------------------------

_QUEUED = "dora.outbox.queued"
_wakers: "weakref.WeakKeyDictionary[Engine, list[Callable[[], None]]]" = weakref.WeakKeyDictionary()
_wakers_lock = threading.Lock()


def on_queued(engine: Engine, wake: Callable[[], None]) -> Callable[[], None]:
    """Call ``wake()`` after every commit on ``engine`` that queued a message; returns the unsubscribe."""
    with _wakers_lock:
        _wakers.setdefault(engine, []).append(wake)

    def unsubscribe() -> None:
        with _wakers_lock:
            listeners = _wakers.get(engine) or []
            if wake in listeners:
                listeners.remove(wake)

    return unsubscribe


@event.listens_for(Session, "after_commit")
def _wake_after_commit(session: Session) -> None:
    if not session.info.pop(_QUEUED, False):
        return
    bind = session.get_bind()
    engine = getattr(bind, "engine", bind)
    with _wakers_lock:
        listeners = list(_wakers.get(engine) or ())
    for wake in listeners:
        try:
            wake()
        except Exception:  # waking is an optimisation: the poll still finds the message
            log.exception("waking the outbox worker failed")


@event.listens_for(Session, "after_rollback")
def _forget_after_rollback(session: Session) -> None:
    session.info.pop(_QUEUED, None)


def due_ids(engine: Engine, *, now: datetime, key: str | None = None, limit: int = 50) -> list[int]:
    """Ids of messages that may be sent now, oldest first (the claim decides who sends)."""
    with session_scope(engine, write=False) as session:
        query = select(outbox_t.c.id).where(
            outbox_t.c.status.in_(WAITING), outbox_t.c.next_attempt_at <= now
        )
        if key is not None:
            query = query.where(outbox_t.c.key == key)
        return list(session.execute(query.order_by(outbox_t.c.id).limit(limit)).scalars())


def due_messages(engine: Engine, *, now: datetime, key: str | None = None, limit: int = 50) -> list[tuple[int, str]]:
    """``(id, key)`` of the messages that may be sent now, oldest first."""
    with session_scope(engine, write=False) as session:
        query = select(outbox_t.c.id, outbox_t.c.key).where(outbox_t.c.status.in_(WAITING), outbox_t.c.next_attempt_at <= now)
        if key is not None:
            query = query.where(outbox_t.c.key == key)
        return [(row.id, row.key) for row in session.execute(query.order_by(outbox_t.c.id).limit(limit))]


def claim(engine: Engine, message_id: int, *, now: datetime) -> OutboxMessage | None:
    """Take the message for sending, or None if another worker has it or an earlier one of its card waits."""
    with session_scope(engine) as session:
        message = session.get(OutboxMessage, message_id)
        if message is None or message.status not in WAITING or message.next_attempt_at > now:
            return None
        earlier = session.execute(
            select(outbox_t.c.id).where(
                outbox_t.c.key == message.key, outbox_t.c.id < message.id, outbox_t.c.status.in_(WAITING)
            ).limit(1)
        ).first()
        if earlier is not None:
            return None  # keep the order of one card's messages
        if message.kind == Kind.CARD_REFRESH:
            newer = session.execute(
                select(outbox_t.c.id).where(
                    outbox_t.c.key == message.key, outbox_t.c.id > message.id, outbox_t.c.kind == Kind.CARD_REFRESH,
                    outbox_t.c.status == Status.PENDING,
                ).limit(1)
            ).first()
            if newer is not None:
                message.status = Status.SUPERSEDED
                session.add(message)
                return None
        taken = session.execute(
            update(outbox_t)
            .where(
                outbox_t.c.id == message.id,
                or_(outbox_t.c.status == Status.PENDING, and_(outbox_t.c.status == Status.SENDING, outbox_t.c.next_attempt_at <= now)),
                outbox_t.c.attempts == message.attempts,
            )
            .values(status=Status.SENDING, next_attempt_at=now + LEASE, attempts=message.attempts + 1)
        ).rowcount
        if not taken:
            return None
        session.expire(message)
        return session.get(OutboxMessage, message_id)


def mark_sent(engine: Engine, message_id: int, *, now: datetime) -> None:
    with session_scope(engine) as session:
        mark_sent_in(session, message_id, now=now)


def mark_sent_in(session: Session, message_id: int, *, now: datetime) -> None:
    """``mark_sent`` inside a transaction the caller holds (with what the sending recorded)."""
    session.execute(update(outbox_t).where(outbox_t.c.id == message_id).values(status=Status.SENT, sent_at=now, last_error=None))


def mark_failed(
    engine: Engine, message_id: int, *, now: datetime, error: str, retry_after: float | None = None,
    permanent: bool = False, fault: bool = False,
) -> str:
    """Schedule the next attempt (backoff, or Slack's Retry-After); returns the new status.

    ``permanent``: Slack refused the message itself, it is dropped. ``fault``: our code failed
    (not Slack), given up after ``MAX_FAULT_ATTEMPTS``. Anything else is retried until it is sent.
    """
    with session_scope(engine) as session:
        message = session.get(OutboxMessage, message_id)
        if permanent or (fault and message.attempts >= MAX_FAULT_ATTEMPTS):
            status, when = Status.DEAD, now
        else:
            status = Status.PENDING
            backoff = min(timedelta(seconds=2 ** min(message.attempts, 20)), MAX_BACKOFF)
            when = now + (timedelta(seconds=retry_after) if retry_after is not None else backoff)
        session.execute(
            update(outbox_t).where(outbox_t.c.id == message_id).values(status=status, next_attempt_at=when, last_error=error[:2000])
        )
        return status


def depth(engine: Engine) -> tuple[int, datetime | None]:
    """How many messages wait, and since when (for health and metrics)."""
    from sqlalchemy import func

    with session_scope(engine, write=False) as session:
        n, oldest = session.execute(
            select(func.count(), func.min(outbox_t.c.created_at)).where(outbox_t.c.status.in_(WAITING))
        ).one()
        return int(n), oldest
