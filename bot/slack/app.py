"""The Bolt app factory. Nothing is built at import time; the composition root calls this."""

from __future__ import annotations

import logging
from concurrent.futures import Executor, ThreadPoolExecutor

from slack_bolt import App
from slack_sdk import WebClient

from bot.runtime import Runtime
from bot.slack.client import make_web_client

# Bolt acks from inside the listener, which then keeps its thread while it writes to the database
# and calls Slack (the reply, then the card). With Bolt's default of 5 threads, five commands
# talking to a slow Slack (100-300 ms a call) hold them all and the next command's ack waits: about
# 15 /deploy a second would already push acks past half a second. 32 threads keep acks from
# queueing behind that I/O (benchmarks/slack_bench.py); database sessions are short, so the
# engine's connection pool is not held across Slack calls.
LISTENER_THREADS = 32


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
        listener_executor=listener_executor or ThreadPoolExecutor(max_workers=LISTENER_THREADS, thread_name_prefix="bolt-listener"),
    )
    from bot.slack import replies
    from bot.slack.listeners import register_all

    replies.install(app, rt.engine, rt.now)
    register_all(app, rt)
    return app
