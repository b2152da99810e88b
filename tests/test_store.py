"""The store: UTC columns, units of work, and the derived columns kept current by ``bot.store.derived``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import update
from sqlalchemy.exc import StatementError
from sqlmodel import select

from bot.store.db import make_engine, session_scope, upgrade
from bot.store.derived import (
    ensure_production_set,
    refresh_change_failure,
    stored_production_set,
)
from bot.store.models import Deploy, LeadSample, Service
from tests.conftest import NOW
from tests.dbutil import load, metrics, row_counts

H = timedelta(hours=1)


def iso(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_instants_are_stored_in_utc_and_read_back_aware(engine):
    berlin = datetime(2026, 11, 24, 10, 30, tzinfo=ZoneInfo("Europe/Berlin"))
    with session_scope(engine) as s:
        s.add(Service(name="checkout", created_at=berlin))
    with session_scope(engine, write=False) as s:
        stored = s.exec(select(Service)).one().created_at
    assert stored == datetime(2026, 11, 24, 9, 30, tzinfo=UTC) and stored.utcoffset() == timedelta(0)


def test_naive_instants_are_refused(engine):
    with pytest.raises(StatementError) as err, session_scope(engine) as s:
        s.add(Service(name="checkout", created_at=datetime(2026, 11, 24, 10, 30)))
    assert "naive" in str(err.value)
    assert row_counts(engine)["service"] == 0


def test_a_unit_of_work_is_rolled_back_on_error(engine):
    with pytest.raises(RuntimeError), session_scope(engine) as s:
        s.add(Service(name="checkout", created_at=NOW))
        s.flush()
        raise RuntimeError("boom")
    assert row_counts(engine)["service"] == 0


def test_an_in_memory_sqlite_database_keeps_its_data_across_sessions():
    engine = make_engine("sqlite://")
    upgrade(engine)
    with session_scope(engine) as s:
        s.add(Service(name="checkout", created_at=NOW))
    with session_scope(engine, write=False) as s:
        assert s.exec(select(Service.name)).all() == ["checkout"]
    engine.dispose()


def test_change_failure_flags_are_recomputed_from_the_facts(engine):
    records = [
        {"type": "deploy", "id": "d1", "service": "checkout", "deployed_at": iso(NOW - 3 * H)},
        {"type": "deploy", "id": "d2", "service": "checkout", "deployed_at": iso(NOW - 2 * H), "rollback_of": "d1"},
        {"type": "deploy", "id": "d3", "service": "checkout", "deployed_at": iso(NOW - 2 * H), "change_failure": True},
        {"type": "deploy", "id": "d4", "service": "checkout", "deployed_at": iso(NOW - H)},
        {"type": "incident", "id": "i1", "service": "checkout", "started_at": iso(NOW - H), "caused_by": "d4"},
    ]
    assert load(engine, records, now=NOW).committed

    def flags():
        with session_scope(engine, write=False) as s:
            return {d.external_id: d.change_failure for d in s.exec(select(Deploy)).all()}

    expected = {"d1": True, "d2": False, "d3": True, "d4": True}
    assert flags() == expected
    with session_scope(engine) as s:  # scramble the derived column, then recompute it
        conn = s.connection()
        conn.execute(update(Deploy.__table__).values(change_failure=Deploy.__table__.c.external_id == "d2"))
        ids = [row for row in conn.execute(select(Deploy.__table__.c.id)).scalars()]
        refresh_change_failure(conn, ids + [None])
    assert flags() == expected


def test_lead_samples_are_rebuilt_when_the_production_set_changes(engine):
    records = [
        {"type": "deploy", "id": "live1", "service": "checkout", "environment": "live",
         "deployed_at": iso(NOW - 2 * H), "commits": [{"sha": "aaaa01", "committed_at": iso(NOW - 5 * H)}]},
        {"type": "deploy", "id": "prod1", "service": "checkout", "environment": "production",
         "deployed_at": iso(NOW - 3 * H), "commits": [{"sha": "aaaa01", "committed_at": iso(NOW - 5 * H)},
                                                   {"sha": "aaaa02", "committed_at": iso(NOW - 4 * H)}]},
    ]
    assert load(engine, records, now=NOW, production_environments=("production", "prod")).committed
    with engine.begin() as conn:
        assert ensure_production_set(conn, ["production", "prod"]) is True  # first time: recorded
        assert stored_production_set(conn) == ["prod", "production"]
        assert ensure_production_set(conn, ["prod", "production"]) is False  # same set, any order
    lt = metrics(engine, end=NOW, days=1)["lead_time"]
    assert lt["samples"] == 2 and lt["median_seconds"] == 1.5 * 3600  # 2h and 1h at prod1

    with engine.begin() as conn:
        assert ensure_production_set(conn, ["live"]) is True
    lt = metrics(engine, end=NOW, days=1, production_environments=("live",))["lead_time"]
    assert lt["samples"] == 1 and lt["median_seconds"] == 3 * 3600  # aaaa01 first went live at live1
    with session_scope(engine, write=False) as s:
        assert [x.sha for x in s.exec(select(LeadSample)).all()] == ["aaaa01"]
