"""The SQL side of the five keys: every count, median and percentile is computed by the database.

Deploys and lead-time samples (the sets that grow to millions) are never pulled into Python:
what crosses is a handful of aggregates, one row per local date that had a deploy (deployment
frequency) and, on SQLite, the values next to a percentile's rank. Medians are
``percentile_cont`` on PostgreSQL. SQLite has no such aggregate: for lead time it walks the
samples in lead-time order to the wanted rank, or sorts only the window's samples between two
pivots around it (``_SqliteLead``: about a twentieth of them); a window's incident durations
(one short row per incident) come back as bare numbers and are ranked in Python, which is faster
than SQLite sorting them once per key.
"""

from __future__ import annotations

import bisect
import json
import math
from datetime import date, datetime
from typing import Sequence

from sqlalchemy import (
    Connection,
    Float,
    Integer,
    String,
    bindparam,
    column,
    exists,
    func,
    select,
    text,
    true,
    union_all,
)
from sqlalchemy.sql.elements import UnaryExpression
from sqlalchemy.sql.operators import custom_op

from bot.core.inputs import service_key
from bot.core.metrics import Aggregates, Distribution, Window, percentile_positions
from bot.store import rules
from bot.store.derived import stored_instant
from bot.store.models import Deploy, Incident, LeadSample, Service
from bot.store.scope import ORG, TEAM, Scope, as_scope
from bot.store.types import UTCDateTime, from_stored

deploy_t = Deploy.__table__
sample_t = LeadSample.__table__
incident_t = Incident.__table__
service_t = Service.__table__

# SQLite lead-time percentiles (see _SqliteLead): rank (sort) windows with fewer valid samples
# than PIVOT_MIN (a team's short windows: up to SORT_MAX); walk from the ends when the window spans at least 1/WALK_SHARE of the scope's
# history (a walk costs about one step per sample of the scope up to the rank); otherwise walk
# from pivots read off a sample of about PIVOT_SAMPLE of the window's samples.
PIVOT_MIN = 8192
PIVOT_SAMPLE = 4096
WALK_SHARE = 6
# A team of several services over a short window sorts up to this many samples itself (they are
# read by date, in one pass, as bare numbers): below it that beats the four passes of pivots.
SORT_MAX = 32768


def service_for(conn: Connection, name: str) -> tuple[int, str] | None:
    """(id, display name) of the service ``name`` means, or None."""
    row = conn.execute(select(service_t.c.id, service_t.c.name).where(service_t.c.key == service_key(name))).first()
    return None if row is None else (row[0], row[1])


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


def _durations_sqlite(where: list, wanted: Sequence[tuple]):
    """Incident durations, SQLite: for each ``(column, condition or None, percentiles)`` of
    ``wanted``, the column's value and whether the row counts for it, one row per incident that
    ``where`` selects. SQLite has no percentile aggregate; a window's incidents are few (one row
    each, a few numbers), so they are ranked in Python (``_rank_durations``), which is faster than
    SQLite sorting them once per key. PostgreSQL aggregates them: ``_durations_pg``."""
    return select(*(c for col, cond, _ in wanted for c in (col, true() if cond is None else cond))).where(*where)


def _rank_durations(rows: list, wanted: Sequence[tuple]) -> list[tuple[int, list[float | None]]]:
    out = []
    for j, (_, _, ps) in enumerate(wanted):
        chosen = [r[2 * j] for r in rows if r[2 * j + 1]]
        values = sorted(float(v) for v in chosen if v is not None)  # count(*) counts them all, as above
        out.append((len(chosen), [_interpolate(values, p) for p in ps]))
    return out


def _durations_pg(where: list, wanted: Sequence[tuple]):
    """PostgreSQL: per column of ``wanted`` (as ``_durations_sqlite``), a count and its percentiles
    (an ordered-set aggregate takes a FILTER like any other)."""
    cols = []
    for col, cond, ps in wanted:
        agg = [func.count(), *(func.percentile_cont(p).within_group(col) for p in ps)]
        cols += agg if cond is None else [a.filter(cond) for a in agg]
    return select(*cols).where(*where)


def _read_durations(row, wanted: Sequence[tuple]) -> list[tuple[int, list[float | None]]]:
    out = []
    for _, _, ps in wanted:
        n = int(next(row))
        out.append((n, [None if v is None else float(v) for v in (next(row) for _ in ps)]))
    return out


def _interpolate(values: Sequence[float], p: float) -> float | None:
    """``percentile_cont(p)`` of sorted values."""
    if not values:
        return None
    lo, hi, weight = percentile_positions(len(values), p)
    return values[lo] + weight * (values[hi] - values[lo])


def _own(scope: Scope) -> tuple[str, dict]:
    """The scope as SQL text for a ``service_id`` column (``""`` for the org), and its parameters."""
    if scope.service_ids is None:
        return "", {}
    if scope.single is not None:
        return "service_id = :service_id", {"service_id": scope.single}
    return "service_id IN :service_ids", {"service_ids": list(scope.service_ids)}


def _bind_own(stmt, params: dict):
    """Bind the scope's parameters (an expanding list for a team's services)."""
    if "service_ids" in params:
        stmt = stmt.bindparams(bindparam("service_ids", expanding=True))
    return stmt


def _lead_pg(window: Window, scope: Scope):
    """PostgreSQL: one pass over the window's samples for the counts and both percentiles of the
    valid ones (an ordered-set aggregate takes a FILTER like any other; a team's 90 days: 125 -> 93 ms)."""
    where = [sample_t.c.deployed_at >= window.start, sample_t.c.deployed_at < window.end, scope.condition(sample_t.c.service_id)]
    valid = sample_t.c.lead_seconds >= 0
    return select(
        func.count().filter(valid),
        func.count().filter(sample_t.c.lead_seconds < 0),
        *(func.percentile_cont(p).within_group(sample_t.c.lead_seconds).filter(valid) for p in (0.5, 0.9)),
    ).where(*where, sample_t.c.lead_seconds.is_not(None))


class _SqliteLead:
    """Lead-time counts and percentiles on SQLite, read through the index that makes each cheap.

    SQL text, for ``INDEXED BY``: which index reads the samples is the whole point here.

    * Counts: all samples of the window (a bare index range: nothing decoded per entry) less the
      few with no lead time or a negative one (short ranges at the start of the lead-time index).
    * A percentile is the value at a rank of the window's samples in lead-time order. SQLite's
      sort is slow, so instead the lead-time index (``ix_lead_sample_lead``, per service
      ``ix_lead_sample_service_lead``) is walked in order, counting only the window's samples
      (a team of several services walks ``ix_lead_sample_lead``, counting only its services):
      - from the nearer end of all samples, when the window holds a good share of them;
      - otherwise from a pivot just short of the wanted rank: pivots are read off a small sorted
        sample of the window (every m-th row), one pass counts the window's samples beyond them,
        and the walk covers only the rest. A pivot that lands on the wrong side (unlikely: the
        margins are three standard deviations) falls back to ranking the window;
      - for a team of several services and a short window, from the window's own samples read by
        date: only those between two pivots around the rank are sorted (``_bracketed``);
      - a small window is simply ranked (sorted).
    """

    def __init__(self, conn: Connection, window: Window, scope: Scope):
        self.conn = conn
        self.window = window
        self.scope = scope
        own, self.own_params = _own(scope)
        self.own = own
        self.in_window = f"{own + ' AND ' if own else ''}deployed_at >= :start AND deployed_at < :end"
        self.several = scope.service_ids is not None and scope.single is None
        self.by_date = "ix_lead_sample_service_window" if own else "ix_lead_sample_window"
        self.by_lead = "ix_lead_sample_service_lead" if scope.single is not None else "ix_lead_sample_lead"

    def _text(self, sql: str, **params):
        """The statement with its parameters bound (instants the way the column stores them)."""
        params.update(start=self.window.start, end=self.window.end, **self.own_params)
        stmt = _bind_own(text(sql), self.own_params if ":service_ids" in sql else {})
        for name in ("start", "end"):
            if f":{name}" in sql:
                stmt = stmt.bindparams(bindparam(name, type_=UTCDateTime))
        return stmt.bindparams(**{name: value for name, value in params.items() if f":{name}" in sql})

    def _rows(self, sql: str, **params) -> list:
        """The statement's rows, run on the driver's own cursor: these are plain SQL text, several
        per report, and for a short window SQLAlchemy's work around each one (binding and
        compiling the text, building the result) cost about as much as SQLite's read of it."""
        stored = stored_instant(self.conn)
        params.update(start=stored(self.window.start), end=stored(self.window.end))
        if ":service_ids" in sql:
            ids = self.own_params["service_ids"]
            sql = sql.replace(":service_ids", "(" + ", ".join(f":s{i}" for i in range(len(ids))) + ")")
            params.update({f"s{i}": v for i, v in enumerate(ids)})
        else:
            params.update(self.own_params)
        return self.conn.connection.driver_connection.execute(sql, params).fetchall()

    def compute(self, ps: Sequence[float]) -> tuple[int, int, list[float | None]]:
        if self.several:  # the lead-time index is shared with other services: count by date
            ((n, invalid),) = self._rows(
                "SELECT count(*) FILTER (WHERE lead_seconds >= 0), count(*) FILTER (WHERE lead_seconds < 0)"
                f" FROM lead_sample INDEXED BY {self.by_date} WHERE {self.in_window}"
            )
        else:
            ((total, unknown, invalid),) = self._rows(
                f"SELECT (SELECT count(*) FROM lead_sample INDEXED BY {self.by_date} WHERE {self.in_window}),"
                f" (SELECT count(*) FROM lead_sample INDEXED BY {self.by_lead} WHERE lead_seconds IS NULL AND {self.in_window}),"
                f" (SELECT count(*) FROM lead_sample INDEXED BY {self.by_lead} WHERE lead_seconds < 0 AND {self.in_window})"
            )
            n = total - unknown - invalid
        if n == 0:
            return 0, invalid, [None for _ in ps]
        if n < PIVOT_MIN or (self.several and n <= SORT_MAX):
            return n, invalid, self._ranked(n, ps)
        large = self._window_is_large()
        if large and not self.several:
            # (not for several services: a walk from the end would pass every other service's samples)
            return n, invalid, [self._walk(n, p, None, 0) for p in ps]
        if self.several and not large:
            # A short window of several services: the lead-time index they share holds every other
            # service's samples and every other day's, so walking it passes far more than the
            # window holds. The window's own samples, read by date, are bracketed instead.
            return n, invalid, self._bracketed(n, ps)
        return n, invalid, self._from_pivots(n, ps)

    def _ranked(self, n: int, ps: Sequence[float]) -> list[float | None]:
        """Sort the window's samples (read by date) and pick the ranks: up to SORT_MAX of them
        sorted here (faster than SQLite's sort: 21,000 samples 6 ms against 11), more by SQLite."""
        if n <= SORT_MAX:
            values = sorted(
                v for (v,) in self._rows(
                    f"SELECT lead_seconds FROM lead_sample INDEXED BY {self.by_date}"
                    f" WHERE lead_seconds >= 0 AND {self.in_window}"
                )
            )
            return [_interpolate(values, p) for p in ps]
        values = self._text(
            f"SELECT lead_seconds AS v FROM lead_sample INDEXED BY {self.by_date} WHERE lead_seconds >= 0 AND {self.in_window}"
        )
        return _percentiles(self.conn, values.columns(column("v", Float)), n, ps)

    def _walk(self, n: int, p: float, pivot: float | None, beyond: int) -> float:
        """percentile_cont(p): walk the lead-time index from the nearer end, or from ``pivot``
        (``beyond`` = the window's samples strictly past the pivot on that side)."""
        lo, hi, weight = percentile_positions(n, p)
        ascending = p <= 0.5
        if ascending:
            bound = "lead_seconds >= 0" if pivot is None else "lead_seconds >= :pivot"
            offset = lo - beyond
        else:
            bound = "lead_seconds >= 0" if pivot is None else "lead_seconds >= 0 AND lead_seconds <= :pivot"
            offset = n - 1 - hi - beyond
        extra = {} if pivot is None else {"pivot": pivot}
        found = [
            float(v)
            for (v,) in self._rows(
                f"SELECT lead_seconds FROM lead_sample INDEXED BY {self.by_lead} WHERE {bound} AND {self.in_window} "
                f"ORDER BY lead_seconds {'ASC' if ascending else 'DESC'} LIMIT :limit OFFSET :offset",
                limit=hi - lo + 1, offset=offset, **extra,
            )
        ]
        if not ascending:
            found.reverse()
        return found[0] + weight * (found[-1] - found[0])

    def _from_pivots(self, n: int, ps: Sequence[float]) -> list[float | None]:
        m = max(2, n // PIVOT_SAMPLE)
        sample_n = n / m
        ranks = []  # the rank, in the sample, of each percentile's pivot
        for p in ps:
            lo, hi, _ = percentile_positions(n, p)
            margin = 3 * math.sqrt(sample_n * p * (1 - p)) + 2
            # Short of the low rank when walking up, past the high rank when walking down.
            ranks.append(max(0, math.floor(lo / m - margin)) if p <= 0.5 else math.ceil(hi / m + margin))
        sample = self._sample(m, ranks)
        pivots = {i: sample[r] for i, r in enumerate(ranks) if r in sample}
        past = {}  # how many of the window's samples lie strictly beyond each pivot
        if pivots:
            counts = ", ".join(
                f"count(*) FILTER (WHERE lead_seconds {'<' if ps[i] <= 0.5 else '>'} :x{i})" for i in pivots
            )
            (row,) = self._rows(
                f"SELECT {counts} FROM lead_sample INDEXED BY {self.by_date} WHERE lead_seconds >= 0 AND {self.in_window}",
                **{f"x{i}": x for i, x in pivots.items()},
            )
            past = dict(zip(pivots, row, strict=True))
        out = []
        for i, p in enumerate(ps):
            if i not in pivots:  # the sample does not reach that far out: walk from the end
                out.append(self._walk(n, p, None, 0))
                continue
            lo, hi, _ = percentile_positions(n, p)
            if past[i] > (lo if p <= 0.5 else n - 1 - hi):  # the pivot overshot the rank
                return self._ranked(n, ps)
            out.append(self._walk(n, p, pivots[i], past[i]))
        return out

    def _sample(self, m: int, ranks: Sequence[int]) -> dict[int, float]:
        """Every m-th of the window's valid samples, sorted: the values at ``ranks`` of that
        sample (a rank past its end is left out)."""
        marks = ", ".join(f":r{i}" for i in range(len(ranks)))
        rows = self._rows(
            "SELECT rn, v FROM (SELECT v, row_number() OVER (ORDER BY v) - 1 AS rn FROM ("
            f"SELECT lead_seconds AS v FROM lead_sample INDEXED BY {self.by_date}"
            f" WHERE lead_seconds >= 0 AND {self.in_window} AND rowid % :m = 0)) WHERE rn IN ({marks})",
            m=m, **{f"r{i}": r for i, r in enumerate(ranks)},
        )
        return {rn: float(v) for rn, v in rows}

    def _bracketed(self, n: int, ps: Sequence[float]) -> list[float | None]:
        """percentile_cont(p) from the window's samples between two pivots that bracket its rank.

        The pivots come from a sorted sample of the window (every m-th row, three standard
        deviations of margin on each side); one pass counts the window's samples below each lower
        pivot and above each upper one, and then only the samples between a pair are sorted, to
        the rank. A bracket that misses its rank (unlikely) falls back to ranking the window.
        """
        m = max(2, n // PIVOT_SAMPLE)
        sample_n = n / m
        brackets = []  # sample ranks (low, high) around each percentile's ranks
        for p in ps:
            lo, hi, _ = percentile_positions(n, p)
            margin = 3 * math.sqrt(sample_n * p * (1 - p)) + 2
            brackets.append((math.floor(lo / m - margin), math.ceil(hi / m + margin)))
        wanted = sorted({r for pair in brackets for r in pair if r >= 0})
        sample = self._sample(m, wanted)
        # A side whose rank falls outside the sample stays open (the window's end on that side).
        pivots = [(sample.get(a) if a >= 0 else None, sample.get(b)) for a, b in brackets]
        counts, params = [], {}
        for i, (a, b) in enumerate(pivots):
            if a is not None:
                counts.append(f"count(*) FILTER (WHERE lead_seconds < :a{i})")
                params[f"a{i}"] = a
            if b is not None:
                counts.append(f"count(*) FILTER (WHERE lead_seconds > :b{i})")
                params[f"b{i}"] = b
        outside = iter(())
        if counts:
            (row,) = self._rows(
                f"SELECT {', '.join(counts)} FROM lead_sample INDEXED BY {self.by_date}"
                f" WHERE lead_seconds >= 0 AND {self.in_window}",
                **params,
            )
            outside = iter(row)
        places = []  # (rank in the bracket's rows, weight) of each percentile
        for p, (a, b) in zip(ps, pivots, strict=True):
            below = next(outside) if a is not None else 0
            above = next(outside) if b is not None else 0
            lo, hi, weight = percentile_positions(n, p)
            if below > lo or above > n - 1 - hi:  # a pivot landed past the rank
                return self._ranked(n, ps)
            places.append((lo - below, hi - below, weight))
        # Every bracket's samples in one pass, in lead-time order (a few thousand values).
        ranges = " OR ".join(
            "(" + " AND ".join(([] if a is None else [f"lead_seconds >= :a{i}"]) + ([] if b is None else [f"lead_seconds <= :b{i}"]))
            + ")" if (a, b) != (None, None) else "1"
            for i, (a, b) in enumerate(pivots)
        )
        values = [
            float(v)
            for (v,) in self._rows(
                f"SELECT lead_seconds FROM lead_sample INDEXED BY {self.by_date}"
                f" WHERE lead_seconds >= 0 AND ({ranges}) AND {self.in_window} ORDER BY lead_seconds",
                **params,
            )
        ]
        out = []
        for (a, _), (lo, hi, weight) in zip(pivots, places, strict=True):
            start = 0 if a is None else bisect.bisect_left(values, a)
            low, high = values[start + lo], values[start + hi]
            out.append(low + weight * (high - low))
        return out

    def _window_is_large(self) -> bool:
        """Does the window span at least 1/WALK_SHARE of the time the scope has samples for?"""
        # Two single-aggregate subqueries: each is one index seek (min and max in one would scan).
        own = f"WHERE {self.own}" if self.own else ""
        ((first, last),) = self._rows(
            f"SELECT (SELECT min(deployed_at) FROM lead_sample INDEXED BY {self.by_date} {own}),"
            f" (SELECT max(deployed_at) FROM lead_sample INDEXED BY {self.by_date} {own})"
        )
        if first is None or last is None:
            return False
        first, last = _instant(first, self.conn), _instant(last, self.conn)
        span = (last - first).total_seconds()
        covered = (min(self.window.end, last) - max(self.window.start, first)).total_seconds()
        return covered * WALK_SHARE >= span


def _instant(value, conn: Connection) -> datetime:
    """MIN()/MAX() of an instant column on SQLite come back untyped (integer microseconds)."""
    if conn.dialect.name == "sqlite":
        return from_stored(value)
    return value


def deploy_dates(
    conn: Connection, window: Window, environments: Sequence[str], service_id: Scope | int | None
) -> frozenset[date]:
    """The local dates (that a block looks at) with at least one qualifying deploy in the window.

    One indexed EXISTS probe per date rather than a scan of every deploy; the dates and their UTC
    bounds come from Python because SQLite has no time-zone database. They travel as one
    parameter, so the statement is the same for every window and compiled once, however many
    dates it probes. SQLite; on PostgreSQL the same probe is part of the report's statement.
    """
    bounds, hits = _date_probe(conn, window, environments, service_id)
    if hits is None:
        return frozenset()
    return frozenset(bounds[i][0] for i in conn.execute(hits).scalars().all())


def _date_probe(conn: Connection, window: Window, environments: Sequence[str], service_id: Scope | int | None):
    """The dates ``deploy_dates`` looks at (with their bounds), and the statement that gives the
    index of each date with a qualifying deploy (None when there is no date to probe)."""
    bounds = [(d, window.date_bounds(d)) for d in window.block_dates()]
    rows = [(i, lo, hi) for i, (d, b) in enumerate(bounds) if b is not None for lo, hi in [b]]
    if not rows:
        return bounds, None
    return bounds, _dates_with_deploys(_days(conn, rows), environments, service_id)


def _dates_with_deploys(days, environments: Sequence, service_id: Scope | int | None):
    """The ``i`` of each row of ``days(i, lo, hi)`` with a qualifying deploy in ``[lo, hi)``."""
    probe = exists().where(
        rules.qualifying(environments, service_id),
        deploy_t.c.deployed_at >= days.c.lo,
        deploy_t.c.deployed_at < days.c.hi,
    )
    return select(days.c.i).where(probe)


_DAYS_PG = (
    "SELECT * FROM unnest(CAST(:days_i AS integer[]), CAST(:days_lo AS timestamptz[]), CAST(:days_hi AS timestamptz[]))"
    " AS days(i, lo, hi)"
)


def _days(conn: Connection, rows: list[tuple[int, datetime, datetime]]):
    """SQLite: a CTE ``days(i, lo, hi)`` of the given rows, bound as a single parameter (a JSON
    array), the bounds in the form the column stores (integer microseconds, ``stored_instant``)
    (PostgreSQL's is ``_DAYS_PG``, arrays, in the report's statement)."""
    stored = stored_instant(conn)
    table = text(
        "SELECT json_extract(value, '$[0]') AS i, json_extract(value, '$[1]') AS lo, json_extract(value, '$[2]') AS hi"
        " FROM json_each(:days)"
    ).bindparams(days=json.dumps([[i, stored(lo), stored(hi)] for i, lo, hi in rows]))
    return table.columns(column("i", Integer), column("lo", Integer), column("hi", Integer)).cte("days")


def _still_open(conn: Connection, envs: list[str], scope: Scope, end: datetime) -> tuple[int, datetime | None]:
    """Incidents in scope open at ``end`` (never resolved, or resolved at or after it): how many,
    and when the oldest started. Two disjoint parts, each a short range of the resolved_at index,
    rather than every incident that started before ``end``. SQLite, in SQL text for the INDEXED BY
    its planner would not pick; PostgreSQL: ``_still_open_pg``, part of the report's statement."""
    own, own_params = _own(scope)
    where = f"environment IN :envs{' AND ' + own if own else ''} AND status IS NULL AND started_at < :end"  # rules.counted_incident
    query = text(
        f"SELECT count(*), min(started_at) FROM (SELECT started_at FROM incident WHERE {where} AND resolved_at IS NULL"
        f" UNION ALL SELECT started_at FROM incident INDEXED BY ix_incident_resolved WHERE {where} AND resolved_at >= :end)"
    ).bindparams(bindparam("envs", expanding=True), bindparam("end", type_=UTCDateTime))
    query = _bind_own(query, own_params)
    open_n, oldest = conn.execute(query.bindparams(envs=envs, end=end, **own_params)).one()
    return int(open_n), (None if oldest is None else _instant(oldest, conn))


def _still_open_pg(envs: list[str], scope: Scope, end: datetime):
    """PostgreSQL: the statement of ``_still_open``."""
    scope = [rules.incident_in_scope(envs, scope), incident_t.c.started_at < end]
    still_open = union_all(
        select(incident_t.c.started_at).where(*scope, incident_t.c.resolved_at.is_(None)),
        select(incident_t.c.started_at).where(*scope, incident_t.c.resolved_at >= end),
    ).subquery()
    return select(func.count(), func.min(still_open.c.started_at))


def aggregates(
    conn: Connection, window: Window, environments: Sequence[str], service_id: Scope | int | None
) -> Aggregates:
    """Every aggregate one report needs, for one scope (a ``Scope``, or a service id / None for
    the org) and window."""
    envs = list(environments)
    scope = as_scope(service_id)
    if scope.empty:
        return Aggregates()  # a team with no service: every key is n/a
    if conn.dialect.name == "postgresql":
        return _aggregates_pg(conn, window, envs, scope)
    end = window.end
    (counts_q, ever_q, unlinked_q, recovered_q, acked_q), (recovered, acked) = _sqlite_report(conn, len(envs), scope)
    stored = stored_instant(conn)
    values = _placeholder_values(window, envs, scope, stored)
    (counts,) = _run_compiled(conn, counts_q, values)
    ever = counts[0] > 0 or bool(_run_compiled(conn, ever_q, values)[0][0])
    dates = deploy_dates(conn, window, envs, scope) if ever and window.days >= 7 else frozenset()
    return _assembled(
        counts, ever, dates,
        _SqliteLead(conn, window, scope).compute((0.5, 0.9)),  # samples whose first qualifying deploy is in the window
        _run_compiled(conn, unlinked_q, values)[0],
        _rank_durations(_run_compiled(conn, recovered_q, values), recovered),
        _still_open(conn, envs, scope, end),
        _rank_durations(_run_compiled(conn, acked_q, values), acked),
    )


def _assembled(counts, ever: bool, dates: frozenset, lead, unlinked, recovered, still_open, acked) -> Aggregates:
    """The report's aggregates from its parts, as both databases compute them: ``counts`` (deploys,
    failed, rework), ``lead`` (valid, invalid, [median, p90]), ``unlinked`` (unlinked, not a
    change), ``recovered`` and ``acked`` (``_rank_durations`` / ``_read_durations``), ``still_open``
    (how many, the oldest start)."""
    (deploys, failed, rework), (valid_n, invalid_n, (lead_median, lead_p90)) = counts, lead
    (restore_n, (restore_median, restore_p90)), (recovery_n, (recovery_median,)) = recovered
    ((ack_n, (ack_median,)),) = acked
    open_n, oldest = still_open
    return Aggregates(
        deploys=int(deploys),
        any_deploy_ever=bool(ever),
        deploy_dates=dates,
        failed=int(failed),
        rework=int(rework),
        lead=Distribution(n=int(valid_n), median=lead_median, p90=lead_p90),
        invalid_lead_samples=int(invalid_n),
        unlinked_incidents=int(unlinked[0]),
        not_change_incidents=int(unlinked[1]),
        restore=Distribution(n=int(restore_n), median=restore_median, p90=restore_p90),
        recovery=Distribution(n=int(recovery_n), median=recovery_median),
        open_incidents=int(open_n),
        oldest_open_started=oldest,
        mtta=Distribution(n=int(ack_n), median=ack_median),
    )


def _report_queries(envs: Sequence, scope: Scope, start, end, *, sqlite: bool):
    """The statements of one report but lead time and what is still open: deploy counts, "any
    deploy ever", unlinked incidents, and the incident durations (``_durations_sqlite``' arguments) of
    recovery and acknowledgement. ``envs``, the scope's ids, ``start`` and ``end`` are values, or
    (PostgreSQL's cached statement) bind parameters."""
    qualifying = rules.qualifying(envs, scope)

    # Deployment frequency, change fail rate and rework rate: one pass over the covering index.
    counts_q = select(
        func.count(),
        func.coalesce(func.sum(func.cast(deploy_t.c.change_failure, Integer)), 0),
        func.coalesce(func.sum(func.cast(deploy_t.c.rework, Integer)), 0),
    ).where(qualifying, rules.in_window(deploy_t.c.deployed_at, start, end))
    # "ever" is before `end`: a window wholly before the history is n/a, not low (docs/metrics.md)
    ever_q = select(exists().where(qualifying, deploy_t.c.deployed_at < end))

    # Incidents in scope: counted (not cancelled), of the scope's services, in production.
    inc_scope = [rules.incident_in_scope(envs, scope)]
    not_caused = incident_t.c.not_caused_by_change == true()
    caused_by = incident_t.c.caused_by_id
    if sqlite:
        # Unary + keeps SQLite off ix_incident_caused_by_id: its statistics (about 2 rows per
        # value) hide that most incidents have no cause, so "IS NULL" through it reads nearly
        # every incident instead of the window's (a team's 30 days: 9 ms -> 0.7 ms).
        caused_by = UnaryExpression(caused_by, operator=custom_op("+"))
    unlinked_q = select(func.count().filter(~not_caused), func.count().filter(not_caused)).where(
        *inc_scope, rules.in_window(incident_t.c.started_at, start, end), caused_by.is_(None)
    )
    # Time to restore and failed deployment recovery time: incidents recovered in the window.
    recovered = (
        [*inc_scope, rules.in_window(incident_t.c.recovered_at, start, end)],
        [(incident_t.c.restore_seconds, None, (0.5, 0.9)),
         (incident_t.c.recovery_seconds, incident_t.c.caused_by_id.is_not(None), (0.5,))],
    )
    acked = ([*inc_scope, rules.in_window(incident_t.c.acknowledged_at, start, end)], [(incident_t.c.ack_seconds, None, (0.5,))])
    return counts_q, ever_q, unlinked_q, recovered, acked


# A report's statements are compiled once per shape of scope (the org, or n services), number of
# production environments and (PostgreSQL) whether deploy dates are probed; the values travel as
# parameters, on the driver's cursor. Building and compiling the SQLAlchemy statements each time
# cost about 4 ms, a third of a team's 30-day report (benchmarks/TEAM_RESULTS.md).
_PG_REPORTS: dict[tuple, tuple[tuple, tuple]] = {}
_SQLITE_REPORTS: dict[tuple, tuple[tuple, tuple]] = {}


class _Placeholders:
    """Stand-ins for a window's bounds in the statements built for the cache."""

    start = bindparam("w_start", type_=UTCDateTime)
    end = bindparam("w_end", type_=UTCDateTime)


def _placeholder_scope(n_envs: int, n_ids: int | None) -> tuple[list, Scope]:
    """The environments and the scope of a cached statement, as bind parameters."""
    envs = [bindparam(f"env{i}", type_=String) for i in range(n_envs)]
    ids = None if n_ids is None else tuple(bindparam(f"sid{i}", type_=Integer) for i in range(n_ids))
    return envs, Scope(kind=ORG if ids is None else TEAM, service_ids=ids)


def _placeholder_values(window: Window, envs: list[str], scope: Scope, instant=lambda d: d) -> dict:
    """The values of ``_placeholder_scope``'s parameters and the window's bounds (``instant``:
    how the driver is given an instant)."""
    values = {"w_start": instant(window.start), "w_end": instant(window.end), **{f"env{i}": e for i, e in enumerate(envs)}}
    values.update({f"sid{i}": v for i, v in enumerate(scope.service_ids or ())})
    return values


def _compile(conn: Connection, statement) -> tuple[str, tuple | None, dict]:
    """``(sql, the parameters' names in order (positional drivers) or None, the literal values
    SQLAlchemy binds itself)``; the placeholders have no value and are given per report."""
    compiled = statement.compile(dialect=conn.dialect)
    literals = {name: value for name, value in compiled.params.items() if value is not None}
    return str(compiled), (tuple(compiled.positiontup) if compiled.positional else None), literals


def _run_compiled(conn: Connection, entry: tuple[str, tuple | None, dict], values: dict) -> list:
    """The rows of a compiled statement, as bare tuples from the driver's cursor (SQLAlchemy's
    work around a result, building rows, is not needed for numbers)."""
    sql, order, literals = entry
    params = {**literals, **values}
    cursor = conn.connection.driver_connection.cursor()
    try:
        cursor.execute(sql, [params[name] for name in order] if order is not None else params)
        return cursor.fetchall()
    finally:
        cursor.close()


def _sqlite_report(conn: Connection, n_envs: int, scope: Scope) -> tuple[tuple, tuple]:
    """SQLite: the compiled statements of ``_report_queries`` for this shape (deploy counts, ever,
    unlinked, recovered and acknowledged incidents), and the duration shapes to rank them with."""
    n_ids = None if scope.service_ids is None else len(scope.service_ids)
    key = (conn.dialect.driver, n_envs, n_ids)
    cached = _SQLITE_REPORTS.get(key)
    if cached is None:
        envs, placeholder = _placeholder_scope(n_envs, n_ids)
        counts_q, ever_q, unlinked_q, recovered, acked = _report_queries(
            envs, placeholder, _Placeholders.start, _Placeholders.end, sqlite=True)
        statements = (counts_q, ever_q, unlinked_q, _durations_sqlite(*recovered), _durations_sqlite(*acked))
        cached = _SQLITE_REPORTS[key] = (tuple(_compile(conn, q) for q in statements), (recovered[1], acked[1]))
    return cached


def _pg_report(conn: Connection, n_envs: int, n_ids: int | None, probe_dates: bool) -> tuple[tuple, tuple]:
    """The compiled statement for this shape (``_compile``) and the duration shapes to read it with."""
    key = (conn.dialect.driver, n_envs, n_ids, probe_dates)
    cached = _PG_REPORTS.get(key)
    if cached is not None:
        return cached
    envs, scope = _placeholder_scope(n_envs, n_ids)
    window = _Placeholders
    counts_q, ever_q, unlinked_q, recovered, acked = _report_queries(envs, scope, window.start, window.end, sqlite=False)
    queries = [counts_q, ever_q, _lead_pg(window, scope), unlinked_q, _durations_pg(*recovered),
               _still_open_pg(envs, scope, window.end), _durations_pg(*acked)]
    if probe_dates:
        days = text(_DAYS_PG).columns(column("i", Integer), column("lo", UTCDateTime), column("hi", UTCDateTime)).cte("days")
        hits = _dates_with_deploys(days, envs, scope).subquery()
        queries.append(select(func.array_agg(hits.c.i)))  # NULL when no date had a deploy
    parts = [q.cte(f"part{i}") for i, q in enumerate(queries)]
    joined = parts[0]
    for part in parts[1:]:
        joined = joined.join(part, true())
    compiled = _compile(conn, select(*(c for part in parts for c in part.c)).select_from(joined))
    cached = _PG_REPORTS[key] = (compiled, (recovered[1], acked[1]))
    return cached


def _aggregates_pg(conn: Connection, window: Window, envs: list[str], scope: Scope) -> Aggregates:
    """The whole report in one statement: each part a one-row CTE, cross-joined (a team's 30 days:
    nine round trips, and SQLAlchemy's work around each, were a third of the time)."""
    bounds = [(d, window.date_bounds(d)) for d in window.block_dates()] if window.days >= 7 else []
    rows = [(i, b[0], b[1]) for i, (_, b) in enumerate(bounds) if b is not None]
    ids = scope.service_ids
    compiled, (recovered, acked) = _pg_report(conn, len(envs), None if ids is None else len(ids), bool(rows))
    values = _placeholder_values(window, envs, scope)
    if rows:
        values.update(days_i=[r[0] for r in rows], days_lo=[r[1] for r in rows], days_hi=[r[2] for r in rows])
    (row,) = _run_compiled(conn, compiled, values)
    row = iter(row)
    counts, ever = (next(row), next(row), next(row)), next(row)
    valid_n, invalid_n = next(row), next(row)
    lead = (valid_n, invalid_n, [None if v is None else float(v) for v in (next(row), next(row))])
    unlinked = (next(row), next(row))
    restore_recovery = _read_durations(row, recovered)
    still_open = (next(row), UTCDateTime().process_result_value(next(row), conn.dialect))
    ack = _read_durations(row, acked)
    ever = counts[0] > 0 or ever
    dates = frozenset(bounds[i][0] for i in next(row) or ()) if rows and ever else frozenset()
    return _assembled(counts, ever, dates, lead, unlinked, restore_recovery, still_open, ack)
