"""Slack requests that were acted on, so a replay or a retry acts once on every replica.

Slack signs each request with its timestamp, and Bolt refuses a timestamp more than five minutes
old (https://docs.slack.dev/authentication/verifying-requests-from-slack): a request whose
``(timestamp, signature)`` was handled in the last five minutes can only be a replay. Slack's own
retries of an event are new requests with the same ``event_id``
(https://docs.slack.dev/apis/events-api/#retries), so events are keyed by that id. The key is
written in the transaction of the change the request makes: a request that failed before its
commit has left no key, and its retry acts.
"""

from __future__ import annotations

import hashlib
import threading
import time
from datetime import datetime, timedelta

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from bot.core.errors import DoraError
from bot.store.models import HandledRequest

KEEP = timedelta(minutes=10)  # longer than Slack's five-minute window, for clocks that differ
PRUNE_EVERY = 60.0  # seconds between prunes, per process
_pruned = {"at": 0.0}
_prune_lock = threading.Lock()


class AlreadyHandled(DoraError):
    """This request (or an earlier delivery of the same event) was already acted on."""

    def __init__(self) -> None:
        super().__init__("this request was already handled")


def signed_request_key(timestamp: str, signature: str) -> str:
    return "sig:" + hashlib.sha256(f"{timestamp}:{signature}".encode()).hexdigest()[:64]


def event_key(event_id: str) -> str:
    return "event:" + event_id[:90]


def claim(session: Session, key: str, *, now: datetime) -> None:
    """Record ``key`` in the caller's transaction; raises ``AlreadyHandled`` if it is there."""
    _maybe_prune(session, now)
    try:
        with session.begin_nested():
            session.add(HandledRequest(key=key, received_at=now))
    except IntegrityError:
        raise AlreadyHandled() from None


def _maybe_prune(session: Session, now: datetime) -> None:
    with _prune_lock:
        if time.monotonic() - _pruned["at"] < PRUNE_EVERY:
            return
        _pruned["at"] = time.monotonic()
    session.execute(delete(HandledRequest).where(HandledRequest.received_at < now - KEEP))
