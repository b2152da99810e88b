"""Migration 0009 (the DORA 2024 model) is additive: a store written before it keeps its meaning.

A history stored at revision 0005 — a resolved incident, an open one, a deploy rolled back — is
upgraded to head on SQLite and PostgreSQL: resolved incidents recover at their resolution, nothing
is cancelled or mitigated, rollbacks are rework and nothing else is, and the numbers are the same
as they were; then downgraded and upgraded again.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import text

from bot.store.db import make_engine, upgrade
from tests.dbutil import metrics

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def _ts(engine, value: str):
    """A literal instant as that database stores it (SQLite text, PostgreSQL timestamptz)."""
    return value if engine.dialect.name == "sqlite" else datetime.fromisoformat(value).replace(tzinfo=UTC)


def _seed_at_0005(engine) -> None:
    t = lambda v: _ts(engine, v)  # noqa: E731
    with engine.begin() as c:
        c.execute(text("INSERT INTO service (id, name, created_at) VALUES (1, 'checkout', :t)"), {"t": t("2026-11-01 00:00:00.000000")})
        for i, at, rollback in ((1, "2026-11-20 10:00:00.000000", None), (2, "2026-11-21 10:00:00.000000", 1),
                                (3, "2026-11-22 10:00:00.000000", None)):
            c.execute(text(
                "INSERT INTO deploy (id, service_id, environment, version, deployed_at, status, rollback_of_id, marked_failed,"
                " change_failure, source, created_at) VALUES (:i, 1, 'production', :v, :at, 'success', :rb, false, :cf, 'api', :at)"
            ), {"i": i, "v": f"v{i}", "at": t(at), "rb": rollback, "cf": i == 1})
        for i, started, resolved in ((1, "2026-11-20 10:30:00.000000", "2026-11-20 11:30:00.000000"),
                                     (2, "2026-11-24 09:00:00.000000", None)):
            c.execute(text(
                "INSERT INTO incident (id, service_id, environment, severity, title, started_at, declared_at, resolved_at,"
                " caused_by_id, source, restore_seconds, recovery_seconds, created_at)"
                " VALUES (:i, 1, 'production', 'sev2', 't', :s, :s, :r, :cause, 'api', :rs, :rec, :s)"
            ), {"i": i, "s": t(started), "r": t(resolved) if resolved else None, "cause": 1 if i == 1 else None,
                "rs": 3600.0 if resolved else None, "rec": 5400.0 if resolved else None})


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_upgrading_a_0005_store_keeps_every_number_and_marks_rollbacks_as_rework(backend, make_database):
    engine = make_engine(make_database(backend))
    try:
        upgrade(engine, "0005")
        _seed_at_0005(engine)
        upgrade(engine, "head")
        with engine.connect() as c:
            incidents = c.execute(text(
                "SELECT id, recovered_at IS NOT NULL AND recovered_at = resolved_at, mitigated_at, status, not_caused_by_change"
                " FROM incident ORDER BY id")).all()
            deploys = c.execute(text("SELECT id, rework, fixes_id FROM deploy ORDER BY id")).all()
        assert [(i, bool(same), m, s, bool(n)) for i, same, m, s, n in incidents] == [
            (1, True, None, None, False), (2, False, None, None, False)]
        assert [(i, bool(r), f) for i, r, f in deploys] == [(1, False, None), (2, True, None), (3, False, None)]
        m = metrics(engine, end=NOW, days=30)
        assert m["time_to_restore"]["incidents"] == 1 and m["time_to_restore"]["median_seconds"] == 3600
        assert m["failed_deployment_recovery_time"]["median_seconds"] == 5400
        assert m["time_to_restore"]["open_incidents"] == 1
        assert m["change_failure_rate"]["failed"] == 1
        assert m["deployment_rework_rate"] == {"rework": 1, "deploys": 3, "rate": 0.3333, "tier": None, "reason": None}
        upgrade_down_and_up(engine)
        assert metrics(engine, end=NOW, days=30)["deployment_rework_rate"]["rework"] == 1
    finally:
        engine.dispose()


def upgrade_down_and_up(engine) -> None:
    from alembic import command

    from bot.store.db import _alembic_config

    command.downgrade(_alembic_config(engine), "0006")  # to the revision before 0009
    with engine.connect() as c:
        assert c.execute(text("SELECT count(*) FROM deploy")).scalar() == 3
    upgrade(engine, "head")
