"""Raw webhook bodies: stored before parsing, one row per (source, delivery id)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from bot.store.db import session_scope
from bot.store.models import WebhookDelivery


def store_delivery(engine: Engine, *, source: str, delivery_id: str, event: str | None, body: bytes, now: datetime) -> tuple[int, str | None]:
    """Store the body; returns (row id, previous status or None when it is new).

    A redelivery of an already processed id is reported with its status so the caller can
    answer without applying anything twice. A delivery that failed before is tried again.
    """
    text = body.decode("utf-8", errors="replace")
    try:
        with session_scope(engine) as session:
            row = WebhookDelivery(source=source, delivery_id=delivery_id[:200], event=event, received_at=now, body=text)
            session.add(row)
            session.flush()
            return row.id, None
    except IntegrityError:
        with session_scope(engine, write=False) as session:
            row = session.exec(
                select(WebhookDelivery).where(WebhookDelivery.source == source, WebhookDelivery.delivery_id == delivery_id[:200])
            ).one()
            return row.id, row.status


def finish_delivery(engine: Engine, row_id: int, *, status: str, error: str | None = None) -> None:
    with session_scope(engine) as session:
        row = session.get(WebhookDelivery, row_id)
        row.status = status
        row.error = error
        session.add(row)
