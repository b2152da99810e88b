"""A team's lead time over a short window, on SQLite, from the window's samples between pivots.

Thousands of samples over a year in three services (two of them the team), lead times skewed
and full of ties (whole hours, a few very long): the team's 30-day median and p90 must equal
the reference's. Small pivot thresholds make the store take the bracketed path with a sample of
a few dozen rows, where a misplaced pivot or an off-by-one rank would show.
"""

from __future__ import annotations

import random
from datetime import timedelta

import pytest

from bot.services import teams
from bot.services.metrics import build_metrics
from bot.store import metrics_sql
from bot.store.db import session_scope
from tests import reference
from tests.conftest import NOW, PRODUCTION
from tests.dbutil import load


def _iso(t) -> str:
    return t.isoformat().replace("+00:00", "Z")


def _history(seed: int) -> list[dict]:
    rnd = random.Random(seed)
    deploys = []
    for i in range(900):
        service = rnd.choice(["checkout", "payments", "search"])
        at = NOW - timedelta(days=rnd.uniform(0, 365))
        commits = []
        for c in range(rnd.randint(1, 6)):
            lead = rnd.choice([3600, 7200, 86400]) if rnd.random() < 0.4 else rnd.expovariate(1 / 20000)
            if rnd.random() < 0.03:
                lead *= 50  # the long tail
            commits.append({"sha": f"{i:05d}{c}", "committed_at": _iso(at - timedelta(seconds=lead))})
        deploys.append({
            "type": "deploy", "id": f"d{i}", "service": service, "environment": "production",
            "version": f"v{i}", "deployed_at": _iso(at), "status": "success", "commits": commits,
        })
    return deploys


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("days", [30, 45])
def test_a_short_window_of_a_team_is_bracketed_and_equals_the_reference(sqlite_engine, monkeypatch, seed, days):
    deploys = _history(seed)
    assert load(sqlite_engine, deploys, now=NOW).errors == []
    with session_scope(sqlite_engine) as session:
        teams.set_team(session, team="payments", services=["checkout", "payments"], now=NOW)
    monkeypatch.setattr(metrics_sql, "PIVOT_MIN", 50)
    monkeypatch.setattr(metrics_sql, "PIVOT_SAMPLE", 40)
    monkeypatch.setattr(metrics_sql, "SORT_MAX", 100)  # larger windows than this take the brackets
    taken = []
    bracketed = metrics_sql._SqliteLead._bracketed
    monkeypatch.setattr(metrics_sql._SqliteLead, "_bracketed", lambda self, n, ps: taken.append(n) or bracketed(self, n, ps))
    with session_scope(sqlite_engine, write=False) as session:
        got = build_metrics(session, team="payments", days=days, end=NOW, timezone_name="UTC",
                            production_environments=PRODUCTION)
    want = reference.metrics(deploys, [], service=None, services=["checkout", "payments"], days=days, end=NOW,
                             timezone_name="UTC", production_environments=PRODUCTION)
    assert taken and taken[0] > 100  # the path under test, with a window of a couple of hundred samples
    assert got["lead_time"]["samples"] == want["lead_time"]["samples"]
    assert got["lead_time"]["median_seconds"] == pytest.approx(want["lead_time"]["median_seconds"])
    assert got["lead_time"]["p90_seconds"] == pytest.approx(want["lead_time"]["p90_seconds"])


def test_pivots_on_the_wrong_side_of_the_rank_fall_back_to_ranking_the_window(sqlite_engine, monkeypatch):
    # A sample that lies (every pivot far above the median) must not move the answer: the count of
    # samples below the lower pivot shows it passed the rank, and the window is ranked instead.
    deploys = _history(4)
    assert load(sqlite_engine, deploys, now=NOW).errors == []
    with session_scope(sqlite_engine) as session:
        teams.set_team(session, team="payments", services=["checkout", "payments"], now=NOW)
    monkeypatch.setattr(metrics_sql, "PIVOT_MIN", 50)
    monkeypatch.setattr(metrics_sql, "PIVOT_SAMPLE", 40)
    monkeypatch.setattr(metrics_sql, "SORT_MAX", 100)
    monkeypatch.setattr(metrics_sql._SqliteLead, "_sample", lambda self, m, ranks: {r: 10.0**9 for r in ranks})
    ranked = []
    original = metrics_sql._SqliteLead._ranked
    monkeypatch.setattr(metrics_sql._SqliteLead, "_ranked", lambda self, n, ps: ranked.append(n) or original(self, n, ps))
    with session_scope(sqlite_engine, write=False) as session:
        got = build_metrics(session, team="payments", days=30, end=NOW, timezone_name="UTC",
                            production_environments=PRODUCTION)
    want = reference.metrics(deploys, [], service=None, services=["checkout", "payments"], days=30, end=NOW,
                             timezone_name="UTC", production_environments=PRODUCTION)
    assert ranked, "the lying pivots were used"
    assert got["lead_time"]["median_seconds"] == pytest.approx(want["lead_time"]["median_seconds"])
    assert got["lead_time"]["p90_seconds"] == pytest.approx(want["lead_time"]["p90_seconds"])
