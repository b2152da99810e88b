"""The PostgreSQL analogue of the floor: plain psycopg, no SQLAlchemy, for the same metrics.

PostgreSQL has ``percentile_cont``, so the fastest plain code is the same statements dora-bot
sends (the database does the work either way); what this measures is the engine's own overhead
on PostgreSQL. The numbers must equal dora-bot's (``run.py`` checks).

    python benchmarks/floor_pg.py postgresql://postgres@127.0.0.1:5432/bench --end 2026-11-01T00:00:00Z --days 30
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from benchlib import days_per_week, local_days

UTC = timezone.utc
PRODUCTION = ("production", "prod")


def connect(url: str):
    import psycopg

    return psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True)


def metrics(con, *, end: datetime, days: int, service: str | None = None, tz: str = "UTC", production=PRODUCTION) -> dict:
    zone = ZoneInfo(tz)
    start = end - timedelta(days=days)
    envs = list(production)
    cur = con.cursor()
    sid = None
    if service is not None:
        row = cur.execute("SELECT id FROM service WHERE key = %s", (service,)).fetchone()
        sid = row[0] if row else -1
    svc = "" if sid is None else " AND service_id = %(sid)s"
    p = {"envs": envs, "s": start, "e": end, "sid": sid}
    out: dict = {}
    qual = f"status = 'success' AND environment = ANY(%(envs)s){svc}"
    out["deploys"], out["failed"], out["rework"] = cur.execute(
        f"SELECT count(*), coalesce(sum(change_failure::int), 0), coalesce(sum(rework::int), 0) FROM deploy WHERE {qual}"
        " AND deployed_at >= %(s)s AND deployed_at < %(e)s", p).fetchone()
    dpw = None
    ever = out["deploys"] > 0 or cur.execute(f"SELECT 1 FROM deploy WHERE {qual} LIMIT 1", p).fetchone()
    if days >= 7 and ever:
        last, bounds = local_days(start, end, days, zone)
        rows = cur.execute(
            f"SELECT i FROM unnest(%(i)s::int[], %(lo)s::timestamptz[], %(hi)s::timestamptz[]) AS days(i, lo, hi)"
            f" WHERE EXISTS (SELECT 1 FROM deploy WHERE {qual} AND deployed_at >= days.lo AND deployed_at < days.hi)",
            {**p, "i": [b[0] for b in bounds], "lo": [b[1] for b in bounds], "hi": [b[2] for b in bounds]}).fetchall()
        hit = {last - timedelta(days=i) for (i,) in rows}
        dpw = days_per_week(last, hit, days)
    out["deploy_days_per_week"] = dpw
    lsvc = "" if sid is None else " AND service_id = %(sid)s"
    lw = f"FROM lead_sample WHERE deployed_at >= %(s)s AND deployed_at < %(e)s{lsvc}"
    out["lead_samples"], out["lead_invalid"] = cur.execute(
        f"SELECT count(*) FILTER (WHERE lead_seconds >= 0), count(*) FILTER (WHERE lead_seconds < 0) {lw}"
        " AND lead_seconds IS NOT NULL", p).fetchone()
    out["lead_median"], out["lead_p90"] = cur.execute(
        f"SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY lead_seconds), percentile_cont(0.9) WITHIN GROUP"
        f" (ORDER BY lead_seconds) {lw} AND lead_seconds >= 0", p).fetchone()
    iscope = f"environment = ANY(%(envs)s){svc} AND status IS NULL"
    out["unlinked"], out["not_change"] = cur.execute(
        "SELECT count(*) FILTER (WHERE NOT not_caused_by_change), count(*) FILTER (WHERE not_caused_by_change)"
        f" FROM incident WHERE {iscope} AND started_at >= %(s)s AND started_at < %(e)s"
        " AND caused_by_id IS NULL", p).fetchone()
    rscope = f"FROM incident WHERE {iscope} AND recovered_at >= %(s)s AND recovered_at < %(e)s"
    out["restore_n"], out["recovery_n"], out["restore_median"], out["restore_p90"], out["recovery_median"] = cur.execute(
        "SELECT count(*), count(caused_by_id), percentile_cont(0.5) WITHIN GROUP (ORDER BY restore_seconds),"
        " percentile_cont(0.9) WITHIN GROUP (ORDER BY restore_seconds),"
        " percentile_cont(0.5) WITHIN GROUP (ORDER BY recovery_seconds) FILTER (WHERE caused_by_id IS NOT NULL)"
        f" {rscope}", p).fetchone()
    out["open"], oldest = cur.execute(
        f"SELECT count(*), min(started_at) FROM incident WHERE {iscope} AND started_at < %(e)s"
        " AND (resolved_at IS NULL OR resolved_at >= %(e)s)", p).fetchone()
    out["oldest_open_seconds"] = None if oldest is None else (end - oldest).total_seconds()
    out["mtta_n"], out["mtta_median"] = cur.execute(
        f"SELECT count(*), percentile_cont(0.5) WITHIN GROUP (ORDER BY ack_seconds) FROM incident WHERE {iscope}"
        " AND acknowledged_at >= %(s)s AND acknowledged_at < %(e)s", p).fetchone()
    return {k: (float(v) if v is not None and k.endswith(("median", "p90")) else v) for k, v in out.items()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="plain psycopg metrics")
    ap.add_argument("url")
    ap.add_argument("--end", required=True)
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--service")
    args = ap.parse_args(argv)
    con = connect(args.url)
    t0 = time.perf_counter()
    result = metrics(con, end=datetime.fromisoformat(args.end.replace("Z", "+00:00")), days=args.days, service=args.service)
    result["seconds"] = round(time.perf_counter() - t0, 3)
    print(json.dumps(result, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
