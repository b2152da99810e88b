"""Migration 0014: SQLite keeps instants as integer microseconds since the Unix epoch.

A store written before it (naive UTC text) is rewritten in place: every instant reads back the
same to the microsecond, the numbers do not change, and range queries over the indexes still
find the same rows. The downgrade writes the text form back. PostgreSQL is left as it is.
"""

from __future__ import annotations

from datetime import UTC, datetime

from alembic import command
from sqlalchemy import text
from sqlmodel import select

from bot.store.db import _alembic_config, session_scope, upgrade
from bot.store.models import Deploy, Incident
from tests.dbutil import load, metrics

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
LINES = [
    {"type": "deploy", "id": "d1", "service": "checkout", "deployed_at": "2026-11-20T10:00:00.123456Z",
     "commits": [{"sha": "abc1234", "committed_at": "2026-11-20T08:00:00Z"}, {"sha": "def5678"}]},
    {"type": "deploy", "id": "d2", "service": "checkout", "deployed_at": "2026-11-22T10:00:00Z"},
    {"type": "deploy", "id": "d3", "service": "search", "deployed_at": "2026-11-24T23:59:59.999999Z",
     "commits": [{"sha": "0a0b0c0", "committed_at": "2026-11-01T00:00:00.000001Z"}]},
    {"type": "incident", "id": "i1", "service": "checkout", "started_at": "2026-11-21T10:00:00Z",
     "mitigated_at": "2026-11-21T10:30:00.5Z", "resolved_at": "2026-11-21T11:00:00Z", "caused_by": "d1"},
    {"type": "incident", "id": "i2", "service": "search", "started_at": "2026-11-24T08:00:00Z"},
]
D1 = datetime(2026, 11, 20, 10, 0, 0, 123456, tzinfo=UTC)
D3 = datetime(2026, 11, 24, 23, 59, 59, 999999, tzinfo=UTC)


def _raw(engine, sql: str) -> list[tuple]:
    with engine.connect() as c:
        return [tuple(r) for r in c.execute(text(sql))]


def _instants(engine) -> list:
    with session_scope(engine, write=False) as session:
        deploys = [(d.id, d.deployed_at, d.created_at) for d in session.exec(select(Deploy).order_by(Deploy.id))]
        incidents = [(i.id, i.started_at, i.mitigated_at, i.resolved_at, i.recovered_at)
                     for i in session.exec(select(Incident).order_by(Incident.id))]
    return deploys + incidents


def test_instants_survive_the_rewrite_both_ways(engine):
    assert load(engine, LINES, now=NOW).committed
    before, instants = metrics(engine, end=NOW, days=30), _instants(engine)
    assert instants[0][1] == D1 and instants[2][1] == D3
    sqlite = engine.dialect.name == "sqlite"
    if sqlite:
        micros = int(D1.replace(microsecond=0).timestamp()) * 1_000_000 + 123456
        assert _raw(engine, "SELECT typeof(deployed_at), deployed_at FROM deploy WHERE id = 1") == [("integer", micros)]

    command.downgrade(_alembic_config(engine), "0011")
    if sqlite:  # the text the store held before 0014, microseconds and NULLs kept
        assert _raw(engine, "SELECT deployed_at FROM deploy ORDER BY id") == [
            ("2026-11-20 10:00:00.123456",), ("2026-11-22 10:00:00.000000",), ("2026-11-24 23:59:59.999999",)]
        assert _raw(engine, "SELECT committed_at FROM deploy_commit ORDER BY sha") == [
            ("2026-11-01 00:00:00.000001",), ("2026-11-20 08:00:00.000000",), (None,)]
        assert _raw(engine, "SELECT mitigated_at, resolved_at FROM incident ORDER BY id") == [
            ("2026-11-21 10:30:00.500000", "2026-11-21 11:00:00.000000"), (None, None)]

    upgrade(engine, "head")
    if sqlite:
        kinds = _raw(engine, "SELECT DISTINCT typeof(deployed_at) || '/' || typeof(created_at) FROM deploy")
        assert kinds == [("integer/integer",)]
        texts = "SELECT count(*) FROM lead_sample WHERE typeof(deployed_at) = 'text' OR typeof(committed_at) = 'text'"
        assert _raw(engine, texts) == [(0,)]
    assert _instants(engine) == instants
    assert metrics(engine, end=NOW, days=30) == before
    with session_scope(engine, write=False) as session:  # a range scan: the bounds are exact to the microsecond
        inside = session.exec(select(Deploy.id).where(Deploy.deployed_at >= D1, Deploy.deployed_at <= D3).order_by(Deploy.id)).all()
        after = session.exec(select(Deploy.id).where(Deploy.deployed_at > D3)).all()
    assert list(inside) == [1, 2, 3] and list(after) == []
