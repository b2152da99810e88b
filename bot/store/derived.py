"""Keeping the derived columns current: lead-time samples and change-failure flags.

Both are maintained by the same few statements whether one deploy arrives from Slack or a million
lines arrive from ``dora-bot import``.
"""

from __future__ import annotations

import json
from typing import Iterable, Sequence

from sqlalchemy import Connection, and_, delete, exists, false, or_, select, true, update
from sqlalchemy.dialects import postgresql, sqlite

from bot.store.models import AppMeta, Deploy, DeployCommit, Incident, LeadSample

deploy_t = Deploy.__table__
commit_t = DeployCommit.__table__
sample_t = LeadSample.__table__
incident_t = Incident.__table__
meta_t = AppMeta.__table__

PRODUCTION_SET_KEY = "lead_samples.production_environments"


def _insert(conn: Connection, table):
    return (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(table)


def upsert_lead_samples(conn: Connection, rows: Sequence[dict]) -> None:
    """Write candidate samples; a sample only moves to an earlier first deploy, never later.

    Each row: service_id, sha, deploy_id, deployed_at, committed_at, lead_seconds. Rows must come
    from qualifying deploys only.
    """
    if not rows:
        return
    # One statement may not touch the same key twice (PostgreSQL): keep the earliest per key.
    earliest: dict[tuple[int, str], dict] = {}
    for row in rows:
        key = (row["service_id"], row["sha"])
        best = earliest.get(key)
        if best is None or (row["deployed_at"], row["deploy_id"]) < (best["deployed_at"], best["deploy_id"]):
            earliest[key] = row
    stmt = _insert(conn, sample_t)
    stmt = stmt.on_conflict_do_update(
        index_elements=[sample_t.c.service_id, sample_t.c.sha],
        set_={
            "deploy_id": stmt.excluded.deploy_id,
            "deployed_at": stmt.excluded.deployed_at,
            "committed_at": stmt.excluded.committed_at,
            "lead_seconds": stmt.excluded.lead_seconds,
        },
        where=stmt.excluded.deployed_at < sample_t.c.deployed_at,
    )
    conn.execute(stmt, list(earliest.values()))


def lead_sample_row(*, service_id: int, deploy_id: int, deployed_at, sha: str, committed_at) -> dict:
    lead = None if committed_at is None else (deployed_at - committed_at).total_seconds()
    return {
        "service_id": service_id,
        "sha": sha,
        "deploy_id": deploy_id,
        "deployed_at": deployed_at,
        "committed_at": committed_at,
        "lead_seconds": lead,
    }


def change_failure_expr():
    """True when the deploy is a change failure: marked, caused an incident, or rolled back."""
    rolled_back = deploy_t.alias("rollback")
    return or_(
        deploy_t.c.marked_failed == true(),
        exists().where(incident_t.c.caused_by_id == deploy_t.c.id),
        exists().where(and_(rolled_back.c.rollback_of_id == deploy_t.c.id, rolled_back.c.status == "success")),
    )


def refresh_change_failure(conn: Connection, deploy_ids: Iterable[int | None]) -> None:
    """Recompute the change-failure flag of these deploys from the facts."""
    ids = sorted({i for i in deploy_ids if i is not None})
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        conn.execute(
            update(deploy_t).where(deploy_t.c.id.in_(chunk)).values(change_failure=change_failure_expr())
        )


def mark_referenced_failures(conn: Connection, *, since_deploy_id: int, since_incident_id: int) -> None:
    """After a bulk load: flag every deploy that newly loaded incidents or rollbacks point at."""
    rollback = deploy_t.alias("rollback")
    conn.execute(
        update(deploy_t)
        .where(deploy_t.c.change_failure == false())
        .where(
            or_(
                deploy_t.c.id.in_(
                    select(incident_t.c.caused_by_id).where(
                        incident_t.c.id > since_incident_id, incident_t.c.caused_by_id.is_not(None)
                    )
                ),
                deploy_t.c.id.in_(
                    select(rollback.c.rollback_of_id).where(
                        rollback.c.id > since_deploy_id,
                        rollback.c.rollback_of_id.is_not(None),
                        rollback.c.status == "success",
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
        .where(deploy_t.c.status == "success", deploy_t.c.environment.in_(list(environments)))
        .order_by(deploy_t.c.id)
    )
    pending: list[dict] = []
    for row in conn.execute(query.execution_options(yield_per=batch)):
        pending.append(
            lead_sample_row(
                service_id=row.service_id,
                deploy_id=row.id,
                deployed_at=row.deployed_at,
                sha=row.sha,
                committed_at=row.committed_at,
            )
        )
        if len(pending) >= batch:
            upsert_lead_samples(conn, pending)
            pending = []
    upsert_lead_samples(conn, pending)
