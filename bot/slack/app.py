"""The Bolt app factory. Nothing is built at import time; the composition root calls this."""

from __future__ import annotations

import logging
from concurrent.futures import Executor, ThreadPoolExecutor

from slack_bolt import App
from slack_sdk import WebClient

from bot.runtime import Runtime
from bot.slack.client import make_web_client
from bot.slack.identity import SlackIdentity

# Bolt acks from inside the listener, which then keeps its thread while it writes to the database
# and answers the user's response_url (cards go through the outbox worker, not here). With Bolt's
# default of 5 threads, five slow replies would hold them all and the next command's ack would
# wait; 32 threads keep acks from queueing behind that I/O (benchmarks/slack_bench.py).
LISTENER_THREADS = 32


class _IgnoreTokenNotice(logging.Filter):
    """Bolt warns that the token is unused when ``authorize`` is given; it is what authorize returns."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return "`token` will be unused" not in message and "will be ignored" not in message


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
    client = client or make_web_client(settings, telemetry=rt.telemetry, listener=True)
    # Authorized from a cached auth.test made in the background (bot.slack.identity): no request
    # waits for Slack before its ack, and a start while Slack is down still takes commands.
    identity = rt.slack_identity
    if identity is None:
        # Its own client, without retries: /readyz asks it too and must answer quickly.
        probe = make_web_client(settings, token=client.token, timeout=5, outbox=True)
        identity = rt.slack_identity = SlackIdentity(probe)
    bolt_logger = logging.getLogger("bot.slack.bolt")
    if not any(isinstance(f, _IgnoreTokenNotice) for f in bolt_logger.filters):
        bolt_logger.addFilter(_IgnoreTokenNotice())
    app = App(
        client=client,
        authorize=identity.authorize,
        signing_secret=settings.slack_signing_secret or "",
        request_verification_enabled=verify_requests,
        ignoring_self_events_enabled=False,
        logger=bolt_logger,
        listener_executor=listener_executor or ThreadPoolExecutor(max_workers=LISTENER_THREADS, thread_name_prefix="bolt-listener"),
    )
    from bot.slack import replies
    from bot.slack.listeners import register_all

    replies.install(app, rt.engine, rt.now)
    register_all(app, rt)
    return app
