"""The outbox: every Slack post and card edit is stored before it is sent.

A delivery worker (in the Slack adapter) claims due messages, sends them and marks them sent;
failures are retried with exponential backoff or at the time Slack's ``Retry-After`` asks for.
Messages with the same ``key`` (one card) are delivered strictly in order; a card refresh renders
the card's state at send time, and an older pending refresh is superseded by a newer one, so the
latest state wins and nothing is lost or sent twice by the worker.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, and_, or_, select, update
from sqlmodel import Session

from bot.store.db import session_scope
from bot.store.models import OutboxMessage

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
        kind=kind, key=key, payload=json.dumps(payload), next_attempt_at=next_attempt_at or now, created_at=now,
        attempts=attempts, last_error=last_error[:2000] if last_error else None,
    )
    session.add(message)
    session.flush()
    return message


def card_key(kind: str, object_id: int) -> str:
    return f"{kind}:{object_id}"


def due_ids(engine: Engine, *, now: datetime, key: str | None = None, limit: int = 50) -> list[int]:
    """Ids of messages that may be sent now, oldest first (the claim decides who sends)."""
    with session_scope(engine, write=False) as session:
        query = select(outbox_t.c.id).where(
            outbox_t.c.status.in_(("pending", "sending")), outbox_t.c.next_attempt_at <= now
        )
        if key is not None:
            query = query.where(outbox_t.c.key == key)
        return list(session.execute(query.order_by(outbox_t.c.id).limit(limit)).scalars())


def claim(engine: Engine, message_id: int, *, now: datetime) -> OutboxMessage | None:
    """Take the message for sending, or None if another worker has it or an earlier one of its card waits."""
    with session_scope(engine) as session:
        message = session.get(OutboxMessage, message_id)
        if message is None or message.status not in ("pending", "sending") or message.next_attempt_at > now:
            return None
        earlier = session.execute(
            select(outbox_t.c.id).where(
                outbox_t.c.key == message.key, outbox_t.c.id < message.id, outbox_t.c.status.in_(("pending", "sending"))
            ).limit(1)
        ).first()
        if earlier is not None:
            return None  # keep the order of one card's messages
        if message.kind == "card.refresh":
            newer = session.execute(
                select(outbox_t.c.id).where(
                    outbox_t.c.key == message.key, outbox_t.c.id > message.id, outbox_t.c.kind == "card.refresh",
                    outbox_t.c.status == "pending",
                ).limit(1)
            ).first()
            if newer is not None:
                message.status = "superseded"
                session.add(message)
                return None
        taken = session.execute(
            update(outbox_t)
            .where(
                outbox_t.c.id == message.id,
                or_(outbox_t.c.status == "pending", and_(outbox_t.c.status == "sending", outbox_t.c.next_attempt_at <= now)),
                outbox_t.c.attempts == message.attempts,
            )
            .values(status="sending", next_attempt_at=now + LEASE, attempts=message.attempts + 1)
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
    session.execute(update(outbox_t).where(outbox_t.c.id == message_id).values(status="sent", sent_at=now, last_error=None))


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
            status, when = "dead", now
        else:
            status = "pending"
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
            select(func.count(), func.min(outbox_t.c.created_at)).where(outbox_t.c.status.in_(("pending", "sending")))
        ).one()
        return int(n), oldest
