"""A team's numbers are the reference's numbers over the pooled events of its services.

Random histories (the generator of ``tests/test_metrics_reference.py``: several services,
rollbacks, fixes, commits shared between deploys, incidents in every state) are imported; a
random subset of the services is made team ``payments`` (the rest team ``search``), and
``build_metrics(team=...)`` is compared with ``tests.reference.metrics(services=...)`` for every
query window, on SQLite and PostgreSQL. A second run makes SQLite take its walking paths for
lead time (tiny pivot thresholds), which a team of several services reads differently.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from bot.services import teams
from bot.services.metrics import build_metrics
from bot.store import metrics_sql
from bot.store.db import session_scope
from tests import reference
from tests.conftest import NOW, PRODUCTION
from tests.dbutil import load, wipe
from tests.test_metrics_reference import EXAMPLES, History, histories


def _services(history: History) -> list[str]:
    """The distinct services of the history, by key, as first spelled."""
    seen: dict[str, str] = {}
    for record in history.deploys + history.incidents:
        seen.setdefault(reference._key(record["service"]), record["service"])
    return sorted(seen.values(), key=reference._key)


def _check(engine, history: History, members: list[str]) -> None:
    for q in history.queries:
        with session_scope(engine, write=False) as session:
            got = build_metrics(
                session, team="Payments", days=q.days, end=q.end, timezone_name=q.timezone_name,
                production_environments=PRODUCTION,
            )
        want = reference.metrics(
            history.deploys, history.incidents, service=None, services=members, days=q.days, end=q.end,
            timezone_name=q.timezone_name, production_environments=PRODUCTION,
        )
        assert got["scope"]["team"] == "payments" and got["scope"]["service"] is None
        problems = reference.differences(got, want)
        assert not problems, f"team of {members}, {q}:\n  " + "\n  ".join(problems)


def _load_with_teams(engine, history: History, pick: list[bool]) -> list[str]:
    wipe(engine)
    lines = history.deploys + history.incidents
    report = load(engine, [lines[i] for i in history.line_order], now=NOW, batch_size=history.batch_size)
    assert report.errors == [] and report.committed
    services = _services(history)
    members = [s for s, p in zip(services, pick, strict=False) if p]
    others = [s for s in services if s not in members]
    with session_scope(engine) as session:
        teams.get_or_create_team(session, "payments", now=NOW)  # a team with no service has no numbers
        if members:
            teams.set_team(session, team="payments", services=members, now=NOW)
        if others:
            teams.set_team(session, team="search", services=others, now=NOW)
    return members


@EXAMPLES
@given(history=histories(), pick=st.lists(st.booleans(), min_size=3, max_size=3))
def test_team_metrics_equal_the_reference_over_its_pooled_services(engine, history, pick):
    members = _load_with_teams(engine, history, pick)
    _check(engine, history, members)


@EXAMPLES
@given(history=histories(), pick=st.lists(st.booleans(), min_size=3, max_size=3))
def test_team_lead_time_through_the_sqlite_walks_equals_the_reference(sqlite_engine, history, pick, monkeypatch):
    # Walk the lead-time index from pivots (a team of several services walks the org's index,
    # counting only its services) even for the few samples a generated history has.
    monkeypatch.setattr(metrics_sql, "PIVOT_MIN", 2)
    monkeypatch.setattr(metrics_sql, "PIVOT_SAMPLE", 2)
    monkeypatch.setattr(metrics_sql, "SORT_MAX", 0)
    members = _load_with_teams(sqlite_engine, history, pick)
    _check(sqlite_engine, history, members)


@EXAMPLES
@given(history=histories(), pick=st.lists(st.booleans(), min_size=3, max_size=3))
def test_team_lead_time_from_sqlite_brackets_equals_the_reference(sqlite_engine, history, pick, monkeypatch):
    # Every window counts as short against the history (WALK_SHARE 0): a team of several services
    # ranks only the window's samples between two pivots, read by date, never the shared index.
    monkeypatch.setattr(metrics_sql, "PIVOT_MIN", 2)
    monkeypatch.setattr(metrics_sql, "PIVOT_SAMPLE", 2)
    monkeypatch.setattr(metrics_sql, "WALK_SHARE", 0)
    monkeypatch.setattr(metrics_sql, "SORT_MAX", 0)
    members = _load_with_teams(sqlite_engine, history, pick)
    _check(sqlite_engine, history, members)


@EXAMPLES
@given(history=histories(), pick=st.lists(st.booleans(), min_size=3, max_size=3))
def test_team_lead_time_ranked_by_sqlite_equals_the_reference(sqlite_engine, history, pick, monkeypatch):
    # Windows too big to sort in Python (SORT_MAX 0) are ranked by SQLite itself.
    monkeypatch.setattr(metrics_sql, "SORT_MAX", 0)
    members = _load_with_teams(sqlite_engine, history, pick)
    _check(sqlite_engine, history, members)
