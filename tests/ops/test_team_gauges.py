"""The key gauges carry the ``team`` of each service (empty for none and for ``service="all"``);
a service that moves to another team moves its series."""

from __future__ import annotations

from datetime import timedelta

from bot.services import teams
from bot.store.db import session_scope
from bot.telemetry import GaugeRefresher
from tests.conftest import NOW
from tests.dbutil import load
from tests.ops import test_metrics
from tests.ops.test_metrics import scrape

app = test_metrics.app  # the served app fixture


def _deploys():
    return [
        {"type": "deploy", "id": f"{svc}-{i}", "service": svc, "deployed_at": (NOW - timedelta(days=i + 1)).isoformat()}
        for svc in ("checkout", "billing", "search") for i in range(3)
    ]


def _series(samples, name: str) -> dict[str, str]:
    return {labels["service"]: labels["team"] for labels, _ in samples[name]}


def test_gauges_have_a_team_label_that_follows_the_service(app, ops_engine):
    assert load(ops_engine, _deploys(), now=NOW).committed
    with session_scope(ops_engine) as session:
        teams.set_team(session, team="payments", services=["checkout", "billing"], now=NOW)
    refresher = GaugeRefresher(app.rt, app.rt.telemetry)
    refresher.refresh()
    series = _series(scrape(app), "dora_deployment_frequency_per_day")
    assert series == {"all": "", "checkout": "payments", "billing": "payments", "search": ""}

    with session_scope(ops_engine) as session:
        teams.set_team(session, team="Core", services=["billing"], now=NOW)
    refresher.refresh()
    samples = scrape(app)
    assert _series(samples, "dora_deployment_frequency_per_day")["billing"] == "Core"
    billing = [labels for labels, _ in samples["dora_deployment_frequency_per_day"] if labels["service"] == "billing"]
    assert billing == [{"service": "billing", "team": "Core"}], "the old team's series is gone"
