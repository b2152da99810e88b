"""The Grafana dashboard and its Prometheus/compose provisioning match what the server exports.

Every PromQL expression of ``deploy/grafana/dora-bot.json`` must name only metrics a real
``/metrics`` scrape of the server lists; its tier bands must be the tier thresholds the metrics
engine uses; and ``docker-compose.yml`` must provision Prometheus (scraping the bot) and Grafana
(with this dashboard) behind the ``monitoring`` profile, with every mounted file present.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

import pytest
import yaml

from bot.config import Settings
from bot.core.metrics import CHANGE_FAILURE_PERCENT_LIMITS, LEAD_TIME_LIMITS, RESTORE_LIMITS
from bot.runtime import Runtime
from bot.telemetry import GaugeRefresher, Telemetry
from tests.dbutil import load
from tests.ops.conftest import INGEST_TOKEN
from tests.slack.harness import Clock

REPO = __import__("pathlib").Path(__file__).resolve().parents[2]
DASHBOARD = REPO / "deploy" / "grafana" / "dora-bot.json"
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
PROMQL_WORDS = {"sum", "by", "rate", "without", "avg", "max", "min", "count", "increase", "le", "irate", "histogram_quantile"}


def dashboard() -> dict:
    return json.loads(DASHBOARD.read_text())


def panels() -> list[dict]:
    return [p for p in dashboard()["panels"] if p["type"] != "row"]


def expressions() -> list[str]:
    return [t["expr"] for p in panels() for t in p["targets"]]


def metric_names(expr: str) -> set[str]:
    """The metric names an expression reads: identifiers outside label matchers and ranges."""
    bare = re.sub(r"\{[^}]*\}|\[[^\]]*\]|\"[^\"]*\"", " ", expr)
    bare = re.sub(r"\bby\s*\([^)]*\)", " ", bare)
    return {w for w in re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", bare) if w not in PROMQL_WORDS}


@pytest.fixture
def served(ops_engine, live_app):
    """dora-bot's HTTP app with telemetry over a real socket, gauges computed from a history."""
    settings = Settings(
        database_url=ops_engine.url.render_as_string(hide_password=False), slack_bot_token="xoxb-grafana-test",
        slack_signing_secret="grafana-signing-secret-0123456789", ingest_tokens=(INGEST_TOKEN,),
        production_environments=("production", "prod"), run_scheduler=False,
    )
    rt = Runtime(settings=settings, engine=ops_engine, clock=Clock(NOW))
    rt.telemetry = Telemetry()
    load(ops_engine, [
        {"type": "deploy", "id": "d1", "service": "checkout", "deployed_at": "2026-11-20T10:00:00Z",
         "commits": [{"sha": "abcd123", "committed_at": "2026-11-20T08:00:00Z"}]},
        {"type": "deploy", "id": "d2", "service": "checkout", "deployed_at": "2026-11-21T10:00:00Z", "rollback_of": "d1"},
        {"type": "incident", "id": "i1", "service": "checkout", "started_at": "2026-11-20T10:30:00Z",
         "mitigated_at": "2026-11-20T11:00:00Z", "resolved_at": "2026-11-20T12:00:00Z", "caused_by": "d1"},
    ], now=NOW)
    GaugeRefresher(rt, rt.telemetry).refresh()
    return live_app(rt)


def exported_names(server) -> set[str]:
    """Every sample name the server's /metrics can carry, from its # TYPE lines."""
    reply = server.get("/metrics")
    assert reply.status == 200, reply
    names = set()
    for line in reply.body.decode().splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            names.add(name)
            if kind == "counter":
                names.add(name if name.endswith("_total") else name + "_total")
            if kind == "histogram":
                names.update(f"{name}_{s}" for s in ("bucket", "sum", "count"))
    return names


def test_every_dashboard_expression_names_a_metric_the_server_exports(served):
    exported = exported_names(served)
    read = set().union(*(metric_names(e) for e in expressions()))
    assert read, "the dashboard reads some metrics"
    assert read <= exported, f"not exported: {sorted(read - exported)}"
    # the five keys, time to restore, the outbox and Slack are all on it
    for name in ("dora_lead_time_seconds", "dora_deploy_days_per_week", "dora_failed_deployment_recovery_time_seconds",
                 "dora_change_failure_rate", "dora_deployment_rework_rate", "dora_time_to_restore_seconds",
                 "dora_outbox_depth", "dora_outbox_oldest_age_seconds", "dora_slack_api_calls_total"):
        assert name in read, name


def test_the_name_check_itself_catches_an_unknown_metric():
    assert metric_names('sum by (outcome) (rate(dora_slack_api_calls_total{service=~"$service"}[5m]))') == {"dora_slack_api_calls_total"}
    assert "dora_no_such_metric" in metric_names("dora_no_such_metric{service=~\"$service\"}")


def test_tier_bands_are_the_engines_thresholds():
    by_title = {p["title"]: p for p in panels()}

    def band_values(title: str) -> list[float]:
        steps = by_title[title]["fieldConfig"]["defaults"]["thresholds"]["steps"]
        return [s["value"] for s in steps[1:]]

    assert band_values("Change lead time (median)") == [limit for limit, _ in LEAD_TIME_LIMITS]
    assert band_values("Failed deployment recovery time (median)") == [limit for limit, _ in RESTORE_LIMITS]
    assert band_values("Time to restore, all incidents (median)") == [limit for limit, _ in RESTORE_LIMITS]
    assert [round(v, 4) for v in band_values("Change fail rate")] == [p / 100 for p, _ in CHANGE_FAILURE_PERCENT_LIMITS]
    rework = by_title["Deployment rework rate"]["fieldConfig"]["defaults"]
    assert rework["custom"]["thresholdsStyle"]["mode"] == "off", "DORA publishes no tiers for rework"


def test_compose_provisions_prometheus_and_grafana_behind_the_monitoring_profile():
    services = yaml.safe_load((REPO / "docker-compose.yml").read_text())["services"]
    for name in ("prometheus", "grafana"):
        assert services[name]["profiles"] == ["monitoring"], name
        for volume in services[name]["volumes"]:
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (REPO / source).exists(), volume
    for name in ("db", "migrate", "bot"):
        assert "profiles" not in services[name], "the bot itself runs without the profile"
    prometheus = yaml.safe_load((REPO / "deploy" / "prometheus" / "prometheus.yml").read_text())
    (job,) = prometheus["scrape_configs"]
    assert job["metrics_path"] == "/metrics" and job["static_configs"][0]["targets"] == ["bot:3000"]
    datasource = yaml.safe_load((REPO / "deploy" / "grafana" / "provisioning" / "datasources" / "prometheus.yml").read_text())
    (ds,) = datasource["datasources"]
    assert ds["url"] == "http://prometheus:9090" and ds["uid"] == "dora-prometheus"
    uids = {t["datasource"]["uid"] for p in panels() for t in p["targets"]}
    assert uids == {ds["uid"]}, "every panel reads the provisioned datasource"
    provider = yaml.safe_load((REPO / "deploy" / "grafana" / "provisioning" / "dashboards" / "dora-bot.yml").read_text())
    path = provider["providers"][0]["options"]["path"]
    assert any(v.endswith(f"{path}/dora-bot.json:ro") for v in services["grafana"]["volumes"])
