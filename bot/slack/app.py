"""The Bolt app factory. Nothing is built at import time; the composition root calls this."""

from __future__ import annotations

import logging
from concurrent.futures import Executor

from slack_bolt import App
from slack_sdk import WebClient

from bot.runtime import Runtime
from bot.slack.client import make_web_client


class _IgnoreTokenNotice(logging.Filter):
    """Bolt reads SLACK_BOT_TOKEN by itself and warns that the client we hand it wins; it does."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "`token` will be unused" not in record.getMessage()


def create_app(
    rt: Runtime,
    *,
    client: WebClient | None = None,
    verify_requests: bool = True,
    listener_executor: Executor | None = None,
) -> App:
    """A Bolt app wired to ``rt``'s database and settings.

    ``verify_requests=False`` is for the local shell only, where requests never leave the process.
    """
    settings = rt.settings
    bolt_logger = logging.getLogger("bot.slack.bolt")
    if not any(isinstance(f, _IgnoreTokenNotice) for f in bolt_logger.filters):
        bolt_logger.addFilter(_IgnoreTokenNotice())
    app = App(
        client=client or make_web_client(settings, telemetry=rt.telemetry),
        signing_secret=settings.slack_signing_secret or "",
        request_verification_enabled=verify_requests,
        token_verification_enabled=False,  # no auth.test at start-up: readiness checks the token instead
        ignoring_self_events_enabled=False,
        logger=bolt_logger,
        **({"listener_executor": listener_executor} if listener_executor is not None else {}),
    )
    from bot.slack.listeners import register_all

    register_all(app, rt)
    return app
