"""Shared fixtures: a migrated database per test, on SQLite always and PostgreSQL when asked.

Set ``TEST_DATABASE_URL`` (e.g. ``postgresql+psycopg://postgres@127.0.0.1:5432/test``) to run
every database test on PostgreSQL too. The tests work in a schema of their own there
(``dora_test_<pid>``), created at the start and dropped at the end; nothing else is touched.
"""

from __future__ import annotations

import os
import shutil
from datetime import datetime, timezone

import pytest
from sqlalchemy import text

from bot.store.db import make_engine, upgrade

# One schema per test process, so two runs against the same database never empty each other's tables.
PG_SCHEMA = f"dora_test_{os.getpid()}"
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=timezone.utc)
PRODUCTION = ("production", "prod")


def _pg_url() -> str | None:
    return os.environ.get("TEST_DATABASE_URL") or None


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory) -> str:
    """A migrated SQLite file, copied for each test (cheaper than migrating each time)."""
    path = tmp_path_factory.mktemp("template") / "template.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    engine.dispose()  # closing the last connection checkpoints the WAL into the file
    return str(path)


@pytest.fixture(scope="session")
def pg_engine():
    url = _pg_url()
    if url is None:
        pytest.skip("PostgreSQL tests need TEST_DATABASE_URL (e.g. postgresql+psycopg://postgres@127.0.0.1:5432/test)")
    engine = make_engine(url, connect_args={"options": f"-csearch_path={PG_SCHEMA}"})
    with engine.begin() as conn:
        conn.execute(text(f"DROP SCHEMA IF EXISTS {PG_SCHEMA} CASCADE"))
        conn.execute(text(f"CREATE SCHEMA {PG_SCHEMA}"))
    upgrade(engine)
    yield engine
    with engine.begin() as conn:
        conn.execute(text(f"DROP SCHEMA IF EXISTS {PG_SCHEMA} CASCADE"))
    engine.dispose()


def _truncate_all(engine) -> None:
    from sqlmodel import SQLModel

    import bot.store.models  # noqa: F401

    names = ", ".join(t.name for t in SQLModel.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request, tmp_path, sqlite_template):
    """A freshly migrated, empty database: SQLite, and PostgreSQL when TEST_DATABASE_URL is set."""
    if request.param == "sqlite":
        path = tmp_path / "dora.db"
        shutil.copy(sqlite_template, path)
        eng = make_engine(f"sqlite:///{path}")
        yield eng
        eng.dispose()
    else:
        eng = request.getfixturevalue("pg_engine")
        _truncate_all(eng)
        yield eng


@pytest.fixture
def sqlite_engine(tmp_path, sqlite_template):
    """SQLite only, for tests of SQLite-specific behaviour."""
    path = tmp_path / "dora.db"
    shutil.copy(sqlite_template, path)
    eng = make_engine(f"sqlite:///{path}")
    yield eng
    eng.dispose()




# --- one line for the tests that need PostgreSQL ----------------------------------------------
# Without TEST_DATABASE_URL every PostgreSQL test is skipped; `-ra` would list each of them
# (hundreds of identical lines). They are counted into one line instead; other skips (and
# failures, xfails) are listed as usual.

def _needs_postgres(report) -> bool:
    longrepr = getattr(report, "longrepr", None)
    return bool(report.skipped and isinstance(longrepr, tuple) and len(longrepr) == 3 and "TEST_DATABASE_URL" in str(longrepr[2]))


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_terminal_summary(terminalreporter, exitstatus, config):
    skipped = terminalreporter.stats.get("skipped", [])
    postgres = [r for r in skipped if _needs_postgres(r)]
    if postgres:
        terminalreporter.stats["skipped"] = [r for r in skipped if not _needs_postgres(r)]
    try:
        yield
    finally:
        if postgres:
            terminalreporter.stats["skipped"] = skipped  # the final count still includes them
            terminalreporter.write_line(
                f"SKIPPED {len(postgres)} PostgreSQL tests: set TEST_DATABASE_URL "
                "(e.g. postgresql+psycopg://postgres@127.0.0.1:5432/test) to run them"
            )


# The fake Slack Web API (tests/fake_slack.py): ``fake_slack`` for any test that talks to Slack.
from tests.fake_slack import fake_slack, fake_slack_server  # noqa: E402,F401
