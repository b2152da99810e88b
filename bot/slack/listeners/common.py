"""What every listener shares: its dependencies, replies, the one transaction, typed errors.

Listeners are module-level functions. Their dependencies reach them through Bolt's ``context``,
put there by one middleware (``install``): ``context["rt"]`` (the runtime), ``context["messenger"]``
(the Slack calls a listener may make itself) and ``context["request_key"]`` (what makes a replay
of this request act once). A test calls a listener with a dict for ``context`` and fakes for
``ack`` and ``respond``.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from typing import Callable, Iterator

from slack_bolt import App, BoltResponse
from sqlmodel import Session

from bot.core.errors import DoraError
from bot.runtime import Runtime
from bot.services import requests
from bot.slack.messaging import Messenger
from bot.store.db import session_scope

log = logging.getLogger("bot.slack")


class FieldErrors(DoraError):
    """A modal submission with fields to fix: shown under those fields (``response_action: errors``)."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(errors.values()))
        self.errors = errors


def runtime(context) -> Runtime:
    return context["rt"]


def messenger(context) -> Messenger:
    return context["messenger"]


def reply(respond: Callable, text: str, blocks: list[dict] | None = None, *, public: bool = False) -> None:
    respond(text=text, blocks=blocks, response_type="in_channel" if public else "ephemeral", replace_original=False)


def actor(body: dict) -> str | None:
    return (body.get("user") or {}).get("id") or body.get("user_id")


@contextmanager
def transaction(context) -> Iterator[Session]:
    """The listener's one write: committed with this request's key, so a replay acts once."""
    rt = runtime(context)
    with session_scope(rt.engine) as session:
        key = context.get("request_key")
        if key:
            requests.claim(session, key, now=rt.now())
        yield session


def _header(request, name: str) -> str | None:
    values = (request.headers or {}).get(name) or []
    return values[0] if values else None


def install(app: App, rt: Runtime) -> None:
    """One middleware: dependencies into the context; a retried event is answered at once."""

    @app.middleware
    def inject_dependencies(context, request, body, next):  # noqa: A002 - Bolt passes it by this name
        context["rt"] = rt
        context["messenger"] = Messenger(context.client)
        timestamp, signature = _header(request, "x-slack-request-timestamp"), _header(request, "x-slack-signature")
        if body.get("type") == "event_callback" and body.get("event_id"):
            # Slack redelivers an event it did not see answered in 3 s (X-Slack-Retry-Num): act once.
            try:
                with session_scope(rt.engine) as session:
                    requests.claim(session, requests.event_key(body["event_id"]), now=rt.now())
            except requests.AlreadyHandled:
                log.info("event %s (retry %s) was already handled", body["event_id"], _header(request, "x-slack-retry-num"))
                return BoltResponse(status=200, body="")
        elif timestamp and signature:
            context["request_key"] = requests.signed_request_key(timestamp, signature)
        return next()
