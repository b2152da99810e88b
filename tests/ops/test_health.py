"""/healthz and /readyz over real HTTP: what a load balancer and Kubernetes see.

``/healthz`` is liveness (the process answers); ``/readyz`` is 200 only when the database answers,
its schema is current and Slack accepts the bot token, and otherwise 503 naming the failing check.
The Slack check is cached: probes every few seconds must not turn into one ``auth.test`` each.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.config import Settings
from bot.runtime import Runtime
from bot.store.db import make_engine, upgrade
from tests.ops.conftest import free_port, upgrade_url

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def runtime(engine, fake_slack, **overrides) -> Runtime:
    settings = Settings(
        database_url=engine.url.render_as_string(hide_password=False),
        slack_bot_token=overrides.pop("slack_bot_token", fake_slack.token),
        slack_api_url=overrides.pop("slack_api_url", fake_slack.api_url),
        run_scheduler=False,
        **overrides,
    )
    return Runtime(settings=settings, engine=engine, clock=lambda: NOW)


def test_healthz_is_200_and_readyz_200_when_database_schema_and_slack_are_fine(ops_engine, fake_slack, live_app):
    server = live_app(runtime(ops_engine, fake_slack))
    health = server.get("/healthz")
    assert health.status == 200, health
    assert health.json() == {"status": "ok"}
    ready = server.get("/readyz")
    assert ready.status == 200, ready
    assert ready.json() == {"status": "ready", "checks": {"database": "ok", "schema": "ok", "slack": "ok"}}
    assert [c.authorization for c in fake_slack.calls_of("auth.test")] == [f"Bearer {fake_slack.token}"]


@pytest.mark.parametrize("kind", ["postgresql-nothing-listening", "sqlite-unopenable"])
def test_readyz_is_503_naming_the_database_when_it_is_down_and_healthz_stays_200(kind, fake_slack, live_app, tmp_path):
    if kind.startswith("postgresql"):
        url = f"postgresql+psycopg://dora:secret@127.0.0.1:{free_port()}/dora"
    else:
        url = f"sqlite:///{tmp_path / 'no-such-dir' / 'dora.db'}"
    engine = make_engine(url)
    try:
        server = live_app(runtime(engine, fake_slack))
        ready = server.get("/readyz")
        assert ready.status == 503, ready
        body = ready.json()
        assert body["status"] == "not ready"
        assert body["checks"]["database"].startswith("unreachable"), body
        assert body["checks"]["slack"] == "ok"
        assert "secret" not in ready.body.decode()  # the password of the URL is not shown
        # Liveness does not depend on the database: restarting the pod would not fix it.
        assert server.get("/healthz").status == 200
        # Still down at the next probe (a failure is never cached as success).
        assert server.get("/readyz").status == 503
    finally:
        engine.dispose()


def test_readyz_is_503_naming_the_schema_when_it_is_behind_and_200_once_upgraded(backend, make_database, fake_slack, live_app):
    url = make_database(backend)
    upgrade_url(url, "0001")
    engine = make_engine(url)
    try:
        server = live_app(runtime(engine, fake_slack))
        ready = server.get("/readyz")
        assert ready.status == 503, ready
        checks = ready.json()["checks"]
        assert checks["database"] == "ok"
        assert checks["slack"] == "ok"
        assert "0001" in checks["schema"] and "dora-bot db upgrade" in checks["schema"], checks
        assert server.get("/healthz").status == 200
        upgrade(engine)  # what `dora-bot db upgrade` does: the next probe sees it at once
        again = server.get("/readyz")
        assert again.status == 200, again
        assert again.json()["checks"] == {"database": "ok", "schema": "ok", "slack": "ok"}
    finally:
        engine.dispose()


def test_readyz_is_503_on_an_empty_database(make_database, fake_slack, live_app):
    engine = make_engine(make_database("sqlite"))
    try:
        ready = live_app(runtime(engine, fake_slack)).get("/readyz")
        assert ready.status == 503, ready
        assert ready.json()["checks"]["schema"] != "ok"
        assert "dora-bot db upgrade" in ready.json()["checks"]["schema"]
    finally:
        engine.dispose()


def test_readyz_is_503_naming_slack_when_the_token_is_rejected_and_rechecks_it(ops_engine, fake_slack, live_app):
    rt = runtime(ops_engine, fake_slack, slack_bot_token="xoxb-revoked-token-1234")
    server = live_app(rt)
    ready = server.get("/readyz")
    assert ready.status == 503, ready
    checks = ready.json()["checks"]
    assert checks["database"] == "ok" and checks["schema"] == "ok"
    assert "invalid_auth" in checks["slack"] and "not accepted" in checks["slack"], checks
    assert "xoxb-revoked-token-1234" not in ready.body.decode()
    # A rejected token is checked again at the next probe: once it is accepted, ready at once.
    fake_slack.token = "xoxb-revoked-token-1234"
    again = server.get("/readyz")
    assert again.status == 200, again
    assert len(fake_slack.calls_of("auth.test", ok=None)) == 2


def test_readyz_is_503_when_slack_is_unreachable(ops_engine, fake_slack, live_app):
    server = live_app(runtime(ops_engine, fake_slack, slack_api_url=f"http://127.0.0.1:{free_port()}/api/"))
    ready = server.get("/readyz")
    assert ready.status == 503, ready
    assert ready.json()["checks"]["slack"].startswith("unreachable"), ready


def test_the_slack_check_is_cached_not_one_auth_test_per_probe(ops_engine, fake_slack, live_app):
    server = live_app(runtime(ops_engine, fake_slack))
    for _ in range(5):
        ready = server.get("/readyz")
        assert ready.status == 200, ready
    assert len(fake_slack.calls_of("auth.test", ok=None)) == 1
    assert fake_slack.api_calls() == fake_slack.calls_of("auth.test", ok=None)  # nothing else was called


def test_without_a_slack_token_readiness_does_not_call_slack(ops_engine, fake_slack, live_app):
    """The ingest-only process (no Bolt app, no token) is ready on the database alone."""
    rt = runtime(ops_engine, fake_slack, slack_bot_token=None)
    ready = live_app(rt).get("/readyz")
    assert ready.status == 200, ready
    assert ready.json()["checks"]["slack"] == "not used"
    assert fake_slack.api_calls() == []
