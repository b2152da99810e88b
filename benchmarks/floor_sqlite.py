"""The floor: the fastest plain ``sqlite3`` (standard library only) code we could write for the
same work as ``dora-bot import`` and ``dora-bot metrics``.

It loads into an empty database that ``dora-bot db upgrade`` created (so the tables, keys and
indexes it has to maintain are exactly the product's; creating them is not timed, for either
side), with the same PRAGMAs the product uses (WAL, ``synchronous=NORMAL``, foreign keys on), in
one transaction, and stores the same facts: every deploy, commit, incident and
incident-timeline row, the per-(service, sha) lead-time sample at the first qualifying deploy, the
resolved ``rollback_of``/``caused_by`` links, the derived recovery instant, restore/ack/recovery
seconds, and the change-failure and rework flags. ``run.py`` compares the stored facts and the metric numbers with dora-bot's.

What it does *not* do, and so why it is a floor: no field-by-field validation (it trusts the
file: a bad line raises instead of being reported), no idempotency on ``id`` (it assumes a fresh
database), no ORM or driver abstraction: tuples straight into ``executemany`` with ids it assigns
itself, and a fast path for canonical ``YYYY-MM-DDTHH:MM:SSZ`` timestamps.

    DATABASE_URL=sqlite:///DB dora-bot db upgrade      # the schema, once
    python benchmarks/floor_sqlite.py load FILE DB
    python benchmarks/floor_sqlite.py metrics DB --end 2026-11-01T00:00:00Z --days 30 [--service S]
"""

from __future__ import annotations

import argparse
import json
import math
import sqlite3
import sys
import time
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from benchlib import days_per_week, local_days

UTC = timezone.utc
PRODUCTION = ("production", "prod")
PRODUCTION_SET_KEY = "lead_samples.production_environments"

def connect(path: str) -> sqlite3.Connection:
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=NORMAL")
    con.execute("PRAGMA foreign_keys=ON")
    return con


# --- load --------------------------------------------------------------------------------

CACHE_MB = 256

_fromiso = datetime.fromisoformat


_EPOCH = datetime(1970, 1, 1)
_MICRO = timedelta(microseconds=1)


def _ts(s: str) -> tuple[datetime, int]:
    """An ISO-8601 instant -> (naive UTC datetime, the stored integer microseconds since the epoch)."""
    d = _fromiso(s)
    if d.tzinfo is not None:
        d = d.astimezone(UTC).replace(tzinfo=None)
    return d, (d - _EPOCH) // _MICRO


def _text(v):
    if v is None:
        return None
    v = str(v).strip()
    return v or None


def load(src: str, db: str, *, production=PRODUCTION, now: datetime | None = None, batch: int = 20000,
         cache_mb: int = CACHE_MB) -> dict:
    """Load a JSON Lines file into a fresh database file; return row counts.

    ``cache_mb``: SQLite's page cache for the load (the default 2 MiB makes every insert into a
    big index a read from the OS); the fastest setting we measured.
    """
    now = now or datetime.now(UTC)
    now_s = _stored(now)
    prod = frozenset(production)
    con = connect(db)
    con.execute(f"PRAGMA cache_size=-{cache_mb * 1024}")
    if con.execute("SELECT count(*) FROM sqlite_master WHERE name='deploy'").fetchone()[0] == 0:
        raise SystemExit(f"{db}: no dora-bot schema; run `DATABASE_URL=sqlite:///{db} dora-bot db upgrade` first")
    con.execute("BEGIN IMMEDIATE")
    con.execute(
        "INSERT INTO app_meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value=excluded.value",
        (PRODUCTION_SET_KEY, json.dumps(sorted(prod))),
    )
    services = dict(con.execute("SELECT key, id FROM service"))
    next_deploy = con.execute("SELECT coalesce(max(id), 0) + 1 FROM deploy").fetchone()[0]
    next_commit = con.execute("SELECT coalesce(max(id), 0) + 1 FROM deploy_commit").fetchone()[0]
    next_incident = con.execute("SELECT coalesce(max(id), 0) + 1 FROM incident").fetchone()[0]
    next_event = con.execute("SELECT coalesce(max(id), 0) + 1 FROM incident_event").fetchone()[0]

    ins_deploy = (
        "INSERT INTO deploy (id, external_id, service_id, environment, version, deployed_at, status, marked_failed,"
        " change_failure, rework, url, note, source, created_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,'import',?)"
    )
    ins_commit = "INSERT INTO deploy_commit (id, deploy_id, sha, committed_at) VALUES (?,?,?,?)"
    ins_sample = (
        "INSERT INTO lead_sample (service_id, sha, deploy_id, deployed_at, committed_at, lead_seconds)"
        " VALUES (?,?,?,?,?,?) ON CONFLICT (service_id, sha) DO UPDATE SET deploy_id=excluded.deploy_id,"
        " deployed_at=excluded.deployed_at, committed_at=excluded.committed_at, lead_seconds=excluded.lead_seconds"
        " WHERE excluded.deployed_at < lead_sample.deployed_at"
    )
    ins_incident = (
        "INSERT INTO incident (id, external_id, service_id, environment, severity, title, started_at, declared_at,"
        " acknowledged_at, resolved_at, mitigated_at, recovered_at, status, not_caused_by_change, source,"
        " restore_seconds, ack_seconds, created_at)"
        " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,'import',?,?,?)"
    )
    ins_event = "INSERT INTO incident_event (id, incident_id, at, kind, text) VALUES (?,?,?,?,?)"

    deploys, commits, incidents, events = [], [], [], []
    samples: dict[tuple[int, str], tuple] = {}
    rollbacks: list[tuple[int, str]] = []  # (deploy id, referenced external id)
    causes: list[tuple[int, str]] = []  # (incident id, referenced external id)
    n = {"deploys": 0, "commits": 0, "incidents": 0, "events": 0, "lines": 0}

    def service_id(name: str) -> int:
        name = " ".join(name.split())
        key = "-".join(name.casefold().replace("-", " ").split())  # bot.core.inputs.service_key
        sid = services.get(key)
        if sid is None:
            sid = con.execute("INSERT INTO service (name, key, created_at) VALUES (?, ?, ?)", (name, key, now_s)).lastrowid
            services[key] = sid
        return sid

    def flush() -> None:
        con.executemany(ins_deploy, deploys)
        con.executemany(ins_commit, commits)
        con.executemany(ins_sample, samples.values())
        con.executemany(ins_incident, incidents)
        con.executemany(ins_event, events)
        n["deploys"] += len(deploys)
        n["commits"] += len(commits)
        n["incidents"] += len(incidents)
        n["events"] += len(events)
        deploys.clear(), commits.clear(), samples.clear(), incidents.clear(), events.clear()

    loads = json.loads
    with open(src, "rb") as f:
        for line in f:
            n["lines"] += 1
            o = loads(line)
            if o["type"] == "deploy":
                did = next_deploy
                next_deploy += 1
                sid = service_id(o["service"])
                env = o.get("environment")
                env = env.strip().lower() if env else "production"
                status = o.get("status") or "success"
                dt, dt_s = _ts(o["deployed_at"])
                qualifies = status == "success" and env in prod
                first_sha = None
                cs = o.get("commits")
                if cs:
                    seen = set()
                    for c in cs:
                        if isinstance(c, str):
                            sha, ca = c.strip().lower(), None
                        else:
                            sha, ca = c["sha"].strip().lower(), c.get("committed_at")
                        if sha in seen:
                            continue
                        seen.add(sha)
                        if first_sha is None:
                            first_sha = sha
                        if ca:
                            ct, ct_s = _ts(ca)
                            lead = (dt - ct).total_seconds()
                        else:
                            ct_s = lead = None
                        commits.append((next_commit, did, sha, ct_s))
                        next_commit += 1
                        if qualifies:
                            key = (sid, sha)
                            old = samples.get(key)
                            if old is None or (dt_s, did) < (old[3], old[2]):
                                samples[key] = (sid, sha, did, dt_s, ct_s, lead)
                version = _text(o.get("version")) or (first_sha[:12] if first_sha else "unversioned")
                cf = bool(o.get("change_failure"))
                ref = o.get("rollback_of")
                rework = ref is not None or o.get("fixes") is not None or bool(o.get("rework"))
                deploys.append((did, o["id"], sid, env, version, dt_s, status, cf, cf, rework, _text(o.get("url")),
                                _text(o.get("note")), now_s))
                if ref is not None:
                    rollbacks.append((did, str(ref).strip()))
            else:
                iid = next_incident
                next_incident += 1
                sname = o["service"].strip().lower()
                sid = service_id(sname)
                env = o.get("environment")
                env = env.strip().lower() if env else "production"
                sev = o.get("severity")
                sev = "sev3" if sev is None else str(sev).strip().lower()
                if sev.isdigit():
                    sev = "sev" + sev
                title = _text(o.get("title")) or f"Incident on {sname}"
                st, st_s = _ts(o["started_at"])
                ack = o.get("acknowledged_at")
                res = o.get("resolved_at")
                mit = o.get("mitigated_at")
                ack_s = ack_sec = res_s = res_sec = mit_s = None
                events.append((next_event, iid, st_s, "declared", f"{sev} {title} (imported)"))
                next_event += 1
                if ack:
                    at, ack_s = _ts(ack)
                    ack_sec = (at - st).total_seconds()
                    events.append((next_event, iid, ack_s, "acknowledged", None))
                    next_event += 1
                if mit:  # the recovery instant: mitigated, else resolved
                    mt, mit_s = _ts(mit)
                    res_sec = (mt - st).total_seconds()
                    events.append((next_event, iid, mit_s, "mitigated", None))
                    next_event += 1
                if res:
                    rt, res_s = _ts(res)
                    if not mit:
                        res_sec = (rt - st).total_seconds()
                    events.append((next_event, iid, res_s, "resolved", None))
                    next_event += 1
                cancelled = o.get("status") == "cancelled"
                if cancelled:
                    events.append((next_event, iid, now_s, "cancelled", None))
                    next_event += 1
                incidents.append((iid, o["id"], sid, env, sev, title, st_s, st_s, ack_s, res_s, mit_s, mit_s or res_s,
                                  "cancelled" if cancelled else None, bool(o.get("not_caused_by_change")), res_sec, ack_sec, now_s))
                ref = o.get("caused_by")
                if ref is not None:
                    causes.append((iid, str(ref).strip()))
            if len(deploys) >= batch or len(incidents) >= batch:
                flush()
    flush()
    # Links between lines: resolve, check (exists, same service, a rollback reverts an earlier
    # deploy), write, and derive the recovery time and the change-failure flags.
    find = "SELECT id, service_id, deployed_at FROM deploy WHERE external_id = ?"
    failed: set[int] = set()
    rb_rows = []
    for did, ref in rollbacks:
        own_sid, own_at, own_status = con.execute("SELECT service_id, deployed_at, status FROM deploy WHERE id = ?", (did,)).fetchone()
        target = con.execute(find, (ref,)).fetchone()
        if target is None or target[1] != own_sid or target[2] > own_at:
            raise ValueError(f"rollback_of `{ref}`: missing, another service's, or later")
        rb_rows.append((target[0], did))
        if own_status == "success":
            failed.add(target[0])
    con.executemany("UPDATE deploy SET rollback_of_id = ? WHERE id = ?", rb_rows)
    inc_rows = []
    for iid, ref in causes:
        own_sid, st_s, rec_s, status = con.execute(
            "SELECT service_id, started_at, recovered_at, status FROM incident WHERE id = ?", (iid,)).fetchone()
        target = con.execute(find, (ref,)).fetchone()
        if target is None or target[1] != own_sid:
            raise ValueError(f"caused_by `{ref}`: missing or another service's")
        recovery = None
        if rec_s is not None:
            recovery = (rec_s - min(target[2], st_s)) / 1e6
        inc_rows.append((target[0], recovery, iid))
        if status is None:  # a cancelled incident makes no change failure
            failed.add(target[0])
    con.executemany("UPDATE incident SET caused_by_id = ?, recovery_seconds = ? WHERE id = ?", inc_rows)
    con.executemany("UPDATE deploy SET change_failure = 1 WHERE id = ? AND change_failure = 0", [(i,) for i in sorted(failed)])
    con.execute("COMMIT")
    n["lead_samples"] = con.execute("SELECT count(*) FROM lead_sample").fetchone()[0]
    con.close()
    return n


# --- metrics -----------------------------------------------------------------------------
#
# The same numbers as `dora-bot metrics`, from the same tables, as fast as plain code gets them.
# Percentiles two ways (run.py times both and keeps the faster, per scope):
#   "python": fetch the window's values and sort them in Python (SQLite's own sort is ~3x slower
#             than Python's on floats);
#   "sql":    the walks along the lead-time index that dora-bot uses on SQLite (from the nearer
#             end for long windows, from sampled pivots otherwise), hand-written; incidents, which
#             are few, are still sorted in Python.

PIVOT_MIN, PIVOT_SAMPLE, WALK_SHARE = 8192, 4096, 6  # as bot/store/metrics_sql.py


def _positions(n: int, p: float) -> tuple[int, int, float]:
    h = (n - 1) * p
    return math.floor(h), math.ceil(h), h - math.floor(h)


def _interpolate(values_sorted: list, n: int, p: float) -> float:
    lo, hi, w = _positions(n, p)
    return values_sorted[lo] + w * (values_sorted[hi] - values_sorted[lo])


def _python_pct(con, query: str, args: tuple, ps) -> tuple[int, list]:
    values = [v for (v,) in con.execute(query, args)]
    values.sort()
    n = len(values)
    return n, [None if n == 0 else _interpolate(values, n, p) for p in ps]


def _stored(d: datetime) -> int:
    return (d.astimezone(UTC).replace(tzinfo=None) - _EPOCH) // _MICRO


class _Lead:
    """Lead-time counts and percentiles for one scope, plain sqlite3."""

    def __init__(self, con, s: str, e: str, sid: int | None, start: datetime, end: datetime):
        self.con, self.start, self.end = con, start, end
        own = "" if sid is None else "service_id = ? AND "
        self.w = f"{own}deployed_at >= ? AND deployed_at < ?"
        self.a = (s, e) if sid is None else (sid, s, e)
        self.sid = sid
        self.by_date = "ix_lead_sample_window" if sid is None else "ix_lead_sample_service_window"
        self.by_lead = "ix_lead_sample_lead" if sid is None else "ix_lead_sample_service_lead"

    def one(self, sql: str, args: tuple = ()):
        return self.con.execute(sql, args).fetchone()

    def counts(self) -> tuple[int, int]:
        total = self.one(f"SELECT count(*) FROM lead_sample INDEXED BY {self.by_date} WHERE {self.w}", self.a)[0]
        unknown = self.one(
            f"SELECT count(*) FROM lead_sample INDEXED BY {self.by_lead} WHERE lead_seconds IS NULL AND {self.w}", self.a
        )[0]
        invalid = self.one(
            f"SELECT count(*) FROM lead_sample INDEXED BY {self.by_lead} WHERE lead_seconds < 0 AND {self.w}", self.a
        )[0]
        return total - unknown - invalid, invalid

    def python(self, ps) -> list:
        return _python_pct(
            self.con, f"SELECT lead_seconds FROM lead_sample INDEXED BY {self.by_date} WHERE lead_seconds >= 0 AND {self.w}",
            self.a, ps,
        )[1]

    def sql(self, n: int, ps) -> list:
        if n == 0:
            return [None for _ in ps]
        if n < PIVOT_MIN:
            return self.python(ps)
        own = "" if self.sid is None else "WHERE service_id = ?"
        oa = () if self.sid is None else (self.sid,)
        first = self.one(f"SELECT min(deployed_at) FROM lead_sample INDEXED BY {self.by_date} {own}", oa)[0]
        last = self.one(f"SELECT max(deployed_at) FROM lead_sample INDEXED BY {self.by_date} {own}", oa)[0]
        first = (_EPOCH + first * _MICRO).replace(tzinfo=UTC)
        last = (_EPOCH + last * _MICRO).replace(tzinfo=UTC)
        covered = (min(self.end, last) - max(self.start, first)).total_seconds()
        if covered * WALK_SHARE >= (last - first).total_seconds():
            return [self.walk(n, p, None, 0) for p in ps]
        m = max(2, n // PIVOT_SAMPLE)
        ranks = []
        for p in ps:
            lo, hi, _ = _positions(n, p)
            margin = 3 * math.sqrt(n / m * p * (1 - p)) + 2
            ranks.append(max(0, math.floor(lo / m - margin)) if p <= 0.5 else math.ceil(hi / m + margin))
        sample = dict(self.con.execute(
            "SELECT rn, v FROM (SELECT v, row_number() OVER (ORDER BY v) - 1 AS rn FROM ("
            f"SELECT lead_seconds AS v FROM lead_sample INDEXED BY {self.by_date} WHERE lead_seconds >= 0 AND {self.w}"
            f" AND rowid % ? = 0)) WHERE rn IN ({','.join('?' * len(ranks))})",
            (*self.a, m, *ranks),
        ))
        pivots = {i: sample[r] for i, r in enumerate(ranks) if r in sample}
        past = {}
        if pivots:
            cols = ", ".join(f"count(*) FILTER (WHERE lead_seconds {'<' if ps[i] <= 0.5 else '>'} ?)" for i in pivots)
            row = self.one(
                f"SELECT {cols} FROM lead_sample INDEXED BY {self.by_date} WHERE lead_seconds >= 0 AND {self.w}",
                (*pivots.values(), *self.a),
            )
            past = dict(zip(pivots, row, strict=True))
        out = []
        for i, p in enumerate(ps):
            if i not in pivots:
                out.append(self.walk(n, p, None, 0))
                continue
            lo, hi, _ = _positions(n, p)
            if past[i] > (lo if p <= 0.5 else n - 1 - hi):
                return self.python(ps)
            out.append(self.walk(n, p, pivots[i], past[i]))
        return out

    def walk(self, n: int, p: float, pivot, beyond: int) -> float:
        lo, hi, w = _positions(n, p)
        up = p <= 0.5
        if up:
            bound, pa, offset = ("lead_seconds >= 0", (), lo - beyond) if pivot is None else ("lead_seconds >= ?", (pivot,), lo - beyond)
        else:
            bound = "lead_seconds >= 0" if pivot is None else "lead_seconds >= 0 AND lead_seconds <= ?"
            pa, offset = (() if pivot is None else (pivot,)), n - 1 - hi - beyond
        rows = [v for (v,) in self.con.execute(
            f"SELECT lead_seconds FROM lead_sample INDEXED BY {self.by_lead} WHERE {bound} AND {self.w}"
            f" ORDER BY lead_seconds {'ASC' if up else 'DESC'} LIMIT ? OFFSET ?",
            (*pa, *self.a, hi - lo + 1, offset),
        )]
        if not up:
            rows.reverse()
        return rows[0] + w * (rows[-1] - rows[0])


def metrics(con: sqlite3.Connection, *, end: datetime, days: int, service: str | None = None,
            tz: str = "UTC", production=PRODUCTION, lead: str = "sql") -> dict:
    """The key numbers of `dora-bot metrics --json` for one scope; ``lead``: "sql" or "python"."""
    zone = ZoneInfo(tz)
    start = end - timedelta(days=days)
    s, e = _stored(start), _stored(end)
    envs = tuple(production)
    env_in = ",".join("?" * len(envs))
    sid = None
    if service is not None:
        row = con.execute("SELECT id FROM service WHERE key = ?", (service,)).fetchone()
        sid = row[0] if row else -1
    svc = "" if sid is None else " AND service_id = ?"
    sa = () if sid is None else (sid,)
    out: dict = {}

    qual = f"status = 'success' AND environment IN ({env_in}){svc}"
    deploys, failed, rework = con.execute(
        f"SELECT count(*), coalesce(sum(change_failure), 0), coalesce(sum(rework), 0) FROM deploy WHERE {qual}"
        " AND deployed_at >= ? AND deployed_at < ?",
        (*envs, *sa, s, e),
    ).fetchone()
    out["deploys"], out["failed"], out["rework"] = deploys, failed, rework

    # deploy days: one indexed probe per local date of the blocks, all in one statement
    dpw = None
    ever = deploys > 0 or con.execute(f"SELECT 1 FROM deploy WHERE {qual} LIMIT 1", (*envs, *sa)).fetchone()
    if days >= 7 and ever:
        last, local = local_days(start, end, days, zone)
        bounds = [(i, _stored(lo), _stored(hi)) for i, lo, hi in local]
        hit: set[date] = set()
        for chunk in range(0, len(bounds), 300):
            part = bounds[chunk:chunk + 300]
            vals = ", ".join("(?, ?, ?)" for _ in part)
            rows = con.execute(
                f"WITH days(i, lo, hi) AS (VALUES {vals}) SELECT i FROM days WHERE EXISTS ("
                f"SELECT 1 FROM deploy WHERE {qual} AND deployed_at >= days.lo AND deployed_at < days.hi)",
                (*[x for b in part for x in b], *envs, *sa),
            )
            hit.update(last - timedelta(days=i) for (i,) in rows)
        dpw = days_per_week(last, hit, days)
    out["deploy_days_per_week"] = dpw

    # lead time
    lt = _Lead(con, s, e, sid, start, end)
    valid, invalid = lt.counts()
    out["lead_samples"], out["lead_invalid"] = valid, invalid
    out["lead_median"], out["lead_p90"] = lt.sql(valid, (0.5, 0.9)) if lead == "sql" else (
        lt.python((0.5, 0.9)) if valid else [None, None])

    # incidents in scope (few: their percentiles are fetched and sorted in Python)
    iscope = f"environment IN ({env_in}){svc} AND status IS NULL"
    ia = (*envs, *sa)
    out["unlinked"], out["not_change"] = con.execute(
        "SELECT count(*) FILTER (WHERE NOT not_caused_by_change), count(*) FILTER (WHERE not_caused_by_change)"
        f" FROM incident WHERE {iscope} AND started_at >= ? AND started_at < ? AND +caused_by_id IS NULL",
        (*ia, s, e),
    ).fetchone()
    rscope = f"FROM incident WHERE {iscope} AND recovered_at >= ? AND recovered_at < ?"
    ra = (*ia, s, e)
    out["restore_n"], (out["restore_median"], out["restore_p90"]) = _python_pct(
        con, f"SELECT restore_seconds {rscope}", ra, (0.5, 0.9))
    out["recovery_n"], (out["recovery_median"],) = _python_pct(
        con, f"SELECT recovery_seconds {rscope} AND caused_by_id IS NOT NULL", ra, (0.5,))
    open_n, oldest = con.execute(
        f"SELECT count(*), min(started_at) FROM (SELECT started_at FROM incident WHERE {iscope} AND resolved_at IS NULL"
        f" AND started_at < ? UNION ALL SELECT started_at FROM incident INDEXED BY ix_incident_resolved WHERE {iscope}"
        " AND resolved_at >= ? AND started_at < ?)",
        (*ia, e, *ia, e, e),
    ).fetchone()
    out["open"] = open_n
    out["oldest_open_seconds"] = None if oldest is None else (_stored(end) - oldest) / 1e6
    out["mtta_n"], (out["mtta_median"],) = _python_pct(
        con, f"SELECT ack_seconds FROM incident WHERE {iscope} AND acknowledged_at >= ? AND acknowledged_at < ?", ra, (0.5,))
    return out


def engine_numbers(report: dict) -> dict:
    """The same key numbers picked out of a `dora-bot metrics --json` report."""
    df, lt, cfr = report["deployment_frequency"], report["lead_time"], report["change_failure_rate"]
    ttr, fdrt, mtta = report["time_to_restore"], report["failed_deployment_recovery_time"], report["mtta"]
    return {
        "deploys": df["deploys"], "failed": cfr["failed"], "deploy_days_per_week": df["deploy_days_per_week"],
        "rework": report["deployment_rework_rate"]["rework"], "not_change": cfr["not_change_incidents"],
        "lead_samples": lt["samples"], "lead_invalid": lt["invalid_samples"],
        "lead_median": lt["median_seconds"], "lead_p90": lt["p90_seconds"],
        "unlinked": cfr["unlinked_incidents"], "restore_n": ttr["incidents"], "recovery_n": fdrt["incidents"],
        "restore_median": ttr["median_seconds"], "restore_p90": ttr["p90_seconds"],
        "recovery_median": fdrt["median_seconds"], "open": ttr["open_incidents"],
        "oldest_open_seconds": ttr["oldest_open_seconds"], "mtta_n": mtta["incidents"], "mtta_median": mtta["median_seconds"],
    }


def rounded(numbers: dict) -> dict:
    """Round durations the way the report does (3 decimals) so the two can be compared."""
    return {k: (round(float(v), 3) if isinstance(v, float) else v) for k, v in numbers.items()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="plain sqlite3 floor")
    sub = ap.add_subparsers(dest="cmd", required=True)
    ld = sub.add_parser("load")
    ld.add_argument("file")
    ld.add_argument("db")
    ld.add_argument("--cache-mb", type=int, default=CACHE_MB)
    mt = sub.add_parser("metrics")
    mt.add_argument("db")
    mt.add_argument("--end", required=True)
    mt.add_argument("--days", type=int, default=30)
    mt.add_argument("--service")
    mt.add_argument("--lead", choices=("sql", "python"), default="sql")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    if args.cmd == "load":
        result = load(args.file, args.db, cache_mb=args.cache_mb)
    else:
        con = sqlite3.connect(args.db)
        result = metrics(con, end=_fromiso(args.end.replace("Z", "+00:00")), days=args.days, service=args.service,
                         lead=args.lead)
    result["seconds"] = round(time.perf_counter() - t0, 3)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
