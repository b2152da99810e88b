"""GET /metrics as Prometheus scrapes it, parsed with prometheus_client's own parser.

HTTP requests are counted by route *template*, Slack Web API calls by method and outcome, the
outbox depth is a gauge, and the four keys per service (and ``service="all"``) over 30 days are
exactly what ``build_metrics`` says, with no sample where there is no number.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot.config import Settings
from bot.runtime import Runtime
from bot.services import outbox
from bot.store.db import session_scope
from bot.telemetry import GaugeRefresher, Telemetry
from tests.dbutil import load
from tests.dbutil import metrics as build
from tests.live import Clock
from tests.ops.conftest import INGEST_TOKEN, LiveServer

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
PRODUCTION = ("production", "prod")
KEY_GAUGES = {
    "dora_deployment_frequency_per_day": ("deployment_frequency", "per_day"),
    "dora_deploy_days_per_week": ("deployment_frequency", "deploy_days_per_week"),
    "dora_lead_time_seconds": ("lead_time", "median_seconds"),
    "dora_change_failure_rate": ("change_failure_rate", "rate"),
    "dora_deployment_rework_rate": ("deployment_rework_rate", "rate"),
    "dora_failed_deployment_recovery_time_seconds": ("failed_deployment_recovery_time", "median_seconds"),
    "dora_time_to_restore_seconds": ("time_to_restore", "median_seconds"),
}


def scrape(server: LiveServer) -> dict[str, list[tuple[dict, float]]]:
    """Sample name -> [(labels, value)], from a real scrape of /metrics."""
    reply = server.get("/metrics")
    assert reply.status == 200, reply
    assert reply.headers["content-type"].startswith("text/plain"), reply.headers
    samples: dict[str, list[tuple[dict, float]]] = {}
    for family in text_string_to_metric_families(reply.body.decode()):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append((dict(sample.labels), sample.value))
    return samples


def value(samples, name: str, **labels) -> float | None:
    found = [v for lbl, v in samples.get(name, []) if all(lbl.get(k) == w for k, w in labels.items())]
    assert len(found) <= 1, (name, labels, found)
    return found[0] if found else None


def wait_for_sample(server, name: str, expected: float, timeout: float = 5.0, **labels) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        samples = scrape(server)
        if value(samples, name, **labels) == expected or time.monotonic() > deadline:
            return samples
        time.sleep(0.05)


@pytest.fixture
def app(ops_engine, fake_slack, live_app):
    """The served app with telemetry, the real Bolt app and the outbox worker (as `serve` wires it)."""
    from bot.slack.app import create_app
    from bot.slack.delivery import start_worker

    settings = Settings(
        database_url=ops_engine.url.render_as_string(hide_password=False),
        slack_bot_token=fake_slack.token,
        slack_signing_secret="metrics-signing-secret-0123456789",
        slack_api_url=fake_slack.api_url,
        alert_channel="C0ALERTS",
        ingest_tokens=(INGEST_TOKEN,),
        production_environments=PRODUCTION,
        run_scheduler=False,
    )
    rt = Runtime(settings=settings, engine=ops_engine, clock=Clock(NOW))
    rt.telemetry = Telemetry()
    bolt = create_app(rt)
    worker = start_worker(rt)
    server = live_app(rt, bolt)
    server.rt = rt
    server.worker = worker
    yield server
    worker.stop()


def test_http_requests_are_counted_by_route_template_method_and_status(app):
    api = dict(token=INGEST_TOKEN)
    created = app.request("POST", "/api/v1/incidents",
                          {"id": "pd-OPS77", "service": "checkout", "started_at": "2026-11-25T11:00:00Z"}, **api)
    assert created.status == 201, created
    for _ in range(2):
        patched = app.request("PATCH", "/api/v1/incidents/pd-OPS77", {"acknowledged_at": "2026-11-25T11:05:00Z"}, **api)
        assert patched.status == 200, patched
    assert app.request("PATCH", "/api/v1/incidents/pd-NOPE-9", {"acknowledged_at": "now"}, **api).status == 404
    assert app.get("/api/v1/deploys", token="wrong-token-000000000000").status == 401
    assert app.get("/no/such/path-123").status == 404
    assert app.request("DELETE", "/api/v1/incidents/pd-OPS77", **api).status == 405  # a partial match
    assert app.get("/healthz").status == 200

    samples = scrape(app)
    req = "dora_http_requests_total"
    template = "/api/v1/incidents/{incident_id}"
    assert value(samples, req, route="/api/v1/incidents", method="POST", status="201") == 1
    assert value(samples, req, route=template, method="PATCH", status="200") == 2
    assert value(samples, req, route=template, method="PATCH", status="404") == 1
    assert value(samples, req, route="/api/v1/deploys", method="GET", status="401") == 1
    assert value(samples, req, route="/healthz", method="GET", status="200") == 1
    assert value(samples, req, route="other", method="GET", status="404") == 1
    assert value(samples, req, route="other", method="DELETE", status="405") == 1
    # Concrete ids and paths never become label values (unbounded cardinality).
    routes = {lbl["route"] for lbl, _ in samples[req]}
    assert not any("pd-" in r or "path-123" in r for r in routes), routes
    assert value(samples, "dora_http_request_duration_seconds_count", route=template) == 3
    assert value(samples, "dora_http_request_duration_seconds_bucket", route=template, le="+Inf") == 3
    # The scrape itself is counted too (from the next scrape on).
    assert value(scrape(app), req, route="/metrics", method="GET", status="200") == 1


def history() -> list[dict]:
    day = timedelta(days=1)
    records = []
    # checkout: deploys with commits, one caused an incident (resolved), one rolled back.
    for i in range(6):
        at = NOW - (i + 1) * 3 * day
        records.append({"type": "deploy", "id": f"co-{i}", "service": "checkout", "environment": "production",
                        "deployed_at": at.isoformat(), "commits": [
                            {"sha": f"c0ffee{i}a", "committed_at": (at - timedelta(hours=2 + i)).isoformat()},
                            {"sha": f"c0ffee{i}b", "committed_at": (at - timedelta(hours=30 + i)).isoformat()}]})
    records.append({"type": "incident", "id": "pd-1", "service": "checkout", "environment": "production",
                    "started_at": (NOW - 9 * day + timedelta(hours=1)).isoformat(),
                    "resolved_at": (NOW - 9 * day + timedelta(hours=3)).isoformat(), "caused_by": "co-2"})
    records.append({"type": "deploy", "id": "co-rb", "service": "checkout", "environment": "prod",
                    "deployed_at": (NOW - 2 * day).isoformat(), "rollback_of": "co-0"})
    # search: production deploys without commits (no lead time), no incident (no time to restore).
    for i in range(3):
        records.append({"type": "deploy", "id": f"se-{i}", "service": "search", "environment": "production",
                        "deployed_at": (NOW - (i + 1) * 5 * day).isoformat()})
    # billing: only an open incident (nothing to compute at all but a deploy frequency of 0).
    records.append({"type": "incident", "id": "pd-2", "service": "billing", "started_at": (NOW - day).isoformat()})
    # ledger: only staging deploys, and an old production one outside the 30-day window.
    records.append({"type": "deploy", "id": "le-1", "service": "ledger", "environment": "staging",
                    "deployed_at": (NOW - day).isoformat(), "commits": [{"sha": "1ed9e71", "committed_at": (NOW - 2 * day).isoformat()}]})
    records.append({"type": "deploy", "id": "le-0", "service": "ledger", "environment": "production",
                    "deployed_at": (NOW - 45 * day).isoformat(),
                    "commits": [{"sha": "1ed9e70", "committed_at": (NOW - 46 * day).isoformat()}]})
    records.append({"type": "incident", "id": "pd-3", "service": "ledger", "started_at": (NOW - 44 * day).isoformat(),
                    "resolved_at": (NOW - 43 * day).isoformat()})
    return records


def test_key_gauges_equal_build_metrics_for_every_service_and_all(app, ops_engine):
    report = load(ops_engine, history(), now=NOW)
    assert report.committed and report.invalid == 0, report
    GaugeRefresher(app.rt, app.rt.telemetry).refresh()
    samples = scrape(app)

    scopes = {"all": None, "checkout": "checkout", "search": "search", "billing": "billing", "ledger": "ledger"}
    expected_missing = set()
    for label, service in scopes.items():
        report = build(ops_engine, end=NOW, days=30, service=service, production_environments=PRODUCTION)
        for gauge, (key, field) in KEY_GAUGES.items():
            want = report[key][field]
            got = value(samples, gauge, service=label)
            if want is None:
                expected_missing.add((gauge, label))
                assert got is None, f"{gauge}{{service={label!r}}} = {got}, but build_metrics has no number"
            else:
                assert got == pytest.approx(want, rel=1e-12, abs=1e-12), (gauge, label, got, want)
    # The history was built so that every kind of gap occurs (guards the test itself).
    assert ("dora_lead_time_seconds", "search") in expected_missing
    assert ("dora_time_to_restore_seconds", "search") in expected_missing
    assert ("dora_change_failure_rate", "billing") in expected_missing
    assert ("dora_lead_time_seconds", "ledger") in expected_missing
    assert value(samples, "dora_lead_time_seconds", service="checkout") is not None
    assert value(samples, "dora_time_to_restore_seconds", service="all") is not None
    assert value(samples, "dora_change_failure_rate", service="checkout") > 0
    assert value(samples, "dora_deployment_rework_rate", service="checkout") > 0  # the rollback
    assert value(samples, "dora_failed_deployment_recovery_time_seconds", service="checkout") is not None
    assert ("dora_deployment_rework_rate", "billing") in expected_missing
    # Exactly the known services and "all": no other label values.
    for gauge in KEY_GAUGES:
        assert {lbl["service"] for lbl, _ in samples.get(gauge, [])} <= set(scopes), gauge
    assert {lbl["service"] for lbl, _ in samples["dora_deployment_frequency_per_day"]} == set(scopes)
    assert value(samples, "dora_metrics_computed_timestamp_seconds") == NOW.timestamp()


def test_a_key_whose_data_left_the_window_loses_its_sample(app, ops_engine):
    load(ops_engine, history(), now=NOW)
    refresher = GaugeRefresher(app.rt, app.rt.telemetry)
    refresher.refresh()
    assert value(scrape(app), "dora_lead_time_seconds", service="checkout") is not None
    app.rt.clock.now = NOW + timedelta(days=90)  # everything is older than 30 days now
    refresher.refresh()
    samples = scrape(app)
    for gauge in ("dora_lead_time_seconds", "dora_change_failure_rate", "dora_time_to_restore_seconds",
                  "dora_deployment_rework_rate", "dora_failed_deployment_recovery_time_seconds"):
        assert samples.get(gauge, []) == [], (gauge, samples.get(gauge))
    assert value(samples, "dora_deployment_frequency_per_day", service="all") == 0
    # billing's incident is still open, so billing is still active; the others are gone (bounded set)
    assert {lbl["service"] for lbl, _ in samples["dora_deployment_frequency_per_day"]} == {"all", "billing"}


def test_the_background_refresher_fills_the_gauges_without_a_scrape_computing_them(app, ops_engine):
    load(ops_engine, history(), now=NOW)
    assert value(scrape(app), "dora_deployment_frequency_per_day", service="all") is None  # not computed on scrape
    refresher = GaugeRefresher(app.rt, app.rt.telemetry, interval=0.05).start()
    try:
        want = build(ops_engine, end=NOW, days=30)["deployment_frequency"]["per_day"]
        samples = wait_for_sample(app, "dora_deployment_frequency_per_day", want, service="all")
        assert value(samples, "dora_deployment_frequency_per_day", service="all") == want
    finally:
        refresher.stop()
    assert not refresher._thread.is_alive()


def test_slack_api_calls_are_counted_by_method_and_outcome(app, fake_slack):
    api = dict(token=INGEST_TOKEN)
    # The alert channel needs a join first: chat.postMessage fails with not_in_channel, then works.
    fake_slack.not_in_channel.add("C0ALERTS")
    r = app.request("POST", "/api/v1/incidents", {"id": "pd-SL1", "service": "checkout", "started_at": "2026-11-25T11:00:00Z"}, **api)
    assert r.status == 201, r
    fake_slack.wait_calls("chat.postMessage", 1)
    calls = "dora_slack_api_calls_total"
    samples = wait_for_sample(app, calls, 1, method="chat.postMessage", outcome="ok")
    assert value(samples, calls, method="chat.postMessage", outcome="ok") == 1
    assert value(samples, calls, method="chat.postMessage", outcome="not_in_channel") == 1
    assert value(samples, calls, method="conversations.join", outcome="ok") == 1

    # The token is revoked: the next card post is counted as invalid_auth.
    fake_slack.token = "xoxb-rotated-elsewhere"
    r = app.request("POST", "/api/v1/incidents", {"id": "pd-SL2", "service": "search", "started_at": "2026-11-25T11:10:00Z"}, **api)
    assert r.status == 201, r
    samples = wait_for_sample(app, calls, 1, method="chat.postMessage", outcome="invalid_auth")
    assert value(samples, calls, method="chat.postMessage", outcome="invalid_auth") == 1
    assert value(samples, calls, method="chat.postMessage", outcome="ok") == 1
    outcomes = {(lbl["method"], lbl["outcome"]) for lbl, _ in samples[calls]}
    assert outcomes == {("chat.postMessage", "ok"), ("chat.postMessage", "not_in_channel"),
                        ("conversations.join", "ok"), ("chat.postMessage", "invalid_auth")}


def test_outbox_depth_and_age_gauges_reflect_pending_messages(app, ops_engine):
    app.worker.stop()  # the messages below must wait
    refresher = GaugeRefresher(app.rt, app.rt.telemetry)
    refresher.refresh()
    samples = scrape(app)
    assert value(samples, "dora_outbox_depth") == 0
    assert value(samples, "dora_outbox_oldest_age_seconds") == 0
    ids = []
    with session_scope(ops_engine) as session:
        for i, minutes in enumerate((10, 5, 1)):
            message = outbox.enqueue(session, kind="digest.post", key=f"ops:{i}",
                                     payload={"subscription": i, "period": "2026-11-23", "channel": "C1"},
                                     now=NOW - timedelta(minutes=minutes))
            ids.append(message.id)
    refresher.refresh()
    samples = scrape(app)
    assert value(samples, "dora_outbox_depth") == 3
    assert value(samples, "dora_outbox_oldest_age_seconds") == 600
    outbox.mark_sent(ops_engine, ids[0], now=NOW)
    outbox.mark_failed(ops_engine, ids[1], now=NOW, error="ratelimited", retry_after=30)  # still waiting
    refresher.refresh()
    samples = scrape(app)
    assert value(samples, "dora_outbox_depth") == 2
    assert value(samples, "dora_outbox_oldest_age_seconds") == 300


def test_junk_service_names_cannot_make_the_gauges_unbounded(app, ops_engine):
    """Anyone with an ingest token can create services: the gauges cover the most active ones in
    the window (at most MAX_GAUGE_SERVICES), services idle for 30 days export nothing."""
    from bot.telemetry import MAX_GAUGE_SERVICES

    load(ops_engine, history(), now=NOW)
    junk = MAX_GAUGE_SERVICES + 30
    old = [{"type": "deploy", "id": f"old-{i}", "service": f"old-junk-{i}", "deployed_at": (NOW - timedelta(days=60)).isoformat()}
           for i in range(40)]
    load(ops_engine, old, now=NOW)
    for i in range(junk):  # one deploy each, over the API as a script would post them
        r = app.request("POST", "/api/v1/deploys", {"id": f"junk-{i}", "service": f"junk-{i:04d}", "deployed_at": "2026-11-25T11:00:00Z"},
                        token=INGEST_TOKEN)
        assert r.status == 201, r
    GaugeRefresher(app.rt, app.rt.telemetry).refresh()
    reply = app.get("/metrics")
    samples = scrape(app)
    labels = {lbl["service"] for lbl, _ in samples["dora_deployment_frequency_per_day"]}
    assert len(labels) == MAX_GAUGE_SERVICES + 1, len(labels)
    assert {"all", "checkout", "search"} <= labels, "the most active services keep their gauges"
    assert not any(label.startswith("old-junk") for label in labels), "idle for 30 days: no series"
    # "all" still counts every deploy in the window, junk included
    assert value(samples, "dora_deployment_frequency_per_day", service="all") == pytest.approx(
        build(ops_engine, end=NOW, days=30, service=None, production_environments=PRODUCTION)["deployment_frequency"]["per_day"]
    )
    assert len(reply.body) < 64_000, len(reply.body)
