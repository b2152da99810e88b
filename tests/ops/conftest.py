"""Operating dora-bot: real processes, real HTTP, real databases.

Two ways to run the server:

- ``live_app(rt, bolt)``: ``create_asgi_app`` on a real uvicorn in a background thread (fast; for
  readiness and ``/metrics`` checks that need to reach into the runtime).
- ``serve(env)``: ``dora-bot serve`` as a child process, exactly as the container runs it (logs,
  SIGTERM, start-up errors). Every child is killed at teardown.

``make_database(backend)`` gives an *empty* database: a new SQLite file, or a new PostgreSQL
database on the server of ``TEST_DATABASE_URL`` (dropped at teardown), so tests of migrations,
start-up and the scheduler's advisory lock (which is per database) never meet other tests.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from http.client import HTTPConnection
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from tests.live import LiveServer as BaseLiveServer

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
DORA_BOT = str(VENV_BIN / "dora-bot")

# Distinctive secrets, so a leak in the output is unmistakable.
BOT_TOKEN = "xoxb-4242-ops-bot-token-Zq7Vr2Lm9Kd"
SIGNING_SECRET = "ops5ign1ng5ecret0f0a1b2c3d4e5f6789"
INGEST_TOKEN = "ops-ingest-token-Tk81Mx0QpW3zJv6"

# Every variable of the product contract: scrubbed from the children's environment so the
# developer's own settings never leak into a test.
CONTRACT = (
    "DATABASE_URL", "SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN", "SLACK_API_URL", "HOST",
    "PORT", "DORA_TIMEZONE", "DORA_PRODUCTION_ENVIRONMENTS", "DORA_ALERT_CHANNEL", "INGEST_TOKENS",
    "GITHUB_WEBHOOK_SECRET", "GITLAB_WEBHOOK_TOKEN", "PAGERDUTY_WEBHOOK_SECRET", "DORA_GATE_SEVERITY", "RUN_SCHEDULER",
    "DORA_ACK_REMINDER", "DORA_UPDATE_REMINDER", "DORA_ADMINS",
    "LOG_LEVEL", "LOG_FORMAT",
    "DORA_INCIDENT_CHANNELS", "PAGERDUTY_ROUTING_KEY", "PAGERDUTY_MIN_SEVERITY", "PAGERDUTY_EVENTS_URL",
)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- plain HTTP ---------------------------------------------------------------------------

@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def __repr__(self) -> str:
        return f"<Reply {self.status} {self.body[:400]!r}>"


def http(port: int, method: str, path: str, body: Any = None, *, headers: dict | None = None, token: str | None = None,
         timeout: float = 10) -> Reply:
    hdrs = dict(headers or {})
    data = None
    if body is not None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        hdrs.setdefault("Content-Type", "application/json")
    if token is not None:
        hdrs["Authorization"] = f"Bearer {token}"
    conn = HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=data, headers=hdrs)
        resp = conn.getresponse()
        return Reply(resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read())
    finally:
        conn.close()


# --- uvicorn in a thread --------------------------------------------------------------------

class LiveServer(BaseLiveServer):
    """The shared test server, with the plain HTTP helpers these tests use."""

    def get(self, path: str, **kw) -> Reply:
        return http(self.port, "GET", path, **kw)

    def request(self, method: str, path: str, body: Any = None, **kw) -> Reply:
        return http(self.port, method, path, body, **kw)


@pytest.fixture
def live_app():
    """``live_app(rt, bolt=None, readiness=None)`` -> a started LiveServer; stopped at teardown."""
    from bot.server import create_asgi_app

    servers: list[LiveServer] = []

    def start(rt, bolt=None, *, readiness=None) -> LiveServer:
        server = LiveServer(create_asgi_app(rt, bolt, readiness=readiness)).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


# --- databases ---------------------------------------------------------------------------------

def _pg_url() -> str | None:
    return os.environ.get("TEST_DATABASE_URL") or None


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request) -> str:
    """``sqlite``, and ``postgresql`` when TEST_DATABASE_URL is set."""
    if request.param == "postgresql" and _pg_url() is None:
        pytest.skip("PostgreSQL tests need TEST_DATABASE_URL (e.g. postgresql+psycopg://postgres@127.0.0.1:5432/test)")
    return request.param


PG_DATABASE = "dora_ops_suite"
_numbers = itertools.count(1)


class OpsPostgres:
    """A database of its own on TEST_DATABASE_URL's server (advisory locks are per database, so
    the scheduler lock of these tests never meets other suites'); one schema per test in it."""

    def __init__(self, base: str):
        self.base = make_url(base).set(drivername="postgresql+psycopg")
        server = create_engine(self.base, isolation_level="AUTOCOMMIT")
        try:
            with server.connect() as conn:
                exists = conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": PG_DATABASE}).first()
                if not exists:
                    try:
                        conn.execute(text(f'CREATE DATABASE "{PG_DATABASE}"'))
                    except Exception:
                        # Another run created it meanwhile; anything else shows up just below.
                        pass
        finally:
            server.dispose()
        self.admin = create_engine(self.base.set(database=PG_DATABASE), isolation_level="AUTOCOMMIT")
        with self.admin.connect() as conn:
            conn.execute(text("SELECT 1"))

    def new_schema(self, *, application_name: str | None = None) -> tuple[str, str]:
        """(schema, URL whose connections use it); the schema is empty."""
        schema = f"ops_{os.getpid()}_{next(_numbers)}_{uuid.uuid4().hex[:6]}"
        with self.admin.connect() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        query = {"options": f"-csearch_path={schema}"}
        if application_name:
            query["application_name"] = application_name
        url = self.base.set(database=PG_DATABASE).update_query_dict(query)
        return schema, url.render_as_string(hide_password=False)

    def drop_schema(self, schema: str) -> None:
        with self.admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))


@pytest.fixture(scope="session")
def ops_pg():
    base = _pg_url()
    if base is None:
        pytest.skip("PostgreSQL tests need TEST_DATABASE_URL (e.g. postgresql+psycopg://postgres@127.0.0.1:5432/test)")
    try:
        pg = OpsPostgres(base)
    except Exception as exc:  # pragma: no cover - depends on the server
        pytest.skip(f"no database of our own on TEST_DATABASE_URL's server: {exc.__class__.__name__}: {exc}")
    yield pg
    pg.admin.dispose()


@pytest.fixture
def make_database(request, tmp_path):
    """``make_database(backend, application_name=None)`` -> the URL of a new, empty database
    (a new SQLite file, or a new schema in the PostgreSQL database of these tests)."""
    schemas: list[str] = []
    pg: OpsPostgres | None = None

    def make(backend: str, *, application_name: str | None = None) -> str:
        nonlocal pg
        if backend == "sqlite":
            return f"sqlite:///{tmp_path / f'ops-{next(_numbers)}.db'}"
        pg = request.getfixturevalue("ops_pg")
        schema, url = pg.new_schema(application_name=application_name)
        schemas.append(schema)
        return url

    yield make
    for schema in schemas:
        pg.drop_schema(schema)


@pytest.fixture(scope="session")
def ops_pg_migrated(ops_pg):
    """One migrated schema for the whole session (emptied before each test that uses it)."""
    from bot.store.db import make_engine, upgrade

    schema, url = ops_pg.new_schema()
    engine = make_engine(url)
    upgrade(engine)
    yield engine
    engine.dispose()
    ops_pg.drop_schema(schema)


@pytest.fixture(params=["sqlite", "postgresql"])
def ops_engine(request, tmp_path, sqlite_template):
    """A migrated, empty database: SQLite, and PostgreSQL (in these tests' own database) when
    TEST_DATABASE_URL is set."""
    import shutil

    from bot.store.db import make_engine

    if request.param == "sqlite":
        path = tmp_path / "dora.db"
        shutil.copy(sqlite_template, path)
        engine = make_engine(f"sqlite:///{path}")
        yield engine
        engine.dispose()
        return
    engine = request.getfixturevalue("ops_pg_migrated")
    from sqlmodel import SQLModel

    import bot.store.models  # noqa: F401

    names = ", ".join(t.name for t in SQLModel.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    yield engine


# --- dora-bot as a child process ---------------------------------------------------------------

def child_env(**overrides: str | None) -> dict[str, str]:
    """The test process's environment without any dora-bot setting, plus ``overrides``."""
    env = {k: v for k, v in os.environ.items() if k not in CONTRACT}
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONUNBUFFERED"] = "1"
    for key, value in overrides.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def run_cli(args: list[str], *, env: dict[str, str], cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([DORA_BOT, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)


class ServeProcess:
    """``dora-bot serve`` in a child process; its stdout and stderr are collected line by line."""

    def __init__(self, args: list[str], env: dict[str, str], cwd: Path):
        self.port = int(env["PORT"])
        self.env = env
        self.proc = subprocess.Popen(
            [DORA_BOT, *args], env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, encoding="utf-8", errors="replace",
        )
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        self._readers = [
            threading.Thread(target=self._read, args=(self.proc.stdout, self.stdout), daemon=True),
            threading.Thread(target=self._read, args=(self.proc.stderr, self.stderr), daemon=True),
        ]
        for t in self._readers:
            t.start()

    @staticmethod
    def _read(stream, sink: list[str]) -> None:
        for line in stream:
            sink.append(line.rstrip("\n"))

    @property
    def pid(self) -> int:
        return self.proc.pid

    def output(self) -> str:
        return "\n".join(self.stdout + self.stderr)

    def wait_healthy(self, timeout: float = 30) -> ServeProcess:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.wait_output()
                raise AssertionError(f"dora-bot serve exited with {self.proc.returncode}:\n{self.output()}")
            try:
                if http(self.port, "GET", "/healthz", timeout=2).status == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.05)
        raise AssertionError(f"dora-bot serve did not answer /healthz within {timeout}s:\n{self.output()}")

    def get(self, path: str, **kw) -> Reply:
        return http(self.port, "GET", path, **kw)

    def request(self, method: str, path: str, body: Any = None, **kw) -> Reply:
        return http(self.port, method, path, body, **kw)

    def terminate(self, timeout: float = 40) -> int:
        """SIGTERM, then wait for the exit (the code, negative when killed by a signal)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout)
        self.wait_output()
        return code

    def wait_output(self) -> None:
        for t in self._readers:
            t.join(timeout=5)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:  # pragma: no cover
                pass
        self.wait_output()
        for stream in (self.proc.stdout, self.proc.stderr):
            try:
                stream.close()
            except Exception:  # pragma: no cover
                pass


@pytest.fixture
def serve(tmp_path, make_database):  # after make_database: the children are gone before a schema is dropped
    """``serve(env, args=("serve",))`` -> a started ServeProcess (not yet healthy); killed at teardown."""
    procs: list[ServeProcess] = []

    def start(env: dict[str, str], args: tuple[str, ...] = ("serve",)) -> ServeProcess:
        proc = ServeProcess(list(args), env, tmp_path)
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        proc.kill()


def serve_env(database_url: str, fake_slack, **overrides: str | None) -> dict[str, str]:
    """A complete HTTP-mode configuration pointed at ``database_url`` and the fake Slack."""
    settings = dict(
        DATABASE_URL=database_url,
        SLACK_BOT_TOKEN=BOT_TOKEN,
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
        SLACK_API_URL=fake_slack.api_url,
        INGEST_TOKENS=INGEST_TOKEN,
        HOST="127.0.0.1",
        PORT=str(free_port()),
        DORA_ALERT_CHANNEL="C0ALERTS",
        # The scheduler lock is per database: only the test about it takes it (RUN_SCHEDULER=true).
        RUN_SCHEDULER="false",
    )
    settings.update(overrides)
    return child_env(**settings)


def upgrade_url(url: str, revision: str = "head") -> None:
    """Migrate the database at ``url`` in this process."""
    from bot.store.db import make_engine, upgrade

    engine = make_engine(url)
    try:
        upgrade(engine, revision)
    finally:
        engine.dispose()
