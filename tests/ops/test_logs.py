"""Logs: one JSON object per line with a request id, and secrets never written.

The main checks run one real ``dora-bot serve`` (LOG_FORMAT=json, LOG_LEVEL=DEBUG, the most
talkative setting) through requests that get logged: health checks with and without
``X-Request-Id``, readiness (a Slack call), URLs that carry the tokens, an incident whose card post
Slack rejects, a Slack request with a bad signature. ``bot.logs`` is also tested directly.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import logging
import re
import time
from dataclasses import dataclass, field
from datetime import datetime

import pytest

from bot.logs import configure, redact, request_id
from tests.ops.conftest import (
    BOT_TOKEN,
    INGEST_TOKEN,
    SIGNING_SECRET,
    Reply,
    ServeProcess,
    free_port,
    serve_env,
    upgrade_url,
)

SECRETS = {"SLACK_BOT_TOKEN": BOT_TOKEN, "INGEST_TOKENS": INGEST_TOKEN, "SLACK_SIGNING_SECRET": SIGNING_SECRET}
FIELDS = {"time", "level", "logger", "message", "request_id"}


@dataclass
class LoggedRun:
    stdout: list[str]
    stderr: list[str]
    exit_code: int
    replies: dict[str, Reply] = field(default_factory=dict)

    def entries(self) -> list[dict]:
        return [json.loads(line) for line in self.stderr if line.strip()]

    def access(self, needle: str) -> list[dict]:
        return [e for e in self.entries() if e["logger"] == "uvicorn.access" and needle in e["message"]]


@pytest.fixture(scope="module")
def run(tmp_path_factory, fake_slack_server) -> LoggedRun:
    fake = fake_slack_server
    fake.reset()
    fake.token = BOT_TOKEN
    workdir = tmp_path_factory.mktemp("logs")
    url = f"sqlite:///{workdir / 'dora.db'}"
    upgrade_url(url)
    env = serve_env(url, fake, LOG_FORMAT="json", LOG_LEVEL="DEBUG", PORT=str(free_port()),
                    GITHUB_WEBHOOK_SECRET="ops-github-webhook-secret-77")
    proc = ServeProcess(["serve"], env, workdir)
    replies: dict[str, Reply] = {}
    try:
        proc.wait_healthy()
        replies["given_id"] = proc.get("/healthz", headers={"X-Request-Id": "abc-123"})
        replies["ready"] = proc.get("/readyz")
        replies["generated_1"] = proc.get("/healthz")
        replies["generated_2"] = proc.get("/healthz")
        replies["bad_id"] = proc.get("/healthz", headers={"X-Request-Id": "bad id\twith spaces"})
        # Secrets in URLs land in the access log: they must come out redacted.
        replies["token_in_query"] = proc.get(f"/api/v1/deploys?token={INGEST_TOKEN}")
        replies["bot_token_in_path"] = proc.get(f"/files/{BOT_TOKEN}")
        replies["secret_in_query"] = proc.get(f"/oauth?signing_secret={SIGNING_SECRET}&x=1")
        replies["wrong_bearer"] = proc.get("/api/v1/deploys", token="not-the-right-token-123456")
        # Slack rejects the token from now on: the incident card post fails and is logged.
        fake.token = "xoxb-rotated-by-an-admin"
        replies["incident"] = proc.request("POST", "/api/v1/incidents", {"id": "pd-LOG1", "service": "checkout",
                                           "started_at": "2026-11-25T08:00:00Z"}, token=INGEST_TOKEN)
        fake.wait_for(lambda: fake.calls_of("chat.postMessage", ok=False), timeout=10, message="the failed card post")
        body = b"command=%2Fdora&text=help&team_id=T0TEST&user_id=U1&channel_id=C1"
        stamp = str(int(time.time()))
        forged = "v0=" + hmac.new(b"not-the-signing-secret", b"v0:" + stamp.encode() + b":" + body, hashlib.sha256).hexdigest()
        replies["forged_slack"] = proc.request("POST", "/slack/events", body, headers={
            "Content-Type": "application/x-www-form-urlencoded", "X-Slack-Request-Timestamp": stamp, "X-Slack-Signature": forged})
        deadline = time.monotonic() + 10
        while not any("invalid_auth" in line and "outbox" in line for line in proc.stderr) and time.monotonic() < deadline:
            time.sleep(0.05)
        code = proc.terminate()
    finally:
        proc.kill()
        fake.reset()
    return LoggedRun(stdout=list(proc.stdout), stderr=list(proc.stderr), exit_code=code, replies=replies)


def test_every_line_is_one_json_object_with_time_level_logger_message_and_request_id(run):
    assert run.stderr, "nothing was logged"
    for line in run.stderr:
        try:
            entry = json.loads(line)
        except ValueError:
            pytest.fail(f"not a JSON line: {line!r}")
        assert isinstance(entry, dict) and FIELDS <= entry.keys(), entry
        assert entry["level"] in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"), entry
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", entry["time"]), entry
        datetime.fromisoformat(entry["time"].replace("Z", "+00:00"))
        assert isinstance(entry["logger"], str) and entry["logger"]
        assert isinstance(entry["message"], str)
    for line in run.stdout:  # anything on stdout is JSON too
        assert isinstance(json.loads(line), dict), line
    loggers = {e["logger"] for e in run.entries()}
    assert {"uvicorn.error", "uvicorn.access", "bot.slack.delivery"} <= loggers, loggers


def test_a_given_x_request_id_is_echoed_and_in_the_access_log_line(run):
    reply = run.replies["given_id"]
    assert reply.status == 200
    assert reply.headers["x-request-id"] == "abc-123"
    lines = [e for e in run.access('"GET /healthz') if e["request_id"] == "abc-123"]
    assert len(lines) == 1, run.access("/healthz")
    assert " 200" in lines[0]["message"]


def test_without_x_request_id_each_request_gets_its_own_generated_id(run):
    first, second = run.replies["generated_1"].headers["x-request-id"], run.replies["generated_2"].headers["x-request-id"]
    assert first and second and first != second
    ids = {e["request_id"] for e in run.access('"GET /healthz')}
    assert {first, second, "abc-123"} <= ids
    # A malformed id is not trusted: a generated one is used instead.
    bad = run.replies["bad_id"].headers["x-request-id"]
    assert bad and " " not in bad and bad != "bad id\twith spaces"
    # Lines that are not about a request carry null.
    assert any(e["request_id"] is None and e["logger"] == "uvicorn.error" for e in run.entries())


def test_lines_logged_while_serving_a_request_carry_its_request_id(run):
    ready = run.replies["ready"]
    assert ready.status == 200, ready
    rid = ready.headers["x-request-id"]
    during = [e for e in run.entries() if e["request_id"] == rid]
    assert any(e["logger"].startswith("slack_sdk") and "auth.test" in e["message"] for e in during), during
    assert any(e["logger"] == "uvicorn.access" and "/readyz" in e["message"] for e in during), during


def test_no_token_or_secret_is_ever_written(run):
    output = "\n".join(run.stdout + run.stderr)
    for name, secret in SECRETS.items():
        assert secret not in output, f"{name} appears in the output"
    assert "ops-github-webhook-secret-77" not in output
    # The requests that carried them were logged, redacted (so the check above is not vacuous).
    for key, needle in (("token_in_query", "/api/v1/deploys?token="), ("bot_token_in_path", "/files/"),
                        ("secret_in_query", "/oauth?signing_secret=")):
        lines = run.access(needle)
        assert lines and all("[redacted]" in e["message"] for e in lines), (key, lines)
    assert run.replies["token_in_query"].status == 401
    assert run.replies["wrong_bearer"].status == 401


def test_failures_are_logged_with_what_went_wrong(run):
    assert run.replies["incident"].status == 201, run.replies["incident"]
    assert run.replies["forged_slack"].status == 401, run.replies["forged_slack"]
    failed = [e for e in run.entries() if e["logger"] == "bot.slack.delivery" and "invalid_auth" in e["message"]]
    assert failed and failed[0]["level"] == "WARNING", failed


# --- bot.logs directly -------------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("token xoxb-1234-5678-AbCdEf here", "token [redacted] here"),
    ("user token xoxp-1-2-3-abc, app xapp-1-A012-345-f00", "user token [redacted], app [redacted]"),
    ("Authorization: Bearer abc.DEF-123_~+/=", "Authorization: Bearer [redacted]"),
    ("authorization: bearer tok123", "authorization: bearer [redacted]"),
    ("postgresql+psycopg://dora:s3cr3t!@db:5432/dora", "postgresql+psycopg://dora:[redacted]@db:5432/dora"),
    ("could not connect to postgres://u:p4ss@h/d: refused", "could not connect to postgres://u:[redacted]@h/d: refused"),
    ("postgresql://db.internal:5432/dora", "postgresql://db.internal:5432/dora"),  # no password: unchanged
    ("deploy xox to prod, then xoxb without a dash", "deploy xox to prod, then xoxb without a dash"),
    ("nothing to hide", "nothing to hide"),
])
def test_redact_patterns(text, expected):
    assert redact(text) == expected


def test_redact_replaces_every_configured_secret_everywhere():
    secrets = ("ingest-token-0123456789", "a1b2c3d4e5f6", "")
    text = "ingest-token-0123456789 / a1b2c3d4e5f6 and again ingest-token-0123456789"
    assert redact(text, secrets) == "[redacted] / [redacted] and again [redacted]"
    assert redact("keep me", ("",)) == "keep me"  # an empty secret is not a wildcard
    assert redact("sig+with.(regex)*chars!", ("with.(regex)*chars",)) == "sig+[redacted]!"


@pytest.fixture
def restore_logging():
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    named = {name: (list(logging.getLogger(name).handlers), logging.getLogger(name).level, logging.getLogger(name).propagate)
             for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "apscheduler", "alembic")}
    yield
    for h in list(root.handlers):
        root.removeHandler(h)
    for h in saved[0]:
        root.addHandler(h)
    root.setLevel(saved[1])
    for name, (handlers, level, propagate) in named.items():
        logger = logging.getLogger(name)
        logger.handlers, logger.propagate = handlers, propagate
        logger.setLevel(level)


def test_configure_json_lines_redact_messages_arguments_and_tracebacks(restore_logging):
    buf = io.StringIO()
    configure(level="INFO", fmt="json", secrets=(INGEST_TOKEN, SIGNING_SECRET), stream=buf)
    log = logging.getLogger("bot.ops.test")
    token = request_id.set("req-42")
    try:
        log.info("token %s and %s", INGEST_TOKEN, BOT_TOKEN)
        try:
            raise RuntimeError(f"Slack said no to {SIGNING_SECRET}")
        except RuntimeError:
            log.exception("call failed")
    finally:
        request_id.reset(token)
    log.warning("after the request")
    log.debug("not at INFO")
    entries = [json.loads(line) for line in buf.getvalue().splitlines()]
    assert [e["level"] for e in entries] == ["INFO", "ERROR", "WARNING"]
    assert entries[0]["message"] == "token [redacted] and [redacted]"
    assert entries[0]["request_id"] == "req-42" and entries[1]["request_id"] == "req-42"
    assert entries[2]["request_id"] is None
    assert "RuntimeError" in entries[1]["exception"] and "[redacted]" in entries[1]["exception"]
    for secret in (INGEST_TOKEN, SIGNING_SECRET, BOT_TOKEN):
        assert secret not in buf.getvalue()


def test_configure_text_format_shows_the_request_id(restore_logging):
    buf = io.StringIO()
    configure(level="DEBUG", fmt="text", secrets=(), stream=buf)
    token = request_id.set("abc-123")
    try:
        logging.getLogger("bot.ops.test").info("hello xoxb-9-9-secret")
    finally:
        request_id.reset(token)
    line = buf.getvalue().strip()
    assert re.search(r" INFO bot\.ops\.test \[abc-123\]: hello \[redacted\]$", line), line


def test_uvicorn_loggers_go_through_the_one_redacting_handler(restore_logging):
    buf = io.StringIO()
    configure(level="INFO", fmt="json", secrets=(INGEST_TOKEN,), stream=buf)
    logging.getLogger("uvicorn.access").setLevel(logging.NOTSET)  # in-thread test servers of this session set it
    logging.getLogger("uvicorn.access").info('%s - "%s %s HTTP/%s" %d', "127.0.0.1:1", "GET", f"/x?t={INGEST_TOKEN}", "1.1", 200)
    entry = json.loads(buf.getvalue())
    assert entry["logger"] == "uvicorn.access" and "[redacted]" in entry["message"] and INGEST_TOKEN not in buf.getvalue()


@pytest.mark.parametrize("ops_engine", ["sqlite"], indirect=True)
def test_a_secret_sent_as_x_request_id_is_not_written_either(restore_logging, ops_engine, fake_slack, live_app):
    """The request id is client input that is logged on every line: it is output like any other.

    A client (or a misconfigured proxy) that puts a token in X-Request-Id must not get it written
    to the logs; the middleware accepts any [A-Za-z0-9-] id up to 64 characters, which a bot
    token is.
    """
    from bot.config import Settings
    from bot.runtime import Runtime

    settings = Settings(database_url="sqlite://", slack_bot_token=BOT_TOKEN, slack_api_url=f"http://127.0.0.1:{free_port()}/api/",
                        run_scheduler=False)
    server = live_app(Runtime(settings=settings, engine=ops_engine))
    buf = io.StringIO()
    configure(level="INFO", fmt="json", secrets=(BOT_TOKEN,), stream=buf)
    reply = server.get("/readyz", headers={"X-Request-Id": BOT_TOKEN})  # Slack unreachable: errors are logged
    assert reply.status == 503
    entries = [json.loads(line) for line in buf.getvalue().splitlines()]
    assert entries, "the failing Slack call logged nothing"
    assert BOT_TOKEN not in buf.getvalue(), entries[0]
