"""A real dora-bot ASGI app on a real uvicorn server (background thread, 127.0.0.1, ephemeral port).

Every test talks plain HTTP to it (``http.client``), on SQLite and, with ``TEST_DATABASE_URL``,
on PostgreSQL (the ``engine`` fixture of ``tests/conftest.py``).
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import Any, Callable

import pytest
from sqlalchemy import text

from bot.config import Settings
from bot.runtime import Runtime
from bot.server import create_asgi_app
from tests.live import Clock
from tests.live import LiveServer as BaseLiveServer

UTC = timezone.utc
TOKEN = "test-ingest-token-0123456789abcdef"
OTHER_TOKEN = "second-ingest-token-fedcba9876543210"
SECRET = "github-webhook-secret-for-tests"
GITLAB_TOKEN = "gitlab-webhook-token-for-tests"
PAGERDUTY_SECRET = "pagerduty-webhook-secret-for-tests"
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
DEFAULT = object()


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def fields(self) -> list[str | None]:
        """The field names of a 422 body's ``errors``."""
        return [e.get("field") for e in self.json().get("errors", [])]

    def __repr__(self) -> str:  # readable assertion failures
        return f"<Response {self.status} {self.body[:500]!r}>"


class Client:
    """A tiny HTTP client over ``http.client``: one connection per request unless told otherwise."""

    def __init__(self, port: int, token: str | None = TOKEN):
        self.port = port
        self.token = token

    def connection(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)

    def request(
        self,
        method: str,
        path: str,
        body: Any = DEFAULT,
        *,
        raw: bytes | None = None,
        headers: dict[str, str] | None = None,
        token: Any = DEFAULT,
        conn: http.client.HTTPConnection | None = None,
    ) -> Response:
        hdrs = {"Accept": "application/json"}
        token = self.token if token is DEFAULT else token
        if token is not None:
            hdrs["Authorization"] = f"Bearer {token}"
        data = raw
        if data is None and body is not DEFAULT:
            data = json.dumps(body).encode()
        if data is not None:
            hdrs["Content-Type"] = "application/json"
        hdrs.update(headers or {})
        own = conn is None
        conn = conn or self.connection()
        try:
            conn.request(method, path, body=data, headers=hdrs)
            resp = conn.getresponse()
            payload = resp.read()
            return Response(resp.status, {k.lower(): v for k, v in resp.getheaders()}, payload)
        finally:
            if own:
                conn.close()

    def get(self, path: str, **kw) -> Response:
        return self.request("GET", path, **kw)

    def post(self, path: str, body: Any = DEFAULT, **kw) -> Response:
        return self.request("POST", path, body, **kw)

    def patch(self, path: str, body: Any = DEFAULT, **kw) -> Response:
        return self.request("PATCH", path, body, **kw)

    # --- webhooks -------------------------------------------------------------------------
    def github(
        self,
        event: str,
        payload: Any,
        *,
        delivery: str | None = None,
        secret: str | None = SECRET,
        raw: bytes | None = None,
        signature: str | None | object = DEFAULT,
    ) -> Response:
        body = raw if raw is not None else json.dumps(payload).encode()
        headers = {"X-GitHub-Event": event, "User-Agent": "GitHub-Hookshot/test"}
        if delivery is not None:
            headers["X-GitHub-Delivery"] = delivery
        if signature is DEFAULT:
            signature = sign(body, secret) if secret is not None else None
        if signature is not None:
            headers["X-Hub-Signature-256"] = signature
        return self.request("POST", "/webhooks/github", raw=body, headers=headers, token=None)

    def alertmanager(self, payload: Any, *, raw: bytes | None = None, token: Any = DEFAULT) -> Response:
        body = raw if raw is not None else json.dumps(payload).encode()
        return self.request("POST", "/webhooks/alertmanager", raw=body, token=token)


def sign(body: bytes, secret: str) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class LiveServer(BaseLiveServer):
    """The shared test server; stopping can leave the join for later (see ``join_stopped``)."""

    def stop(self, *, wait: bool = True) -> None:
        """Ask uvicorn to exit; ``wait=False`` leaves the join to ``join_stopped`` (shutdown takes
        a fixed ~0.2 s of uvicorn's polling, which would otherwise dominate this suite's run time)."""
        self.server.should_exit = True
        if wait:
            self.join()
        else:
            _stopping.append(self)


_stopping: list[LiveServer] = []


@pytest.fixture(scope="session", autouse=True)
def join_stopped():
    """Every server a test stopped has really exited by the end of the session."""
    yield
    while _stopping:
        _stopping.pop().join()


class OutboxEvents:
    """What the requests queued for Slack, read from the outbox (written with each change):
    ``("incident.declared", id)`` for a new incident's card, ``("incident.changed", id)`` for each
    thread line of a change. ``clear()`` forgets what was queued so far."""

    def __init__(self, engine):
        self.engine = engine
        self.after = 0

    def _read(self) -> list[tuple[str, int]]:
        import json

        out: list[tuple[str, int]] = []
        seen_cards: set[int] = set()
        with self.engine.connect() as conn:
            rows = conn.execute(text("SELECT kind, payload FROM outbox WHERE id > :after ORDER BY id"), {"after": self.after}).all()
        for kind, payload in rows:
            data = json.loads(payload)
            if kind == "card.post" and data.get("object") == "incident" and data["id"] not in seen_cards:
                seen_cards.add(data["id"])
                out.append(("incident.declared", data["id"]))
            elif kind == "thread.post":
                out.append(("incident.changed", data["id"]))
        return out

    def clear(self) -> None:
        with self.engine.connect() as conn:
            self.after = conn.execute(text("SELECT coalesce(max(id), 0) FROM outbox")).scalar_one()

    def __iter__(self):
        return iter(self._read())

    def __len__(self) -> int:
        return len(self._read())

    def __eq__(self, other) -> bool:
        return self._read() == list(other)

    def __repr__(self) -> str:
        return repr(self._read())


@dataclass
class Ingest:
    """One running app: its runtime, clock, what it queued for Slack, a client, the database."""

    rt: Runtime
    clock: Clock
    server: LiveServer
    client: Client
    events: OutboxEvents = None

    @property
    def engine(self):
        return self.rt.engine

    def count(self, table: str, where: str = "") -> int:
        with self.engine.connect() as conn:
            return conn.execute(text(f"SELECT count(*) FROM {table} {where}")).scalar_one()

    def rows(self, sql: str, **params) -> list:
        with self.engine.connect() as conn:
            return [tuple(r) for r in conn.execute(text(sql), params).all()]

    def stored_counts(self) -> dict[str, int]:
        """Row counts of every table a request could write to ("nothing stored" checks)."""
        tables = ("service", "deploy", "deploy_commit", "lead_sample", "incident", "incident_event",
                  "webhook_delivery", "commit_push", "pending_commit", "deploy_freeze")
        return {t: self.count(t) for t in tables}


def _settings(engine, **overrides) -> Settings:
    base = Settings(
        database_url=engine.url.render_as_string(hide_password=False),
        ingest_tokens=(TOKEN, OTHER_TOKEN),
        github_webhook_secret=SECRET,
        gitlab_webhook_token=GITLAB_TOKEN,
        pagerduty_webhook_secret=PAGERDUTY_SECRET,
        alert_channel="C0ALERTS",  # so a new incident queues its card
        run_scheduler=False,
    )
    return replace(base, **overrides)


@pytest.fixture
def make_ingest(engine):
    """Start an app on ``engine`` with settings overrides; every server is stopped at teardown."""
    started: list[LiveServer] = []

    def start(clock: Callable[[], datetime] | None = None, **overrides) -> Ingest:
        clock = clock or Clock()
        rt = Runtime(settings=_settings(engine, **overrides), engine=engine, clock=clock)
        server = LiveServer(create_asgi_app(rt, None)).start()
        started.append(server)
        return Ingest(rt=rt, clock=clock, server=server, client=Client(server.port), events=OutboxEvents(engine))

    yield start
    for server in started:
        server.stop(wait=False)
    # The previous tests' servers are gone by now (no request of theirs is in flight): reap them.
    for server in [s for s in _stopping if not s.thread.is_alive()]:
        _stopping.remove(server)
        server.join()


@pytest.fixture
def ingest(make_ingest) -> Ingest:
    return make_ingest()
