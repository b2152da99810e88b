"""``dora-bot serve`` (a real child process, DEBUG logs) under a batch of hostile requests to every
route (issue 11): each is a 4xx (or taken), none a 5xx, and the server's log holds no traceback."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import time
from urllib.parse import urlencode

from sqlalchemy import create_engine, text

from tests.ops.conftest import INGEST_TOKEN, SIGNING_SECRET, http, serve_env, upgrade_url

GITHUB_SECRET = "ops-github-secret-9f8e7d6c5b4a"
DEEP = b"[" * 5000 + b"]" * 5000


def slack_signed(body: bytes) -> dict[str, str]:
    ts = str(int(time.time()))
    sig = "v0=" + hmac.new(SIGNING_SECRET.encode(), b"v0:" + ts.encode() + b":" + body, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": sig, "Content-Type": "application/x-www-form-urlencoded"}


def github_signed(body: bytes, event: str = "push", delivery: str = "d-1") -> dict[str, str]:
    sig = "sha256=" + hmac.new(GITHUB_SECRET.encode(), body, hashlib.sha256).hexdigest()
    return {"X-Hub-Signature-256": sig, "X-GitHub-Event": event, "X-GitHub-Delivery": delivery, "Content-Type": "application/json"}


def command(text_: str) -> bytes:
    return urlencode({"command": "/deploy", "text": text_, "team_id": "T1", "user_id": "U1", "channel_id": "C1",
                      "response_url": "http://127.0.0.1:9/r/1", "trigger_id": "1.2.3"}).encode()


def bad_requests() -> list[tuple[str, str, bytes | None, dict, str | None]]:
    """(method, path, body, headers, bearer token)."""
    auth = INGEST_TOKEN
    j = {"Content-Type": "application/json"}
    deploy = {"id": "x1", "service": "checkout", "deployed_at": "2026-11-25T10:00:00Z"}
    out = [
        ("POST", "/api/v1/deploys", json.dumps({**deploy, "deployed_at": "0001-01-01T00:00:00+01:00"}).encode(), j, auth),
        ("POST", "/api/v1/deploys", json.dumps({**deploy, "deployed_at": "9999-12-31T23:59:59-01:00"}).encode(), j, auth),
        ("POST", "/api/v1/deploys", DEEP, j, auth),
        ("POST", "/api/v1/deploys", json.dumps({**deploy, "note": "a\u0000b"}).encode(), j, auth),
        ("POST", "/api/v1/deploys", json.dumps({**deploy, "note": "a\ud800b"}).encode(), j, auth),
        ("POST", "/api/v1/deploys", b"\xff\xfe", j, auth),
        ("POST", "/api/v1/incidents", json.dumps({"id": "i", "service": "s", "started_at": "0999-01-01T00:00:00Z"}).encode(), j, auth),
        ("PATCH", "/api/v1/incidents/INC-99999999999999999999", json.dumps({"update": {"a": 1}}).encode(), j, auth),
        ("GET", "/api/v1/metrics?end=0001-01-02T00:00:00Z", None, {}, auth),
        ("GET", "/api/v1/metrics?days=%C2%B2", None, {}, auth),
        ("GET", "/api/v1/deploys?limit=%C2%B2", None, {}, auth),
        ("GET", "/api/v1/deploys?cursor=%C2%B2", None, {}, auth),
        ("GET", "/api/v1/incidents?since=9999-12-31T23:59:59-01:00", None, {}, auth),
        ("PUT", "/api/v1/deploys", b"{}", j, auth),
        ("POST", "/webhooks/alertmanager", DEEP, j, auth),
        ("POST", "/webhooks/alertmanager", b'{"alerts": "\\u0000"}', j, auth),
        ("POST", "/webhooks/github", DEEP, github_signed(DEEP, delivery="deep"), None),
        ("POST", "/webhooks/github", b'{"a": 1}\x00', github_signed(b'{"a": 1}\x00', "issues", "nul"), None),
        ("POST", "/webhooks/github", b"junk", {"X-Hub-Signature-256": "sha256=\u00e9", "X-GitHub-Event": "push"}, None),
        ("POST", "/slack/events", b"{not json", {"Content-Type": "application/json"}, None),
        ("POST", "/slack/events", b"\xff\xfe", {"X-Slack-Request-Timestamp": "1.5e9", "X-Slack-Signature": "v0=x"}, None),
        ("POST", "/slack/events", b"[1,2]", {**slack_signed(b"[1,2]"), "Content-Type": "application/json"}, None),
        ("POST", "/slack/events", b"payload=%7Bnot", slack_signed(b"payload=%7Bnot"), None),
        ("POST", "/slack/events", command("list limit=²"), slack_signed(command("list limit=²")), None),
    ]
    return out


def test_a_batch_of_hostile_requests_gets_4xx_and_leaves_no_traceback_in_the_log(backend, make_database, serve, fake_slack):
    url = make_database(backend)
    upgrade_url(url)
    fake_slack.token = "xoxb-4242-ops-bot-token-Zq7Vr2Lm9Kd"
    proc = serve(serve_env(url, fake_slack, LOG_LEVEL="DEBUG", GITHUB_WEBHOOK_SECRET=GITHUB_SECRET)).wait_healthy()
    statuses = []
    for method, path, body, headers, token in bad_requests():
        r = http(proc.port, method, path, body, headers=headers, token=token, timeout=30)
        statuses.append((method, path, r.status))
        assert r.status < 500, (method, path, r)
    # One declared 150 MB body: 413 before any of it is sent.
    with socket.create_connection(("127.0.0.1", proc.port), timeout=10) as s:
        s.sendall(b"POST /slack/events HTTP/1.1\r\nHost: x\r\nContent-Length: 150000000\r\n\r\n")
        assert s.recv(4096).startswith(b"HTTP/1.1 413")
    assert proc.get("/healthz").status == 200
    proc.terminate()
    log = proc.output()
    assert "Traceback" not in log, log[-5000:]
    assert "Exception in ASGI application" not in log
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            for table in ("deploy", "incident", "commit_push", "pending_commit"):
                assert conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one() == 0, table
    finally:
        engine.dispose()
    assert any(s == 422 for *_, s in statuses) and any(s == 401 for *_, s in statuses) and any(s == 400 for *_, s in statuses)
