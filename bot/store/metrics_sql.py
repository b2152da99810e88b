"""The SQL side of the four keys: every count, median and percentile is computed by the database.

Nothing here pulls event rows into Python. The only rows that cross are a handful of aggregates
and, for deployment frequency, one row per local date that had a deploy (at most one per day of
the window). Medians are ``percentile_cont`` on PostgreSQL; SQLite has no such aggregate, so it
ranks the values with a window function and returns just the two rows each percentile
interpolates between.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Sequence

from sqlalchemy import Connection, Integer, and_, column, exists, func, or_, select, values

from bot.core.metrics import Aggregates, Distribution, Window, percentile_positions
from bot.store.models import Deploy, Incident, LeadSample, Service
from bot.store.types import UTCDateTime

deploy_t = Deploy.__table__
sample_t = LeadSample.__table__
incident_t = Incident.__table__
service_t = Service.__table__


def service_id_for(conn: Connection, name: str) -> int | None:
    return conn.execute(select(service_t.c.id).where(service_t.c.name == name)).scalar()


def _percentiles(conn: Connection, values_query, n: int, ps: Sequence[float]) -> list[float | None]:
    """``percentile_cont(p)`` of the single column ``v`` of ``values_query``, for each p."""
    if n == 0:
        return [None for _ in ps]
    sub = values_query.subquery()
    if conn.dialect.name == "postgresql":
        cols = [func.percentile_cont(p).within_group(sub.c.v) for p in ps]
        return [None if v is None else float(v) for v in conn.execute(select(*cols)).one()]
    positions = [percentile_positions(n, p) for p in ps]
    ranks = sorted({r for lo, hi, _ in positions for r in (lo, hi)})
    ranked = select(sub.c.v, (func.row_number().over(order_by=sub.c.v) - 1).label("rn")).subquery()
    found = dict(conn.execute(select(ranked.c.rn, ranked.c.v).where(ranked.c.rn.in_(ranks))).all())
    out = []
    for lo, hi, weight in positions:
        low, high = float(found[lo]), float(found[hi])
        out.append(low + weight * (high - low))
    return out


def _qualifying(environments: Sequence[str], service_id: int | None):
    conds = [deploy_t.c.status == "success", deploy_t.c.environment.in_(list(environments))]
    if service_id is not None:
        conds.append(deploy_t.c.service_id == service_id)
    return and_(*conds)


def deploy_dates(
    conn: Connection, window: Window, environments: Sequence[str], service_id: int | None
) -> frozenset[date]:
    """The local dates (that a block looks at) with at least one qualifying deploy in the window.

    One indexed EXISTS probe per date rather than a scan of every deploy; the dates and their UTC
    bounds come from Python because SQLite has no time-zone database.
    """
    bounds = [(d, window.date_bounds(d)) for d in window.block_dates()]
    rows = [(i, lo, hi) for i, (d, b) in enumerate(bounds) if b is not None for lo, hi in [b]]
    if not rows:
        return frozenset()
    days = values(
        column("i", Integer), column("lo", UTCDateTime), column("hi", UTCDateTime), name="days"
    ).data(rows).cte("days")
    probe = exists().where(
        _qualifying(environments, service_id),
        deploy_t.c.deployed_at >= days.c.lo,
        deploy_t.c.deployed_at < days.c.hi,
    )
    hits = conn.execute(select(days.c.i).where(probe)).scalars().all()
    return frozenset(bounds[i][0] for i in hits)


def aggregates(
    conn: Connection, window: Window, environments: Sequence[str], service_id: int | None
) -> Aggregates:
    """Every aggregate one report needs, for one scope and window."""
    start, end = window.start, window.end
    envs = list(environments)
    qualifying = _qualifying(envs, service_id)

    # Deployment frequency and change failure rate: one pass over the covering index.
    deploys, failed = conn.execute(
        select(
            func.count(),
            func.coalesce(func.sum(func.cast(deploy_t.c.change_failure, Integer)), 0),
        ).where(qualifying, deploy_t.c.deployed_at >= start, deploy_t.c.deployed_at < end)
    ).one()
    ever = deploys > 0 or conn.execute(select(exists().where(qualifying))).scalar()
    dates = deploy_dates(conn, window, envs, service_id) if ever and window.days >= 7 else frozenset()

    # Lead time: samples whose first qualifying deploy is in the window.
    sample_scope = [sample_t.c.deployed_at >= start, sample_t.c.deployed_at < end, sample_t.c.lead_seconds.is_not(None)]
    if service_id is not None:
        sample_scope.append(sample_t.c.service_id == service_id)
    valid_n, invalid_n = conn.execute(
        select(
            func.count().filter(sample_t.c.lead_seconds >= 0),
            func.count().filter(sample_t.c.lead_seconds < 0),
        ).where(*sample_scope)
    ).one()
    lead_values = select(sample_t.c.lead_seconds.label("v")).where(*sample_scope, sample_t.c.lead_seconds >= 0)
    lead_median, lead_p90 = _percentiles(conn, lead_values, valid_n, (0.5, 0.9))

    # Incidents in scope: the service (if any) and the production environments.
    inc_scope = [incident_t.c.environment.in_(envs)]
    if service_id is not None:
        inc_scope.append(incident_t.c.service_id == service_id)

    unlinked = conn.execute(
        select(func.count()).where(
            *inc_scope,
            incident_t.c.started_at >= start,
            incident_t.c.started_at < end,
            incident_t.c.caused_by_id.is_(None),
        )
    ).scalar()

    resolved_scope = [*inc_scope, incident_t.c.resolved_at >= start, incident_t.c.resolved_at < end]
    restore_n, recovery_n = conn.execute(
        select(func.count(), func.count(incident_t.c.caused_by_id)).where(*resolved_scope)
    ).one()
    restore_median, restore_p90 = _percentiles(
        conn, select(incident_t.c.restore_seconds.label("v")).where(*resolved_scope), restore_n, (0.5, 0.9)
    )
    (recovery_median,) = _percentiles(
        conn,
        select(incident_t.c.recovery_seconds.label("v")).where(*resolved_scope, incident_t.c.caused_by_id.is_not(None)),
        recovery_n,
        (0.5,),
    )

    open_n, oldest = conn.execute(
        select(func.count(), func.min(incident_t.c.started_at)).where(
            *inc_scope,
            incident_t.c.started_at < end,
            or_(incident_t.c.resolved_at.is_(None), incident_t.c.resolved_at >= end),
        )
    ).one()
    if isinstance(oldest, str):  # SQLite returns MIN() of a text column untyped
        oldest = UTCDateTime().process_result_value(datetime.fromisoformat(oldest), conn.dialect)

    ack_scope = [*inc_scope, incident_t.c.acknowledged_at >= start, incident_t.c.acknowledged_at < end]
    ack_n = conn.execute(select(func.count()).where(*ack_scope)).scalar()
    (ack_median,) = _percentiles(conn, select(incident_t.c.ack_seconds.label("v")).where(*ack_scope), ack_n, (0.5,))

    return Aggregates(
        deploys=int(deploys),
        any_deploy_ever=bool(ever),
        deploy_dates=dates,
        failed=int(failed),
        lead=Distribution(n=int(valid_n), median=lead_median, p90=lead_p90),
        invalid_lead_samples=int(invalid_n),
        unlinked_incidents=int(unlinked),
        restore=Distribution(n=int(restore_n), median=restore_median, p90=restore_p90),
        recovery=Distribution(n=int(recovery_n), median=recovery_median),
        open_incidents=int(open_n),
        oldest_open_started=oldest,
        mtta=Distribution(n=int(ack_n), median=ack_median),
    )
