"""A team's metrics against the same queries written by hand for the union of its services.

    python benchmarks/team_bench.py                                  # 1,000,000 deploys, SQLite and PostgreSQL
    python benchmarks/team_bench.py --deploys 20000 --db sqlite      # a quick check that it works
    python benchmarks/team_bench.py --store benchmarks/data/work/dora-bot.db --db sqlite   # reuse run.py's store

The history is ``generate.py``'s (eight services). Two teams are set on the store: ``commerce``
(checkout, web, payments: about half the deploys) and ``platform`` (auth, search: a fifth).
For each team and window (30, 90 and 730 days to the history's end), dora-bot's ``build_metrics``
(``team=``: one Scope, the same SQL as a service's or the org's) is timed in-process, best of
``--runs`` (the two sides interleaved), against the plain driver code below: the statements one would write by hand for
``service_id IN (<the team's services>)`` (counts in SQL, the deploy-day probes, lead-time
percentiles by the database (PostgreSQL ``percentile_cont``; SQLite: the faster of sorting in
SQL and sorting the fetched values in Python), incident percentiles in Python). Their numbers
must be equal, or the run stops. Target: dora-bot within 1.5x of the hand-written queries.
Results go to benchmarks/TEAM_RESULTS.md (``--out``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))

import generate  # noqa: E402
from benchlib import days_per_week, dora_bot_exe, ensure_history, local_days, machine, migrate, pg_connect, pg_recreate  # noqa: E402

END = generate.END
PRODUCTION = ("production", "prod")
TEAMS = {"commerce": ("checkout", "web", "payments"), "platform": ("auth", "search")}
WINDOWS = (30, 90, 730)
TARGET = 1.5
READING = "\n## Reading"


def _pct(values: list[float], p: float) -> float | None:
    if not values:
        return None
    h = (len(values) - 1) * p
    lo = int(h)
    hi = min(lo + 1, len(values) - 1)
    return float(values[lo] + (h - lo) * (values[hi] - values[lo]))


def _stored(d: datetime) -> int:
    """An instant as SQLite's instant columns hold it: integer microseconds since the epoch."""
    return (d.astimezone(UTC) - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)


# --- by hand: SQLite --------------------------------------------------------------------------

def by_hand_sqlite(con: sqlite3.Connection, ids: list[int], *, end: datetime, days: int, lead_way: str) -> dict:
    start = end - timedelta(days=days)
    s, e = _stored(start), _stored(end)
    own = f"service_id IN ({','.join('?' * len(ids))})"
    envs = f"environment IN ({','.join('?' * len(PRODUCTION))})"
    qual, qa = f"status = 'success' AND {envs} AND {own}", (*PRODUCTION, *ids)
    out = {}
    out["deploys"], out["failed"], out["rework"] = con.execute(
        f"SELECT count(*), coalesce(sum(change_failure), 0), coalesce(sum(rework), 0) FROM deploy WHERE {qual}"
        " AND deployed_at >= ? AND deployed_at < ?", (*qa, s, e)).fetchone()
    last, bounds = local_days(start, end, days, ZoneInfo("UTC"))
    hit = set()
    for lo in range(0, len(bounds), 300):
        part = bounds[lo:lo + 300]
        values = ", ".join("(?, ?, ?)" for _ in part)
        rows = con.execute(
            f"WITH d(i, lo, hi) AS (VALUES {values}) SELECT i FROM d WHERE EXISTS"
            f" (SELECT 1 FROM deploy WHERE {qual} AND deployed_at >= d.lo AND deployed_at < d.hi)",
            (*[x for i, a, b in part for x in (i, _stored(a), _stored(b))], *qa))
        hit.update(last - timedelta(days=i) for (i,) in rows)
    out["deploy_days_per_week"] = days_per_week(last, hit, days) if days >= 7 else None
    lw, la = f"FROM lead_sample WHERE {own} AND deployed_at >= ? AND deployed_at < ?", (*ids, s, e)
    out["lead_samples"], out["lead_invalid"] = con.execute(
        f"SELECT count(*) FILTER (WHERE lead_seconds >= 0), count(*) FILTER (WHERE lead_seconds < 0) {lw}", la).fetchone()
    n = out["lead_samples"]
    if lead_way == "python":
        values = sorted(v for (v,) in con.execute(f"SELECT lead_seconds {lw} AND lead_seconds >= 0", la))
        out["lead_median"], out["lead_p90"] = _pct(values, 0.5), _pct(values, 0.9)
    else:  # the database sorts; the two ranks each percentile interpolates are fetched
        found = []
        for p in (0.5, 0.9):
            h = (n - 1) * p
            rows = [v for (v,) in con.execute(
                f"SELECT lead_seconds {lw} AND lead_seconds >= 0 ORDER BY lead_seconds LIMIT 2 OFFSET ?", (*la, int(h)))] if n else []
            found.append(None if not rows else rows[0] + (h - int(h)) * ((rows[1] if len(rows) > 1 else rows[0]) - rows[0]))
        out["lead_median"], out["lead_p90"] = found
    scope, sa = f"{envs} AND {own} AND status IS NULL", (*PRODUCTION, *ids)
    out["unlinked"], out["not_change"] = con.execute(
        "SELECT count(*) FILTER (WHERE NOT not_caused_by_change), count(*) FILTER (WHERE not_caused_by_change)"
        f" FROM incident WHERE {scope} AND started_at >= ? AND started_at < ? AND +caused_by_id IS NULL", (*sa, s, e)).fetchone()
    rec = con.execute(f"SELECT restore_seconds, recovery_seconds, caused_by_id FROM incident WHERE {scope}"
                      " AND recovered_at >= ? AND recovered_at < ?", (*sa, s, e)).fetchall()
    restore = sorted(r for r, _, _ in rec)
    recovery = sorted(r for _, r, c in rec if c is not None)
    out["restore_n"], out["restore_median"], out["restore_p90"] = len(restore), _pct(restore, 0.5), _pct(restore, 0.9)
    out["recovery_n"], out["recovery_median"] = len(recovery), _pct(recovery, 0.5)
    out["open"] = con.execute(f"SELECT count(*) FROM incident WHERE {scope} AND started_at < ?"
                              " AND (resolved_at IS NULL OR resolved_at >= ?)", (*sa, e, e)).fetchone()[0]
    acks = sorted(v for (v,) in con.execute(f"SELECT ack_seconds FROM incident WHERE {scope}"
                                             " AND acknowledged_at >= ? AND acknowledged_at < ?", (*sa, s, e)))
    out["mtta_n"], out["mtta_median"] = len(acks), _pct(acks, 0.5)
    return out


# --- by hand: PostgreSQL ----------------------------------------------------------------------

def by_hand_pg(con, ids: list[int], *, end: datetime, days: int, lead_way: str = "sql") -> dict:
    start = end - timedelta(days=days)
    p = {"ids": ids, "envs": list(PRODUCTION), "s": start, "e": end}
    cur = con.cursor()
    qual = "status = 'success' AND environment = ANY(%(envs)s) AND service_id = ANY(%(ids)s)"
    out = {}
    out["deploys"], out["failed"], out["rework"] = cur.execute(
        f"SELECT count(*), coalesce(sum(change_failure::int), 0), coalesce(sum(rework::int), 0) FROM deploy WHERE {qual}"
        " AND deployed_at >= %(s)s AND deployed_at < %(e)s", p).fetchone()
    last, bounds = local_days(start, end, days, ZoneInfo("UTC"))
    rows = cur.execute(
        "SELECT i FROM unnest(%(i)s::int[], %(lo)s::timestamptz[], %(hi)s::timestamptz[]) AS d(i, lo, hi) WHERE EXISTS"
        f" (SELECT 1 FROM deploy WHERE {qual} AND deployed_at >= d.lo AND deployed_at < d.hi)",
        {**p, "i": [b[0] for b in bounds], "lo": [b[1] for b in bounds], "hi": [b[2] for b in bounds]}).fetchall()
    out["deploy_days_per_week"] = days_per_week(last, {last - timedelta(days=i) for (i,) in rows}, days) if days >= 7 else None
    lw = "FROM lead_sample WHERE service_id = ANY(%(ids)s) AND deployed_at >= %(s)s AND deployed_at < %(e)s"
    out["lead_samples"], out["lead_invalid"], out["lead_median"], out["lead_p90"] = cur.execute(
        "SELECT count(*) FILTER (WHERE lead_seconds >= 0), count(*) FILTER (WHERE lead_seconds < 0),"
        " percentile_cont(0.5) WITHIN GROUP (ORDER BY lead_seconds) FILTER (WHERE lead_seconds >= 0),"
        f" percentile_cont(0.9) WITHIN GROUP (ORDER BY lead_seconds) FILTER (WHERE lead_seconds >= 0) {lw}", p).fetchone()
    scope = "environment = ANY(%(envs)s) AND service_id = ANY(%(ids)s) AND status IS NULL"
    out["unlinked"], out["not_change"] = cur.execute(
        "SELECT count(*) FILTER (WHERE NOT not_caused_by_change), count(*) FILTER (WHERE not_caused_by_change)"
        f" FROM incident WHERE {scope} AND started_at >= %(s)s AND started_at < %(e)s AND caused_by_id IS NULL", p).fetchone()
    (out["restore_n"], out["recovery_n"], out["restore_median"], out["restore_p90"], out["recovery_median"]) = cur.execute(
        "SELECT count(*), count(caused_by_id), percentile_cont(0.5) WITHIN GROUP (ORDER BY restore_seconds),"
        " percentile_cont(0.9) WITHIN GROUP (ORDER BY restore_seconds),"
        " percentile_cont(0.5) WITHIN GROUP (ORDER BY recovery_seconds) FILTER (WHERE caused_by_id IS NOT NULL)"
        f" FROM incident WHERE {scope} AND recovered_at >= %(s)s AND recovered_at < %(e)s", p).fetchone()
    out["open"] = cur.execute(f"SELECT count(*) FROM incident WHERE {scope} AND started_at < %(e)s"
                              " AND (resolved_at IS NULL OR resolved_at >= %(e)s)", p).fetchone()[0]
    out["mtta_n"], out["mtta_median"] = cur.execute(
        f"SELECT count(*), percentile_cont(0.5) WITHIN GROUP (ORDER BY ack_seconds) FROM incident WHERE {scope}"
        " AND acknowledged_at >= %(s)s AND acknowledged_at < %(e)s", p).fetchone()
    return out


# --- dora-bot ---------------------------------------------------------------------------------

def numbers(report: dict) -> dict:
    df, lt, cfr = report["deployment_frequency"], report["lead_time"], report["change_failure_rate"]
    ttr, fdrt, mtta = report["time_to_restore"], report["failed_deployment_recovery_time"], report["mtta"]
    return {
        "deploys": df["deploys"], "failed": cfr["failed"], "rework": report["deployment_rework_rate"]["rework"],
        "deploy_days_per_week": df["deploy_days_per_week"], "lead_samples": lt["samples"], "lead_invalid": lt["invalid_samples"],
        "lead_median": lt["median_seconds"], "lead_p90": lt["p90_seconds"], "unlinked": cfr["unlinked_incidents"],
        "not_change": cfr["not_change_incidents"], "restore_n": ttr["incidents"], "restore_median": ttr["median_seconds"],
        "restore_p90": ttr["p90_seconds"], "recovery_n": fdrt["incidents"], "recovery_median": fdrt["median_seconds"],
        "open": ttr["open_incidents"], "mtta_n": mtta["incidents"], "mtta_median": mtta["median_seconds"],
    }


def rounded(d: dict) -> dict:
    return {k: (round(float(v), 3) if isinstance(v, float) else v) for k, v in d.items()}


def set_teams(url: str) -> dict[str, list[int]]:
    """The two teams on the store (idempotent); team -> its service ids."""
    from sqlmodel import select

    from bot.services.teams import set_team
    from bot.store.db import make_engine, session_scope
    from bot.store.models import Service

    engine = make_engine(url)
    out = {}
    with session_scope(engine) as session:
        for team, services in TEAMS.items():
            set_team(session, team=team, services=services, now=END)
        session.flush()
        for team, services in TEAMS.items():
            out[team] = sorted(session.exec(select(Service.id).where(Service.key.in_(services))).all())
    engine.dispose()
    return out


def measure(url: str, runs: int) -> list[dict]:
    from bot.services.metrics import build_metrics
    from bot.store.db import make_engine, session_scope

    ids = set_teams(url)
    engine = make_engine(url)
    pg = url.startswith("postgresql")
    hand_con = pg_connect(url) if pg else sqlite3.connect(url.removeprefix("sqlite:///"))
    rows = []
    for team in TEAMS:
        for days in WINDOWS:
            # Interleaved (dora-bot, then each hand-written way, then again), so that both sides of
            # a ratio meet the same machine (other jobs, the OS page cache). Each side keeps its own
            # connection, and with it SQLite's page cache, as it would serving these reports.
            best, one, report = float("inf"), float("inf"), None
            hand, ways = {}, {way: float("inf") for way in (("sql",) if pg else ("sql", "python"))}
            fn = by_hand_pg if pg else by_hand_sqlite
            for _ in range(runs):
                t0 = time.perf_counter()
                with session_scope(engine, write=False) as session:
                    report = build_metrics(session, team=team, days=days, end=END, timezone_name="UTC",
                                           production_environments=PRODUCTION)
                best = min(best, time.perf_counter() - t0)
                for way in ways:
                    t0 = time.perf_counter()
                    hand[way] = fn(hand_con, ids[team], end=END, days=days, lead_way=way)
                    ways[way] = min(ways[way], time.perf_counter() - t0)
            for _ in range(runs):  # the team's first service alone: does a team answer like a service?
                t0 = time.perf_counter()
                with session_scope(engine, write=False) as session:
                    build_metrics(session, service=TEAMS[team][0], days=days, end=END, timezone_name="UTC",
                                  production_environments=PRODUCTION)
                one = min(one, time.perf_counter() - t0)
            way = min(ways, key=ways.get)
            got, want = rounded(numbers(report)), rounded(hand[way])
            if got != want:
                diff = {k: (got[k], want[k]) for k in got if got[k] != want.get(k)}
                raise SystemExit(f"{team}/{days}d: dora-bot and the hand-written queries disagree: {diff}")
            rows.append({"team": team, "services": len(ids[team]), "days": days, "engine": best, "hand": ways[way], "one": one,
                         "hand_way": way, "deploys": got["deploys"], "lead_samples": got["lead_samples"]})
            print(f"  {team} / {days} d: dora-bot {best * 1000:.1f} ms, by hand {ways[way] * 1000:.1f} ms ({way})"
                  f" -> {best / ways[way]:.2f}x", flush=True)
    hand_con.close()
    engine.dispose()
    return rows


def prepare_sqlite(args) -> str:
    if args.store:
        return f"sqlite:///{args.store}"
    work = HERE / "data" / "team"
    work.mkdir(parents=True, exist_ok=True)
    db = work / f"team-{args.deploys}.db"
    if not db.exists() or not args.skip_import:
        for p in work.glob(f"team-{args.deploys}.db*"):
            p.unlink()
        history = ensure_history(args.deploys)
        tmp = work / "template.db"
        tmp.unlink(missing_ok=True)
        migrate(f"sqlite:///{tmp}")
        shutil.move(tmp, db)
        print(f"sqlite: importing {history.name} ...", flush=True)
        _import(history, f"sqlite:///{db}")
    return f"sqlite:///{db}"


def prepare_pg(args) -> str:
    url = args.pg_url
    if not args.skip_import:
        pg_recreate(url)
        migrate(url)
        history = ensure_history(args.deploys)
        print(f"postgresql: importing {history.name} ...", flush=True)
        _import(history, url)
        with pg_connect(url, autocommit=True) as con:
            con.execute("VACUUM ANALYZE")
    return url


def _import(history: Path, url: str) -> None:
    r = subprocess.run([dora_bot_exe(), "import", "--quiet", str(history)], env={**os.environ, "DATABASE_URL": url},
                       cwd=ROOT, capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"dora-bot import failed:\n{r.stderr[-3000:]}")


def _machine(m: dict) -> str:
    return f"{m['cpus']} CPUs {m['arch']}, Python {m['python']}, SQLite {m['sqlite']}, load average {m['load_start']:.1f} at the start"


def render(results: dict) -> str:
    lines = [
        "# A team's metrics vs the same queries written by hand", "",
        f"`python benchmarks/team_bench.py --deploys {results['deploys']} --db {results['db']}`"
        f" on {_machine(results['machine'])}, {results['at']}. Target: dora-bot within {TARGET}x of the hand-written"
        " queries for the union of the team's services (best of the runs each).", "",
    ]
    for db, rows in results["dbs"].items():
        lines += [f"## {db}", "",
                  "| team | services | window | deploys | lead samples | dora-bot | by hand | ratio | its first service alone |",
                  "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
        for r in rows:
            ratio = r["engine"] / r["hand"]
            lines.append(f"| {r['team']} | {r['services']} | {r['days']} d | {r['deploys']:,} | {r['lead_samples']:,} |"
                         f" {r['engine'] * 1000:.1f} ms | {r['hand'] * 1000:.1f} ms ({r['hand_way']}) |"
                         f" {ratio:.2f}x {'ok' if ratio <= TARGET else 'MISSED'} | {r['one'] * 1000:.1f} ms |")
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--deploys", type=int, default=1_000_000)
    ap.add_argument("--db", choices=("sqlite", "postgresql", "both"), default="both")
    ap.add_argument("--store", type=Path, help="an imported SQLite store to use as it is (e.g. run.py's)")
    ap.add_argument("--pg-url", default=os.environ.get("BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/bench_team"))
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--skip-import", action="store_true", help="reuse the stores of the previous run")
    ap.add_argument("--out", type=Path, default=HERE / "TEAM_RESULTS.md")
    args = ap.parse_args(argv)
    results = {"deploys": args.deploys, "db": args.db, "machine": machine(), "dbs": {},
               "at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")}
    if args.db in ("sqlite", "both"):
        url = prepare_sqlite(args)
        print("sqlite: metrics ...", flush=True)
        results["dbs"]["SQLite"] = measure(url, args.runs)
    if args.db in ("postgresql", "both"):
        url = prepare_pg(args)
        print("postgresql: metrics ...", flush=True)
        results["dbs"]["PostgreSQL"] = measure(url, args.runs)
    text = render(results)
    # The hand-written reading of the figures (from "## Reading" on) is kept across runs.
    kept = args.out.read_text().partition(READING)[2] if args.out.exists() else ""
    args.out.write_text(text + "\n" + (READING + kept if kept else ""))
    (HERE / "data").mkdir(exist_ok=True)
    (HERE / "data" / "team_results.json").write_text(json.dumps(results, indent=2))
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
