"""Fixtures for the scheduler / delivery flow tests.

* ``slack``: the fake Slack Web API with the file upload flow (``tests/scheduler/fake_files.py``),
  one server per session, emptied for each test. After each test it must not have seen a Block
  Kit violation.
* ``flow``: a ``Flow`` on the ``engine`` fixture (SQLite, and PostgreSQL with TEST_DATABASE_URL):
  a Runtime with a movable clock, the scheduler's jobs bound to it, and an ``OutboxSender`` on the
  production Web API client pointed at the fake.
* ``served``: the real Bolt app served over HTTP (as in ``tests/slack``) on the same runtime kind,
  talking to this fake, for pressing buttons.
"""

from __future__ import annotations

import os
import threading
import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import pytest
from slack_sdk import WebClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from bot.config import Settings
from bot.runtime import Runtime
from bot.scheduler import jobs
from bot.slack.client import make_web_client
from bot.slack.delivery import OutboxSender, start_worker
from bot.store.db import make_engine
from tests.conftest import NOW, PG_SCHEMA, PRODUCTION
from tests.scheduler.fake_files import FilesFakeSlack
from tests.slack.harness import (
    SIGNING_SECRET,
    Clock,
    LiveServer,
    SlackApp,
    SlackDriver,
    TrackingExecutor,
)

ALERTS = "C0ALERTS"
DIGEST_CHANNEL = "C0DIGEST"


@pytest.fixture(scope="session")
def files_slack_server():
    server = FilesFakeSlack().start()
    yield server
    server.stop()


@pytest.fixture
def slack(request, files_slack_server) -> FilesFakeSlack:
    files_slack_server.reset()
    yield files_slack_server
    violations = list(files_slack_server.violations)
    files_slack_server.reset()
    if request.node.get_closest_marker("allow_violations") is None:
        assert violations == [], "Block Kit violations:\n" + "\n".join(violations)


def settings_for(engine, slack: FilesFakeSlack, **overrides) -> Settings:
    settings = Settings(
        database_url=engine.url.render_as_string(hide_password=False),
        slack_bot_token="xoxb-test",
        slack_signing_secret=SIGNING_SECRET,
        slack_api_url=slack.api_url,
        alert_channel=ALERTS,
        production_environments=PRODUCTION,
        run_scheduler=False,
    )
    return replace(settings, **overrides)


def reopen(engine):
    """A new Engine on the same database (what a restarted process builds)."""
    url = engine.url.render_as_string(hide_password=False)
    if engine.dialect.name == "postgresql":
        return make_engine(url, connect_args={"options": f"-csearch_path={PG_SCHEMA}"})
    return make_engine(url)


def fast_client(settings: Settings) -> WebClient:
    """A Web API client without the SDK's own retries: every failure reaches the outbox at once."""
    return WebClient(token=settings.slack_bot_token, base_url=settings.slack_api_url, timeout=5, retry_handlers=[])


@dataclass
class Flow:
    rt: Runtime
    clock: Clock
    slack: FilesFakeSlack
    sender: OutboxSender
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def engine(self):
        return self.rt.engine

    def at(self, when: datetime) -> Flow:
        self.clock.now = when
        return self

    def drain(self, sender: OutboxSender | None = None, rounds: int = 10) -> int:
        """Deliver until nothing is due (a digest's chart is queued while its text is sent)."""
        sender = sender or self.sender
        total = 0
        for _ in range(rounds):
            n = sender.deliver_due()
            total += n
            if n == 0:
                return total
        raise AssertionError(f"outbox still delivering after {rounds} rounds")


def make_flow(engine, slack, *, client: WebClient | None = None, now: datetime = NOW, **overrides) -> Flow:
    settings = settings_for(engine, slack, **overrides)
    clock = Clock(now)
    rt = Runtime(settings=settings, engine=engine, clock=clock)
    rt.prepare(migrate=False)
    jobs.bind(rt)
    sender = OutboxSender(client or make_web_client(settings, outbox=True), engine, clock,
                          production_environments=settings.production_environments)
    return Flow(rt=rt, clock=clock, slack=slack, sender=sender)


@pytest.fixture
def bound_jobs():
    """Restore whatever runtime the jobs were bound to before the test."""
    before = jobs._runtime
    yield
    jobs._runtime = before


@pytest.fixture
def flow(engine, slack, bound_jobs) -> Flow:
    return make_flow(engine, slack)


@pytest.fixture
def served(engine, slack, bound_jobs):
    """The real Bolt app on uvicorn with a movable clock, talking to the fake; jobs bound to it."""
    from bot.server import create_asgi_app
    from bot.slack.app import create_app

    settings = settings_for(engine, slack)
    clock = Clock(NOW)
    rt = Runtime(settings=settings, engine=engine, clock=clock)
    rt.prepare(migrate=False)
    known_services(engine, "checkout")  # /incident declare naming an unknown service asks first
    jobs.bind(rt)
    executor = TrackingExecutor()
    bolt = create_app(rt, listener_executor=executor)
    server = LiveServer(create_asgi_app(rt, bolt)).start()
    worker = start_worker(rt, interval=3600)  # woken by each commit that queues a message, as in `serve`
    app = SlackApp(rt=rt, clock=clock, server=server, fake=slack, slack=SlackDriver(server.port, slack, executor, worker=worker), bolt=bolt)
    app.extra["sender"] = OutboxSender(make_web_client(settings, outbox=True), engine, clock, production_environments=PRODUCTION)
    try:
        yield app
    finally:
        try:
            app.slack.settle(timeout=10)
        finally:
            server.stop()
            executor.shutdown(wait=True)
            worker.stop()


def known_services(engine_or_url, *names: str) -> None:
    """Services in the catalogue before a test talks to Slack (a new name would be asked about)."""
    from bot.services.lookup import get_or_create_service
    from bot.store.db import make_engine, session_scope

    engine = make_engine(engine_or_url) if isinstance(engine_or_url, str) else engine_or_url
    try:
        with session_scope(engine) as session:
            for name in names:
                get_or_create_service(session, name, now=NOW)
    finally:
        if isinstance(engine_or_url, str):
            engine.dispose()


@pytest.fixture
def db_file(tmp_path, sqlite_template) -> str:
    """A migrated SQLite file for real dora-bot processes (its URL)."""
    import shutil

    path = tmp_path / "dora.db"
    shutil.copy(sqlite_template, path)
    return f"sqlite:///{path}"


@pytest.fixture(scope="session")
def _pending_drops():
    """DROP DATABASE can take many seconds on a busy server: do it in the background, wait at the end."""
    threads: list[threading.Thread] = []
    yield threads
    for t in threads:
        t.join(120)


@pytest.fixture
def replica_db(_pending_drops):
    """A fresh, empty PostgreSQL database of its own on the TEST_DATABASE_URL server: (url, name).

    For tests with several processes or the scheduler's advisory lock, which is per database
    (another test session on the same database could hold it). Skipped without TEST_DATABASE_URL.
    """
    if not os.environ.get("TEST_DATABASE_URL"):
        pytest.skip("needs PostgreSQL: set TEST_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/test")
    base = make_url(os.environ["TEST_DATABASE_URL"])
    name = f"dora_replicas_{uuid.uuid4().hex[:10]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = base.set(database=name).render_as_string(hide_password=False)

    def drop():
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    yield url, name
    thread = threading.Thread(target=drop, name=f"drop-{name}")
    thread.start()
    _pending_drops.append(thread)


def pytest_configure(config):
    config.addinivalue_line("markers", "allow_violations: the test provokes Block Kit violations on purpose")
