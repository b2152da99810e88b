"""Keeping the derived columns current: lead-time samples and change-failure flags.

Both are maintained by the same few statements whether one deploy arrives from Slack or a million
lines arrive from ``dora-bot import``.

Bulk rows (the import, a rebuild of the samples) go straight to the database driver as plain
tuples (``write_rows``): at a million lines SQLAlchemy's per-value processing would cost more than
the database's own work. Instants are handed over already in the form ``UTCDateTime`` stores them
(``stored_instant``), so what lands in the tables is exactly what the ORM would have written.
"""

from __future__ import annotations

import json
import zlib
from datetime import datetime
from typing import Callable, Iterable, Sequence

from sqlalchemy import Connection, delete, false, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from bot.core.rules import lead_seconds
from bot.store import rules
from bot.store.models import AppMeta, Deploy, DeployCommit, Incident, LeadSample
from bot.store.rules import rollbacks_of
from bot.store.types import to_micros

deploy_t = Deploy.__table__
commit_t = DeployCommit.__table__
sample_t = LeadSample.__table__
incident_t = Incident.__table__
meta_t = AppMeta.__table__

PRODUCTION_SET_KEY = "lead_samples.production_environments"
SAMPLE_COLUMNS = ("service_id", "sha", "deploy_id", "deployed_at", "committed_at", "lead_seconds")


def _insert(conn: Connection, table):
    return (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(table)


# --- bulk rows, straight to the driver ----------------------------------------------------

def _sqlite_instant(value: datetime | None) -> int | None:
    """What ``UTCDateTime`` stores on SQLite: integer microseconds since the Unix epoch."""
    if value is None:
        return None
    return to_micros(value)


def _pg_instant(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise ValueError(f"naive datetime {value!r}: instants must be timezone-aware")
    return value


def stored_instant(conn: Connection) -> Callable[[datetime | None], object]:
    """A function turning an aware instant into the value the driver gets for a UTCDateTime column."""
    return _pg_instant if conn.dialect.name == "postgresql" else _sqlite_instant


SMALL_BATCH = 256  # PostgreSQL: fewer rows than this go in one INSERT ... VALUES, not via COPY


FEW_ROWS = 16  # SQLite, with a cursor given: up to this many rows go in one INSERT ... VALUES


def write_rows(
    conn: Connection, table: str, columns: Sequence[str], rows: Sequence[tuple], *, suffix: str = "",
    returning: str | None = None, cursor=None,
) -> list[tuple]:
    """Insert plain tuples (values already in stored form) into ``table``; rows are inserted in order.

    SQLite: one prepared statement run by ``executemany`` (``returning`` is not available there).
    PostgreSQL: ``COPY``; when a ``suffix`` (``ON CONFLICT ...``) or ``returning`` is given,
    ``COPY`` into a temporary staging table and one ``INSERT ... SELECT`` from it (a small batch
    is one multi-row ``INSERT ... VALUES`` instead).

    ``cursor``: a DBAPI cursor on ``conn``'s connection to run on (the write path of a single
    deploy passes its own); on SQLite a few rows then go in one multi-row ``INSERT ... VALUES``.
    """
    if not rows:
        return []
    cols = ", ".join(columns)
    if conn.dialect.name != "postgresql":
        if returning:
            raise ValueError("write_rows: RETURNING is only used on PostgreSQL")
        marks = "(" + ", ".join("?" * len(columns)) + ")"
        if cursor is not None and len(rows) <= FEW_ROWS:
            params = [value for row in rows for value in row]
            cursor.execute(f"INSERT INTO {table} ({cols}) VALUES {', '.join([marks] * len(rows))} {suffix}", params)
        elif cursor is not None:
            cursor.executemany(f"INSERT INTO {table} ({cols}) VALUES {marks} {suffix}", rows)
        else:
            conn.exec_driver_sql(f"INSERT INTO {table} ({cols}) VALUES {marks} {suffix}", rows)
        return []
    tail = f" {suffix} RETURNING {returning}" if returning else f" {suffix}"
    own = cursor is None
    if own:
        cursor = conn.connection.dbapi_connection.cursor()
    try:
        if not suffix and not returning:
            _copy(cursor, table, cols, rows)
            return []
        if len(rows) < SMALL_BATCH:
            marks = "(" + ", ".join(["%s"] * len(columns)) + ")"
            params = [value for row in rows for value in row]
            cursor.execute(f"INSERT INTO {table} ({cols}) VALUES {', '.join([marks] * len(rows))}{tail}", params)
        else:
            stage = f"stage_{table}_{zlib.crc32(cols.encode()):08x}"
            cursor.execute(
                f"CREATE TEMPORARY TABLE IF NOT EXISTS {stage} ON COMMIT DROP AS SELECT {cols} FROM {table} WITH NO DATA"
            )
            cursor.execute(f"TRUNCATE {stage}")
            _copy(cursor, stage, cols, rows)
            cursor.execute(f"INSERT INTO {table} ({cols}) SELECT {cols} FROM {stage} ORDER BY ctid{tail}")
        return cursor.fetchall() if returning else []
    finally:
        if own:
            cursor.close()


def _copy(cursor, table: str, cols: str, rows: Iterable[tuple]) -> None:
    with cursor.copy(f"COPY {table} ({cols}) FROM STDIN") as copy:
        write = copy.write_row
        for row in rows:
            write(row)


def upsert_stored_lead_samples(conn: Connection, rows: Sequence[tuple], *, cursor=None) -> None:
    """Write candidate samples (tuples in ``SAMPLE_COLUMNS`` order, instants in stored form); a
    sample only moves to an earlier first deploy, never later. Rows must come from qualifying
    deploys only.

    Stored instants of one dialect order like the instants themselves (SQLite's fixed-width UTC
    text too), so the earliest candidate per key is picked on them directly. ``cursor``: see
    ``write_rows``.
    """
    if not rows:
        return
    # One statement may not touch the same key twice (PostgreSQL): keep the earliest per key.
    earliest: dict[tuple[int, str], tuple] = {}
    for row in rows:
        key = (row[0], row[1])
        best = earliest.get(key)
        if best is None or (row[3], row[2]) < (best[3], best[2]):
            earliest[key] = row
    write_rows(
        conn,
        "lead_sample",
        SAMPLE_COLUMNS,
        list(earliest.values()),
        suffix=(
            "ON CONFLICT (service_id, sha) DO UPDATE SET deploy_id = excluded.deploy_id,"
            " deployed_at = excluded.deployed_at, committed_at = excluded.committed_at,"
            " lead_seconds = excluded.lead_seconds WHERE excluded.deployed_at < lead_sample.deployed_at"
        ),
        cursor=cursor,
    )


def lead_sample_row(*, service_id: int, deploy_id: int, deployed_at, sha: str, committed_at) -> dict:
    lead = lead_seconds(deployed_at, committed_at)
    return {
        "service_id": service_id,
        "sha": sha,
        "deploy_id": deploy_id,
        "deployed_at": deployed_at,
        "committed_at": committed_at,
        "lead_seconds": lead,
    }


def refresh_change_failure(conn: Connection, deploy_ids: Iterable[int | None]) -> None:
    """Recompute the change-failure flag of these deploys from the facts."""
    ids = sorted({i for i in deploy_ids if i is not None})
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        conn.execute(
            update(deploy_t).where(deploy_t.c.id.in_(chunk)).values(change_failure=rules.change_failure_expr())
        )


def mark_referenced_failures(conn: Connection, *, since_deploy_id: int, since_incident_id: int) -> None:
    """After a bulk load: flag every deploy that newly loaded (counted) incidents or rollbacks
    point at: the bulk form of ``rules.change_failure_expr``."""
    rollback = deploy_t.alias("rollback")
    conn.execute(
        update(deploy_t)
        .where(deploy_t.c.change_failure == false())
        .where(
            or_(
                deploy_t.c.id.in_(
                    select(incident_t.c.caused_by_id).where(
                        incident_t.c.id > since_incident_id,
                        incident_t.c.caused_by_id.is_not(None),
                        rules.counted_incident(),
                    )
                ),
                deploy_t.c.id.in_(
                    select(rollback.c.rollback_of_id).where(
                        rollback.c.id > since_deploy_id, rollbacks_of(rollback.c.rollback_of_id, rollback)
                    )
                ),
            )
        )
        .values(change_failure=True)
    )


# --- the production set the samples were built for ----------------------------------------

def stored_production_set(conn: Connection) -> list[str] | None:
    value = conn.execute(select(meta_t.c.value).where(meta_t.c.key == PRODUCTION_SET_KEY)).scalar()
    return None if value is None else json.loads(value)


def ensure_production_set(conn: Connection, environments: Sequence[str]) -> bool:
    """Rebuild the lead-time samples if they were built for another production set.

    Returns True when a rebuild happened. Called once at start-up by the composition root.
    """
    wanted = sorted(environments)
    stored = stored_production_set(conn)
    if stored == wanted:
        return False
    has_deploys = conn.execute(select(deploy_t.c.id).limit(1)).first() is not None
    if stored is not None or has_deploys:
        rebuild_lead_samples(conn, wanted)
    stmt = _insert(conn, meta_t)
    conn.execute(
        stmt.on_conflict_do_update(index_elements=[meta_t.c.key], set_={"value": stmt.excluded.value}),
        {"key": PRODUCTION_SET_KEY, "value": json.dumps(wanted)},
    )
    return True


def rebuild_lead_samples(conn: Connection, environments: Sequence[str], *, batch: int = 20000) -> None:
    """Recompute every lead-time sample from the deploys and their commits, in batches."""
    conn.execute(delete(sample_t))
    query = (
        select(
            deploy_t.c.service_id,
            deploy_t.c.id,
            deploy_t.c.deployed_at,
            commit_t.c.sha,
            commit_t.c.committed_at,
        )
        .join(commit_t, commit_t.c.deploy_id == deploy_t.c.id)
        .where(rules.qualifying(environments))
        .order_by(deploy_t.c.id)
    )
    instant = stored_instant(conn)
    pending: list[tuple] = []
    for row in conn.execute(query.execution_options(yield_per=batch)):
        s = lead_sample_row(
            service_id=row.service_id,
            deploy_id=row.id,
            deployed_at=row.deployed_at,
            sha=row.sha,
            committed_at=row.committed_at,
        )
        pending.append(
            (s["service_id"], s["sha"], s["deploy_id"], instant(s["deployed_at"]), instant(s["committed_at"]), s["lead_seconds"])
        )
        if len(pending) >= batch:
            upsert_stored_lead_samples(conn, pending)
            pending = []
    upsert_stored_lead_samples(conn, pending)
