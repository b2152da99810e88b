"""Replies to ``response_url`` that survive a Slack outage.

Every command's answer (the ``/dora`` card, "Recorded D-12", an error with the usage) goes to the
command's ``response_url``. It is sent at once, as Bolt's ``respond()`` would; only when Slack
cannot take it now (unreachable, 5xx, 429) is it written to the outbox, and the outbox worker
sends it when Slack is back, in order with any later reply to the same command.

Slack accepts a ``response_url`` up to five times within 30 minutes of the command
(https://api.slack.com/interactivity/handling#message_responses), so a reply still undelivered
30 minutes after the command is dropped (logged, status ``dead``): there is nothing left to send
it to. A 4xx answer (expired or used URL, a message Slack refuses) is not retried either.
"""

from __future__ import annotations

import hashlib
import logging
import urllib.error
from datetime import datetime, timedelta
from typing import Any, Callable

from slack_bolt import App
from slack_bolt.context.respond import Respond
from slack_sdk.webhook import WebhookClient, WebhookResponse
from sqlalchemy import Engine

from bot.services import outbox
from bot.store.db import session_scope

log = logging.getLogger(__name__)

RESPONSE_URL_LIFETIME = timedelta(minutes=30)  # Slack's limit (see the module docstring)
TIMEOUT = 10  # seconds for one attempt; the outbox retries after that


class ResponseUrlError(Exception):
    """A ``response_url`` POST that did not go through: retried unless ``permanent``."""

    def __init__(self, error: str, *, retry_after: float | None = None, permanent: bool = False) -> None:
        super().__init__(error)
        self.error = error
        self.retry_after = retry_after
        self.permanent = permanent


def response_key(url: str) -> str:
    """One outbox key per response_url (its replies stay in order); the URL itself is not in the key."""
    return "response:" + hashlib.sha256(url.encode()).hexdigest()[:24]


def post(url: str, message: dict[str, Any]) -> WebhookResponse:
    """POST one reply; raises ``ResponseUrlError`` when Slack did not take it."""
    try:
        resp = WebhookClient(url=url, timeout=TIMEOUT).send_dict(message)
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError) as exc:
        raise ResponseUrlError(f"{exc.__class__.__name__}: {exc}") from exc
    if resp.status_code == 200:
        return resp
    error = f"HTTP {resp.status_code}: {(resp.body or '').strip()[:200]}"
    if resp.status_code == 429:
        retry = resp.headers.get("Retry-After") or resp.headers.get("retry-after")
        raise ResponseUrlError(error, retry_after=float(retry) if retry else None)
    raise ResponseUrlError(error, permanent=resp.status_code < 500)


def send_queued(payload: dict[str, Any], *, now: datetime) -> None:
    """Deliver a reply from the outbox (the worker's side)."""
    if now - datetime.fromisoformat(payload["command_at"]) > RESPONSE_URL_LIFETIME:
        raise ResponseUrlError("the response_url expired (30 minutes after the command) before Slack was back", permanent=True)
    post(payload["url"], payload["message"])


class DurableRespond(Respond):
    """Bolt's ``respond`` for one request, with the outbox behind it."""

    def __init__(self, response_url: str, engine: Engine, clock: Callable[[], datetime]) -> None:
        super().__init__(response_url=response_url)
        self.engine = engine
        self.clock = clock
        self.command_at = clock()
        self.queued = False  # once a reply waits in the outbox, later ones queue behind it

    def __call__(self, text: str | dict = "", blocks=None, **kwargs) -> WebhookResponse | None:
        message = dict(text) if isinstance(text, dict) else {"text": text, "blocks": blocks, **kwargs}
        message = {k: v for k, v in message.items() if v is not None}
        if message.get("blocks"):
            message["blocks"] = [b if isinstance(b, dict) else b.to_dict() for b in message["blocks"]]
        if not self.queued:
            try:
                return post(self.response_url, message)
            except ResponseUrlError as exc:
                if exc.permanent:
                    log.warning("Slack refused a reply to a command: %s", exc.error)
                    return None
                self._queue(message, exc)
                return None
        self._queue(message, None)
        return None

    def _queue(self, message: dict, failure: ResponseUrlError | None) -> None:
        now = self.clock()
        delay = timedelta(seconds=failure.retry_after) if failure is not None and failure.retry_after is not None else timedelta(seconds=1)
        with session_scope(self.engine) as session:
            outbox.enqueue(
                session, kind="response.post", key=response_key(self.response_url),
                payload={"url": self.response_url, "message": message, "command_at": self.command_at.isoformat()},
                now=now, next_attempt_at=now + delay, attempts=1 if failure is not None else 0,
                last_error=failure.error if failure is not None else None,
            )
        self.queued = True
        if failure is not None:
            log.warning("a reply to a command could not reach Slack (%s); the outbox will retry it", failure.error)


def install(app: App, engine: Engine, clock: Callable[[], datetime]) -> None:
    """Every listener's ``respond`` becomes a ``DurableRespond`` (Bolt found the request's response_url)."""

    @app.middleware
    def durable_respond(context, next):  # noqa: A002 - Bolt passes it by this name
        if context.response_url:
            context["respond"] = DurableRespond(context.response_url, engine, clock)
        return next()
