"""Migration 0013 (watches and nudges) is additive: a store written before it keeps every number,
starts with no watch and no nudge, and takes new watches; a downgrade drops only its two tables."""

from __future__ import annotations

from datetime import UTC, datetime

from alembic import command
from sqlalchemy import inspect, text

from bot.services.watches import add_watch, list_watches
from bot.store.db import _alembic_config, session_scope, upgrade
from tests.dbutil import load, metrics

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
LINES = [
    {"type": "deploy", "id": "d1", "service": "checkout", "deployed_at": "2026-11-20T10:00:00Z",
     "commits": [{"sha": "abc1234", "committed_at": "2026-11-20T08:00:00Z"}]},
    {"type": "deploy", "id": "d2", "service": "checkout", "deployed_at": "2026-11-22T10:00:00Z"},
    {"type": "incident", "id": "i1", "service": "checkout", "started_at": "2026-11-21T10:00:00Z",
     "resolved_at": "2026-11-21T11:00:00Z", "caused_by": "d1"},
]


def test_watches_migration_is_additive_and_reversible(engine):
    assert load(engine, LINES, now=NOW).committed
    before = metrics(engine, end=NOW, days=30)
    with session_scope(engine) as session:
        add_watch(session, condition="cfr>15%", channel="C0ENG", service="checkout", now=NOW)

    command.downgrade(_alembic_config(engine), "0012")  # the revision before 0013 (0011 comes after it)
    tables = set(inspect(engine).get_table_names())
    assert "watch" not in tables and "nudge" not in tables
    with engine.connect() as c:
        assert c.execute(text("SELECT count(*) FROM deploy")).scalar() == 2
        assert c.execute(text("SELECT count(*) FROM incident")).scalar() == 1

    upgrade(engine, "head")
    assert {"watch", "nudge"} <= set(inspect(engine).get_table_names())
    assert metrics(engine, end=NOW, days=30) == before
    with session_scope(engine) as session:
        assert list_watches(session) == []  # the downgrade dropped the watch with its table
        watch = add_watch(session, condition="lt>2d", channel="C0ENG", service="checkout", days=7, now=NOW)
        assert (watch.id, watch.state, watch.days) == (1, "ok", 7)
    with engine.connect() as c:
        assert c.execute(text("SELECT count(*) FROM nudge")).scalar() == 0
