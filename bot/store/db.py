"""Engines, sessions and schema migrations.

SQLite runs in WAL mode with foreign keys enforced and a busy timeout, so the CLI, the server and
the scheduler can share one file. PostgreSQL is used through psycopg 3.
"""

from __future__ import annotations

import threading
import weakref
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Iterator

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.pool import StaticPool
from sqlmodel import Session

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def make_engine(url: str, **kwargs) -> Engine:
    """Build an engine for ``url`` with the project's connection settings."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        memory = parsed.database in (None, "", ":memory:")
        if memory:
            kwargs.setdefault("poolclass", StaticPool)
        kwargs.setdefault("connect_args", {}).setdefault("check_same_thread", False)
        engine = create_engine(url, **kwargs)
        _configure_sqlite(engine, wal=not memory)
        return engine
    if parsed.get_backend_name() == "postgresql" and parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    kwargs.setdefault("pool_pre_ping", True)
    return create_engine(parsed, **kwargs)


def _configure_sqlite(engine: Engine, *, wal: bool) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):  # pragma: no cover - exercised by every SQLite test
        # Let SQLAlchemy manage transactions with an explicit BEGIN (pysqlite's own handling
        # would defer it and break SAVEPOINT and isolation).
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=10000")
        if wal:
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):  # pragma: no cover - exercised by every SQLite test
        # A unit of work that writes takes the write lock up front (and waits for it up to the
        # busy timeout) instead of failing later when a read transaction tries to upgrade.
        write = conn.get_execution_options().get("dora_write", True)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


_write_locks: "weakref.WeakKeyDictionary[Engine, threading.RLock]" = weakref.WeakKeyDictionary()
_write_locks_guard = threading.Lock()


def _sqlite_write_lock(engine: Engine):
    """One in-process lock per SQLite engine: writers queue here instead of in SQLite's busy loop.

    SQLite admits one writer at a time and makes the others retry with sleeps of up to 100 ms;
    queueing threads on a lock instead keeps the latency of concurrent writes flat.
    """
    if engine.dialect.name != "sqlite":
        return nullcontext()
    with _write_locks_guard:
        lock = _write_locks.get(engine)
        if lock is None:
            lock = _write_locks[engine] = threading.RLock()
    return lock


@contextmanager
def session_scope(engine: Engine, *, write: bool = True) -> Iterator[Session]:
    """One session per unit of work: committed when the block ends, rolled back on error.

    ``write=False`` marks a read-only unit (metrics, listings) so that on SQLite it does not take
    the write lock.
    """
    bind = engine if write else engine.execution_options(dora_write=False)
    with _sqlite_write_lock(engine) if write else nullcontext():
        with Session(bind, expire_on_commit=False) as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise


@contextmanager
def connection_scope(engine: Engine, *, write: bool = True) -> Iterator[Connection]:
    """``session_scope`` without the ORM: one Core connection and transaction per unit of work.

    For hot paths that write with Core or driver statements (the ingest API's deploys); a
    ``Session(bind=conn)`` joins the transaction when an ORM read is needed.
    """
    bind = engine if write else engine.execution_options(dora_write=False)
    with _sqlite_write_lock(engine) if write else nullcontext():
        with bind.begin() as conn:
            yield conn


# --- the numbers people see -----------------------------------------------------------------
# D-<n> and INC-<n> are the row ids. SQLite gives a new row the largest id + 1, so a retry that
# inserts nothing and a transaction that is rolled back leave no gap. A PostgreSQL sequence is
# not transactional: every value an INSERT draws stays used even when its row is never committed.
# So writers check for a stored external id before they insert (``lock_external_id``), and after
# a rolled-back or killed import the sequences are set back to the largest stored id.

NUMBERED_TABLES = ("deploy", "incident")


def lock_external_id(conn: Connection, table: str, external_id: str, cursor=None) -> None:
    """PostgreSQL: serialize writers of one external id until the transaction ends, so that a
    stored row is seen before an INSERT would draw a sequence value for nothing."""
    if conn.dialect.name != "postgresql":
        return
    sql, params = "SELECT pg_advisory_xact_lock(hashtext(%s))", (f"{table}:{external_id}",)
    if cursor is not None:
        cursor.execute(sql, params)
    else:
        conn.exec_driver_sql(sql, params)


def restore_sequences(engine: Engine, *, lock_timeout_ms: int = 2000) -> None:
    """PostgreSQL: set the id sequences of deploys and incidents back to the largest stored id.

    Each table is locked against inserts for the moment it takes (waiting for writers in flight,
    at most ``lock_timeout_ms``; if busy, that table is left for the next time).
    """
    if engine.dialect.name != "postgresql":
        return
    from sqlalchemy.exc import OperationalError

    for table in NUMBERED_TABLES:
        try:
            with engine.begin() as conn:
                conn.exec_driver_sql(f"SET LOCAL lock_timeout = {int(lock_timeout_ms)}")
                conn.exec_driver_sql(f"LOCK TABLE {table} IN SHARE ROW EXCLUSIVE MODE")
                conn.exec_driver_sql(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), coalesce((SELECT max(id) FROM {table}), 0) + 1, false)"
                )
        except OperationalError:  # lock_timeout: a long writer holds the table; next time
            continue


# --- migrations ---------------------------------------------------------------------------

def _alembic_config(engine: Engine):
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["engine"] = engine
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Apply migrations up to ``revision``."""
    from alembic import command

    command.upgrade(_alembic_config(engine), revision)


def head_revision(engine: Engine) -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_alembic_config(engine)).get_current_head()


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def schema_status(engine: Engine) -> tuple[bool, str | None, str | None]:
    """(is current, current revision, head revision)."""
    current, head = current_revision(engine), head_revision(engine)
    return current == head, current, head
