"""Exactly once with real `dora-bot serve` processes, real HTTP, signed requests and the fake Slack.

- Slack down, incidents declared and acknowledged through the API, `kill -9`, restart, Slack back:
  every card and every thread line appears exactly once, each line under its card.
- A cold start with Slack down takes a signed /deploy; /readyz says Slack is not reachable yet.
- Two replicas on PostgreSQL: the same signed /deploy replayed to both records one deploy, one card.

SQLite (one file shared by the restarted process) and PostgreSQL (a fresh database of its own on
the TEST_DATABASE_URL server).
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import os
import signal
import subprocess
import time
from urllib.parse import urlencode

import pytest
from sqlalchemy import text

from bot.store.db import make_engine
from tests.scheduler.conftest import ALERTS, known_services
from tests.scheduler.procs import DORA_BOT, Replica, cli_env, wait_until
from tests.slack.harness import SIGNING_SECRET

INGEST = "serve-exactly-once-ingest-token-42"


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request, tmp_path) -> str:
    """A migrated database for real processes: its URL."""
    if request.param == "sqlite":
        return request.getfixturevalue("db_file")
    if not os.environ.get("TEST_DATABASE_URL"):
        pytest.skip("needs PostgreSQL: set TEST_DATABASE_URL")
    url, _ = request.getfixturevalue("replica_db")
    done = subprocess.run([DORA_BOT, "db", "upgrade"], env=cli_env(url), cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return url


def env_for(url: str, slack) -> dict:
    return cli_env(url, slack, SLACK_SIGNING_SECRET=SIGNING_SECRET, INGEST_TOKENS=INGEST, DORA_ALERT_CHANNEL=ALERTS,
                   RUN_SCHEDULER="false", LOG_LEVEL="INFO")


def start(name: str, env: dict, cwd) -> Replica:
    replica = Replica(name, env, cwd)
    wait_until(lambda: replica.get("/healthz")[0] == 200 or not replica.alive(), 40, f"{name} to serve")
    assert replica.alive(), replica.output()
    return replica


def request(port: int, method: str, path: str, body: bytes | None = None, headers: dict | None = None) -> tuple[int, bytes, float]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    started = time.monotonic()
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, resp.read(), time.monotonic() - started
    finally:
        conn.close()


def api(port: int, method: str, path: str, payload: dict) -> tuple[int, dict]:
    status, body, _ = request(port, method, path, json.dumps(payload).encode(),
                              {"Content-Type": "application/json", "Authorization": f"Bearer {INGEST}"})
    return status, json.loads(body or b"null")


def signed_command(slack, command: str, text_: str, *, timestamp: str | None = None) -> tuple[bytes, dict]:
    body = urlencode({
        "token": "unused", "team_id": "T0TEST", "team_domain": "dora-tests", "channel_id": "C1", "channel_name": "general",
        "user_id": "U1", "user_name": "u1", "command": command, "text": text_, "api_app_id": "A0TEST",
        "response_url": slack.new_response_url(), "trigger_id": "1.2.3",
    }).encode()
    timestamp = timestamp or str(int(time.time()))
    signature = "v0=" + hmac.new(SIGNING_SECRET.encode(), b"v0:" + timestamp.encode() + b":" + body, hashlib.sha256).hexdigest()
    headers = {"Content-Type": "application/x-www-form-urlencoded", "X-Slack-Request-Timestamp": timestamp, "X-Slack-Signature": signature}
    return body, headers


def scalar(url: str, sql: str):
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(text(sql)).scalar_one()
    finally:
        engine.dispose()


def test_kill_9_during_an_outage_then_every_card_and_thread_line_exactly_once(database, slack, tmp_path):
    env = env_for(database, slack)
    slack.set_down(True)
    first = start("serve-1", env, tmp_path)
    try:
        for i in (1, 2, 3):
            status, body = api(first.port, "POST", "/api/v1/incidents",
                               {"id": f"pd-{i}", "service": "checkout", "title": f"Outage {i}", "started_at": "2026-11-25T11:00:00Z"})
            assert status == 201, body
        for i in (1, 2, 3):
            status, body = api(first.port, "PATCH", f"/api/v1/incidents/pd-{i}", {"acknowledged_at": "now"})
            assert status == 200, body
        # Everything is in the outbox, tried at least once against the dead Slack, none claimed.
        wait_until(lambda: scalar(database, "SELECT count(*) FROM outbox WHERE attempts >= 1 AND status = 'pending'") >= 3, 20,
                   "first attempts")
        wait_until(lambda: scalar(database, "SELECT count(*) FROM outbox WHERE status = 'sending'") == 0, 10, "no send in flight")
        assert slack.posts() == []
        first.proc.send_signal(signal.SIGKILL)
        first.proc.wait(10)
    finally:
        first.stop()
    assert scalar(database, "SELECT count(*) FROM outbox WHERE status <> 'sent'") == 9  # 3 cards, 3 refreshes, 3 lines

    slack.set_down(False)
    second = start("serve-2", env, tmp_path)
    try:
        wait_until(lambda: scalar(database, "SELECT count(*) FROM outbox WHERE status NOT IN ('sent', 'superseded')") == 0, 60,
                   "the outbox to drain after the restart")
        time.sleep(1.5)  # more worker rounds: nothing else may go out
    finally:
        second.stop()
    cards = slack.top_level(ALERTS)
    assert sorted(c["text"].split(" ")[0] for c in cards) == ["INC-1", "INC-2", "INC-3"], [c["text"] for c in cards]
    for card in cards:
        lines = [m["text"] for m in slack.thread(ALERTS, card["ts"])]
        assert len(lines) == 1 and "Acknowledged" in lines[0], (card["text"], lines)
        assert "Acknowledged" in json.dumps(card["blocks"]) or "acknowledged" in card["text"].lower()
    assert len(slack.posts()) == 6


def test_a_cold_start_with_slack_down_takes_a_command_and_readyz_says_slack_is_not_reachable(database, slack, tmp_path):
    slack.set_down(True)
    known_services(database, "checkout")
    replica = start("serve-cold", env_for(database, slack), tmp_path)
    try:
        body, headers = signed_command(slack, "/deploy", "checkout 4.2")
        status, answer, elapsed = request(replica.port, "POST", "/slack/events", body, headers)
        assert status == 200 and elapsed < 3, (status, answer, elapsed)
        wait_until(lambda: scalar(database, "SELECT count(*) FROM deploy") == 1, 10, "the deploy to be recorded")
        status, ready, _ = request(replica.port, "GET", "/readyz")
        assert status == 503 and "not reachable yet" in json.loads(ready)["checks"]["slack"], ready

        slack.set_down(False)
        wait_until(lambda: len(slack.posts("C1")) == 1, 60, "the deploy card once Slack is back")
        wait_until(lambda: replica.get("/readyz")[0] == 200, 30, "ready")
    finally:
        replica.stop()
    assert len(slack.posts("C1")) == 1


def test_a_replayed_command_on_two_replicas_records_one_deploy(replica_db, slack, tmp_path):
    url, _ = replica_db
    env = env_for(url, slack)
    done = subprocess.run([DORA_BOT, "db", "upgrade"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    known_services(url, "checkout")
    a, b = start("replica-a", env, tmp_path), start("replica-b", env, tmp_path)
    try:
        body, headers = signed_command(slack, "/deploy", "checkout 5.0")
        answers = [request(r.port, "POST", "/slack/events", body, headers) for r in (a, b, a, b)]
        assert [s for s, _, _ in answers] == [200] * 4
        retried = dict(headers, **{"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"})
        assert request(b.port, "POST", "/slack/events", body, retried)[0] == 200
        wait_until(lambda: len(slack.posts("C1")) == 1, 30, "the card")
        time.sleep(1.5)
    finally:
        a.stop()
        b.stop()
    assert scalar(url, "SELECT count(*) FROM deploy") == 1
    assert len(slack.posts("C1")) == 1
    assert len(slack.responses()) == 1, "one answer to the user"
