"""Migration 0012 generalises the GitHub-only push table: a store with pushes and waiting commits
keeps them (now ``source = 'github'``), GitLab pushes go to the same tables, and a downgrade gives
the old table back with its rows."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from alembic import command
from sqlalchemy import inspect, text

from bot.store.db import _alembic_config, make_engine, upgrade


def _ts(engine, value: str):
    return value if engine.dialect.name == "sqlite" else datetime.fromisoformat(value).replace(tzinfo=UTC)


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_pushes_and_pending_commits_survive_the_rename_both_ways(backend, make_database):
    engine = make_engine(make_database(backend))
    t = lambda v: _ts(engine, v)  # noqa: E731
    try:
        upgrade(engine, "0009")
        with engine.begin() as c:
            c.execute(text("INSERT INTO service (id, name, key, created_at) VALUES (1, 'shop', 'shop', :t)"),
                      {"t": t("2026-11-01 00:00:00")})
            c.execute(text("INSERT INTO github_push (service_id, after_sha, pushed_at) VALUES (1, 'aaaa', :t)"),
                      {"t": t("2026-11-20 10:00:00")})
            c.execute(text("INSERT INTO pending_commit (service_id, push_id, sha, committed_at, pushed_at)"
                           " VALUES (1, 1, 'aaaa', :t, :t)"), {"t": t("2026-11-20 09:00:00")})
        upgrade(engine, "head")
        tables = set(inspect(engine).get_table_names())
        assert "commit_push" in tables and "github_push" not in tables and "deploy_freeze" in tables
        with engine.begin() as c:
            assert c.execute(text("SELECT id, after_sha, source FROM commit_push")).all() == [(1, "aaaa", "github")]
            # a new push gets the next id, and a pending commit can point at it
            c.execute(text("INSERT INTO commit_push (service_id, after_sha, pushed_at, source) VALUES (1, 'bbbb', :t, 'gitlab')"),
                      {"t": t("2026-11-21 10:00:00")})
            new_id = c.execute(text("SELECT id FROM commit_push WHERE after_sha = 'bbbb'")).scalar_one()
            assert new_id == 2
            c.execute(text("INSERT INTO pending_commit (service_id, push_id, sha, pushed_at) VALUES (1, :p, 'bbbb', :t)"),
                      {"p": new_id, "t": t("2026-11-21 10:00:00")})
            fks = inspect(c).get_foreign_keys("pending_commit")
            assert {fk["referred_table"] for fk in fks} >= {"commit_push"}
        command.downgrade(_alembic_config(engine), "0009")
        with engine.connect() as c:
            assert c.execute(text("SELECT id, after_sha FROM github_push ORDER BY id")).all() == [(1, "aaaa"), (2, "bbbb")]
            assert c.execute(text("SELECT count(*) FROM pending_commit")).scalar_one() == 2
        upgrade(engine, "head")
        with engine.connect() as c:
            assert c.execute(text("SELECT id, source FROM commit_push ORDER BY id")).all() == [(1, "github"), (2, "github")]
    finally:
        engine.dispose()
