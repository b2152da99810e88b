"""SIGTERM (a rollout, a scale-down) under load: no accepted request is lost.

A real ``dora-bot serve`` takes ``POST /api/v1/deploys`` from several clients at once; SIGTERM
arrives in the middle. Every request that got a 2xx is in the database afterwards, a request
whose body was still arriving when the signal came is finished (draining), nothing gets a 5xx,
connections after the shutdown are refused, and the process exits 0 within the grace period. On
PostgreSQL the scheduler's advisory lock is free again once the process is gone.
"""

from __future__ import annotations

import json
import signal
import socket
import threading
import time
import uuid

import pytest
from sqlalchemy import text

from bot.scheduler.setup import LOCK_KEY
from bot.store.db import make_engine
from tests.ops.conftest import INGEST_TOKEN, http, serve_env, upgrade_url

GRACE_SECONDS = 25  # timeout_graceful_shutdown of `serve`
WORKERS = 4


def deploy_body(deploy_id: str) -> dict:
    return {
        "id": deploy_id, "service": "checkout", "environment": "production", "version": deploy_id,
        "deployed_at": "2026-11-20T10:00:00Z",
        "commits": [{"sha": f"{uuid.uuid4().hex[:12]}", "committed_at": "2026-11-19T10:00:00Z"},
                    {"sha": f"{uuid.uuid4().hex[:12]}", "committed_at": "2026-11-19T12:00:00Z"}],
    }


class Load:
    """Clients posting unique deploys as fast as they can until told to stop."""

    def __init__(self, port: int):
        self.port = port
        self.results: dict[str, object] = {}  # deploy id -> HTTP status, or the exception's class name
        self.after_exit: list[str] = []  # outcome of requests started after the process was gone
        self.exited = threading.Event()
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._work, args=(n,), daemon=True) for n in range(WORKERS)]

    def start(self) -> Load:
        for t in self.threads:
            t.start()
        return self

    def _work(self, n: int) -> None:
        for i in range(100_000):
            started_after_exit = self.exited.is_set()
            deploy_id = f"w{n}-{i}"
            try:
                outcome: object = http(self.port, "POST", "/api/v1/deploys", deploy_body(deploy_id), token=INGEST_TOKEN, timeout=40).status
            except OSError as exc:  # refused, reset, remote closed
                outcome = exc.__class__.__name__
            with self.lock:
                self.results[deploy_id] = outcome
                if started_after_exit:
                    self.after_exit.append(outcome)
            if started_after_exit:
                return
            if not isinstance(outcome, int):
                time.sleep(0.01)

    def join(self) -> None:
        for t in self.threads:
            t.join(timeout=60)
        assert not any(t.is_alive() for t in self.threads), "a client hung"

    def accepted(self) -> set[str]:
        return {k for k, v in self.results.items() if isinstance(v, int) and 200 <= v < 300}


def start_slow_request(port: int, deploy_id: str) -> tuple[socket.socket, bytes]:
    """Headers and the first bytes of the body now; the rest later (``finish_slow_request``)."""
    body = json.dumps(deploy_body(deploy_id)).encode()
    head = (f"POST /api/v1/deploys HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {INGEST_TOKEN}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode()
    sock = socket.create_connection(("127.0.0.1", port), timeout=40)
    sock.sendall(head + body[:20])
    return sock, body[20:]


def finish_slow_request(sock: socket.socket, rest: bytes) -> int:
    sock.sendall(rest)
    data = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    sock.close()
    return int(data.split(b" ", 2)[1])


LOCK_HOLDERS = text("""
    SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
    WHERE l.locktype = 'advisory' AND l.granted AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
      AND ((l.classid::bigint << 32) | l.objid::bigint) = :key
""")


def lock_holders(engine) -> list[str]:
    with engine.connect() as conn:
        return [r[0] for r in conn.execute(LOCK_HOLDERS, {"key": LOCK_KEY})]


def wait_until(predicate, timeout: float, message: str):
    deadline = time.monotonic() + timeout
    while not (result := predicate()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out: {message}")
        time.sleep(0.05)
    return result


def test_sigterm_under_load_loses_no_accepted_request(backend, make_database, serve, fake_slack):
    app_name = f"dora-ops-{uuid.uuid4().hex[:8]}"
    url = make_database(backend, application_name=app_name)
    upgrade_url(url)
    engine = make_engine(url)
    try:
        pg = backend == "postgresql"
        if pg:
            others = lock_holders(engine)
            if others:  # pragma: no cover - another run of this suite is using the lock right now
                pytest.skip(f"the scheduler lock is held by another run: {others}")
        fake_slack.token = "xoxb-4242-ops-bot-token-Zq7Vr2Lm9Kd"
        proc = serve(serve_env(url, fake_slack, RUN_SCHEDULER="true")).wait_healthy()
        if pg:
            holders = wait_until(lambda: lock_holders(engine), 15, "serve takes the scheduler lock")
            if holders != [app_name]:  # pragma: no cover - another run of this suite took it first
                pytest.skip(f"the scheduler lock is held by another run: {holders}")

        load = Load(proc.port).start()
        wait_until(lambda: len(load.accepted()) >= 30, 30, "30 deploys accepted before the signal")
        slow, rest = start_slow_request(proc.port, "slow-1")
        time.sleep(0.3)  # the server has the headers: the request is in flight
        signalled = time.monotonic()
        proc.proc.send_signal(signal.SIGTERM)
        time.sleep(1.0)
        assert proc.proc.poll() is None, "serve exited with a request still in flight"
        slow_status = finish_slow_request(slow, rest)
        try:
            code = proc.proc.wait(GRACE_SECONDS + 10)
        finally:
            elapsed = time.monotonic() - signalled
            load.exited.set()
            load.join()
        proc.wait_output()

        accepted = load.accepted()
        assert slow_status == 201, "the request in flight at SIGTERM was not finished"
        statuses = {v for v in load.results.values()}
        assert not {s for s in statuses if isinstance(s, int) and s >= 500}, statuses
        assert {s for s in statuses if isinstance(s, int)} <= {201}, statuses
        assert {s for s in statuses if not isinstance(s, int)} <= {
            "ConnectionRefusedError", "ConnectionResetError", "RemoteDisconnected", "BrokenPipeError"}, statuses
        # Requests after the shutdown cannot connect at all.
        assert load.after_exit and set(load.after_exit) == {"ConnectionRefusedError"}, load.after_exit
        with pytest.raises(ConnectionRefusedError):
            http(proc.port, "GET", "/healthz", timeout=2)

        with engine.connect() as conn:
            stored = {r[0] for r in conn.execute(text("SELECT external_id FROM deploy"))}
            commits = dict(conn.execute(text(
                "SELECT d.external_id, count(c.id) FROM deploy d JOIN deploy_commit c ON c.deploy_id = d.id GROUP BY d.external_id")).all())
        lost = (accepted | {"slow-1"}) - stored
        assert not lost, f"{len(lost)} accepted deploys are not in the database: {sorted(lost)[:10]}"
        assert all(commits.get(d) == 2 for d in accepted), "an accepted deploy was stored without its commits"
        assert len(accepted) >= 30

        assert elapsed < GRACE_SECONDS + 5, f"took {elapsed:.1f}s to stop"
        if pg:
            assert lock_holders(engine) == [], "the scheduler lock is still held after the process exited"
            with engine.connect() as conn:
                assert conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": LOCK_KEY}).scalar() is True
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": LOCK_KEY})
        assert code == 0, (f"serve exited with {code} after SIGTERM (negative: killed by that signal, so the "
                           f"shutdown steps after uvicorn never ran)\n" + "\n".join(proc.stderr[-5:]))
    finally:
        engine.dispose()


def test_sigterm_when_idle_exits_0_promptly(make_database, serve, fake_slack):
    """The container runtime reads a non-zero code (143 = killed by SIGTERM) as a crash."""
    url = make_database("sqlite")
    upgrade_url(url)
    proc = serve(serve_env(url, fake_slack)).wait_healthy()
    signalled = time.monotonic()
    code = proc.terminate()
    assert time.monotonic() - signalled < 5
    assert any("Shutting down" in line for line in proc.stderr), proc.stderr[-5:]
    assert code == 0, f"serve exited with {code} after SIGTERM"
