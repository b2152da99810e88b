"""Raw webhook bodies, one row per (source, delivery id), and processing each delivery once.

A delivery is claimed, applied and marked processed in ONE transaction: a concurrent copy of the
same delivery id waits on the row's unique key (PostgreSQL) or the write lock (SQLite) and then
finds it processed, so 32 simultaneous copies act once. A delivery that failed is stored with its
body and error; a redelivery of that id replaces the body and is tried again.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Callable

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from bot.store.db import session_scope
from bot.store.models import WebhookDelivery

MAX_ID = 200


def stored_id(delivery_id: str) -> str:
    """The delivery id as the 200-character column keeps it: a longer one is cut and ends with a
    hash of the whole id, so two long ids that share their first 200 characters stay apart."""
    if len(delivery_id) <= MAX_ID:
        return delivery_id
    return delivery_id[: MAX_ID - 65] + "#" + hashlib.sha256(delivery_id.encode()).hexdigest()


@dataclass
class Processed:
    status: str  # processed | ignored | duplicate
    result: dict | None
    previous: str | None = None  # for a duplicate: the stored status


def _text(body: bytes | str) -> str:
    return body if isinstance(body, str) else body.decode("utf-8", errors="replace").replace("\x00", "\ufffd")


def _row(session: Session, source: str, delivery_id: str, *, lock: bool = False) -> WebhookDelivery | None:
    query = select(WebhookDelivery).where(WebhookDelivery.source == source, WebhookDelivery.delivery_id == stored_id(delivery_id))
    if lock:
        query = query.with_for_update().execution_options(populate_existing=True)
    return session.exec(query).first()


def process_delivery(
    engine: Engine,
    *,
    source: str,
    delivery_id: str,
    event: str | None,
    body: bytes | str,
    now: datetime,
    apply: Callable[[Session], tuple[dict | None, str | None]],
) -> Processed:
    """Claim ``delivery_id`` and run ``apply(session)`` in the same transaction.

    ``apply`` returns (result or None for an ignored event, a note for the stored row or None).
    An exception from ``apply`` rolls everything back, records the delivery as failed (body and
    error) in a transaction of its own, and propagates.
    """
    try:
        with session_scope(engine) as session:
            row = _row(session, source, delivery_id, lock=True)
            if row is None:
                try:
                    with session.begin_nested():
                        row = WebhookDelivery(source=source, delivery_id=stored_id(delivery_id), event=event, received_at=now,
                                              body=_text(body))
                        session.add(row)
                        session.flush()
                except IntegrityError:  # a concurrent copy committed first (PostgreSQL waited for it)
                    row = _row(session, source, delivery_id, lock=True)
            if row.status in ("processed", "ignored"):
                return Processed("duplicate", None, previous=row.status)
            if row.id is not None and row.status != "received":  # a failed delivery, sent again
                row.body, row.event, row.received_at = _text(body), event, now
            result, note = apply(session)
            row.status = "processed" if result is not None else "ignored"
            row.error = note
            session.add(row)
        return Processed(row.status, result)
    except Exception as exc:
        message = getattr(exc, "message", None) or f"{exc.__class__.__name__}: {exc}"
        record_failure(engine, source=source, delivery_id=delivery_id, event=event, body=body, now=now, error=message)
        raise


def record_failure(
    engine: Engine, *, source: str, delivery_id: str, event: str | None, body: bytes | str, now: datetime, error: str
) -> None:
    """Keep a delivery that could not be applied (for replay), with the body that failed."""
    for _ in range(2):
        try:
            with session_scope(engine) as session:
                row = _row(session, source, delivery_id, lock=True)
                if row is None:
                    row = WebhookDelivery(source=source, delivery_id=stored_id(delivery_id), event=event, received_at=now, body=_text(body))
                elif row.status in ("processed", "ignored"):
                    return  # a concurrent copy succeeded meanwhile
                else:
                    row.body, row.event, row.received_at = _text(body), event, now
                row.status, row.error = "failed", error
                session.add(row)
            return
        except IntegrityError:  # inserted concurrently: update it on the second pass
            continue
