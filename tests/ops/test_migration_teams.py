"""Migration 0011 (teams) is additive: a store written before it keeps every number; no service
has a team; a downgrade and an upgrade again keep the data."""

from __future__ import annotations

from datetime import UTC, datetime

from alembic import command
from sqlalchemy import text

from bot.store.db import _alembic_config, upgrade
from tests.dbutil import load, metrics

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
LINES = [
    {"type": "deploy", "id": "d1", "service": "checkout", "deployed_at": "2026-11-20T10:00:00Z",
     "commits": [{"sha": "abc1234", "committed_at": "2026-11-20T08:00:00Z"}]},
    {"type": "incident", "id": "i1", "service": "checkout", "started_at": "2026-11-21T10:00:00Z", "resolved_at": "2026-11-21T11:00:00Z"},
]


def test_teams_migration_down_and_up_keeps_the_history(engine):
    assert load(engine, LINES, now=NOW).committed
    before = metrics(engine, end=NOW, days=30)
    command.downgrade(_alembic_config(engine), "0013")
    with engine.connect() as c:
        assert c.execute(text("SELECT count(*) FROM deploy")).scalar() == 1
    upgrade(engine, "head")
    with engine.connect() as c:
        assert c.execute(text("SELECT count(*) FROM team")).scalar() == 0
        assert c.execute(text("SELECT team_id FROM service")).all() == [(None,)]
        assert c.execute(text("SELECT team FROM digest_subscription")).all() == []
    assert metrics(engine, end=NOW, days=30) == before
