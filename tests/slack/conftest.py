"""The served Slack app: real uvicorn + the real Bolt app + the fake Slack Web API.

``slack_app`` runs on the ``engine`` fixture (SQLite, and PostgreSQL with ``TEST_DATABASE_URL``);
``make_slack_app(**settings)`` builds one with other settings (admins, alert channel...).
After each test, the fake must not have seen a Block Kit violation.
"""

from __future__ import annotations

import logging
from dataclasses import replace

import pytest

from bot.config import Settings
from bot.runtime import Runtime
from bot.server import create_asgi_app
from bot.services.lookup import get_or_create_service
from bot.slack.app import create_app
from bot.slack.delivery import start_worker
from bot.store.db import session_scope
from tests.conftest import NOW, PRODUCTION
from tests.slack.harness import (
    SIGNING_SECRET,
    Clock,
    LiveServer,
    SlackApp,
    SlackDriver,
    SwitchApp,
    TrackingExecutor,
)

ALERTS = "C0ALERTS"


@pytest.fixture(scope="session")
def shared_server():
    """One real uvicorn server for the session; each test installs its own app behind it."""
    switch = SwitchApp()
    server = LiveServer(switch).start()
    server.switch = switch
    yield server
    server.stop()


# Services the catalogue knows at the start of a test (``services=()`` for an empty one).
KNOWN_SERVICES = ("checkout", "payments", "search", "billing")


@pytest.fixture
def make_slack_app(engine, fake_slack, shared_server):
    apps: list[SlackApp] = []
    own_servers: list[LiveServer] = []

    def make(with_worker: bool = True, services: tuple[str, ...] = KNOWN_SERVICES, **overrides) -> SlackApp:
        settings = Settings(
            database_url=engine.url.render_as_string(hide_password=False),
            slack_bot_token="xoxb-test",
            slack_signing_secret=SIGNING_SECRET,
            slack_api_url=fake_slack.api_url,
            alert_channel=ALERTS,
            production_environments=PRODUCTION,
            run_scheduler=False,
        )
        settings = replace(settings, **overrides)
        clock = Clock(NOW)
        rt = Runtime(settings=settings, engine=engine, clock=clock)
        rt.prepare(migrate=False)
        with session_scope(engine) as session:  # the catalogue: a /deploy naming another service asks first
            for name in services:
                get_or_create_service(session, name, now=NOW)
        executor = TrackingExecutor()
        bolt = create_app(rt, listener_executor=executor)
        # As `serve` runs it: woken by every commit that queued a message. The poll is long so a
        # test that advances the clock to make a retry due says when it wants it sent (settle()).
        worker = start_worker(rt, interval=3600) if with_worker else None
        asgi = create_asgi_app(rt, bolt)
        if shared_server.switch.target is None:
            shared_server.switch.target = asgi
            server = shared_server
        else:  # a second app in the same test gets a server of its own
            server = LiveServer(asgi).start()
            own_servers.append(server)
        app = SlackApp(rt=rt, clock=clock, server=server, fake=fake_slack,
                       slack=SlackDriver(server.port, fake_slack, executor, worker=worker), bolt=bolt)
        app.extra["executor"] = executor
        app.extra["worker"] = worker
        apps.append(app)
        return app

    try:
        yield make
    finally:
        for app in apps:
            try:
                app.slack.settle(timeout=10)
            finally:
                app.extra["executor"].shutdown(wait=True)
                if app.extra["worker"] is not None:
                    app.extra["worker"].stop()
        shared_server.switch.target = None
        for server in own_servers:
            server.stop()


@pytest.fixture
def slack_app(make_slack_app) -> SlackApp:
    return make_slack_app()


@pytest.fixture(autouse=True)
def _no_block_kit_violations(request, fake_slack):
    """Every flow must respect Slack's Block Kit limits and always send a `text`."""
    yield
    if request.node.get_closest_marker("allow_violations") is None:
        assert fake_slack.violations == [], "Block Kit violations:\n" + "\n".join(fake_slack.violations)


@pytest.fixture(autouse=True)
def _no_unexpected_errors(request, caplog):
    """A listener that hit a bug answers "Something went wrong" and logs it: that fails the test."""
    yield
    if request.node.get_closest_marker("allow_errors") is not None:
        return
    errors = [r for r in caplog.get_records("call") if r.levelno >= logging.ERROR and r.name.startswith("bot.")]
    assert not errors, "errors logged by the app:\n" + "\n".join(f"{r.name}: {r.getMessage()}" for r in errors)


def pytest_configure(config):
    config.addinivalue_line("markers", "allow_violations: the test provokes Block Kit violations on purpose")
    config.addinivalue_line("markers", "allow_errors: the test provokes errors the app logs on purpose")
