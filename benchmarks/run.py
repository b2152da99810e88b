"""The import and metrics benchmark: dora-bot against the fastest plain code we could write.

    python benchmarks/run.py                          # 1,000,000 deploys, SQLite and PostgreSQL
    python benchmarks/run.py --deploys 100000 --db sqlite

Steps (everything it creates lives in benchmarks/data/, which git ignores):

1. ``generate.py`` writes the JSON Lines history if it is not there yet (seeded: same bytes
   every time).
2. Import, each as its own process, timed from outside (wall clock, CPU, peak RSS of that
   process): ``dora-bot import`` into a fresh SQLite file and into a fresh PostgreSQL database,
   and ``floor_sqlite.py load`` into a fresh SQLite file. The schemas are created beforehand
   by ``dora-bot db upgrade`` (not timed, for either side). The two SQLite files are then
   compared row for row (``compare.py``): the floor must have stored the same facts.
3. Metrics for three scopes (all services / 30 days, one service / 90 days, all services / 730
   days, ending at the history's end): dora-bot's ``build_metrics`` called in-process, best of
   ``--runs``; the floor (``floor_sqlite.metrics``; on PostgreSQL ``floor_pg.metrics``), best of
   ``--runs`` and, on SQLite, of its two ways to take percentiles; and the ``dora-bot metrics
   --json`` command as a process (wall time and peak RSS). The key numbers of all of them must be
   equal, or the run stops.
4. Writes benchmarks/RESULTS.md and prints it.

PostgreSQL: ``--pg-url`` names a server where the database ``bench`` (by default) may be dropped
and created again.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sqlite3
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DATA = HERE / "data"
sys.path.insert(0, str(HERE))

import compare  # noqa: E402
import floor_sqlite  # noqa: E402
import generate  # noqa: E402
from benchlib import dora_bot_exe, ensure_history, machine, migrate, pg_connect, pg_recreate, pg_version  # noqa: E402

END = generate.END
SCOPES = (
    ("all services / 30 days", None, 30),
    ("one service / 90 days", "checkout", 90),
    ("all services / 730 days", None, 730),
)
PRODUCTION = ("production", "prod")


# --- processes ------------------------------------------------------------------------------

def run_process(cmd: list[str], *, env: dict | None = None) -> dict:
    """Run a command: wall time, CPU time (user + system) and peak RSS of exactly that process.

    ``os.wait4`` reports the resources of the one child it reaps. The commands here write little
    (well under a pipe's buffer), so reading their output after they end cannot block them.
    """
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        cmd, env={**os.environ, **(env or {})}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT
    )
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    out, err = proc.stdout.read().decode(), proc.stderr.read().decode()
    proc.stdout.close(), proc.stderr.close()
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({code}):\n{err[-3000:]}")
    rss = usage.ru_maxrss / (1024 * 1024 if sys.platform == "darwin" else 1024)  # bytes on macOS, KiB elsewhere
    return {"wall": wall, "cpu": usage.ru_utime + usage.ru_stime, "rss_mib": rss, "stdout": out, "stderr": err}


timed = run_process


def dora_bot(*args: str, url: str) -> tuple[list[str], dict]:
    """The `dora-bot` command of this interpreter's environment, and its DATABASE_URL."""
    return [dora_bot_exe(), *args], {"DATABASE_URL": url}


# --- in-process metrics (run in a child process of their own) ----------------------------------

def _measure_engine(url: str, runs: int) -> None:
    """Child: dora-bot's build_metrics for each scope, best of `runs`; prints JSON."""
    import resource

    from bot.services.metrics import build_metrics
    from bot.store.db import make_engine, session_scope

    engine = make_engine(url)
    out = []
    for label, service, days in SCOPES:
        best, report = float("inf"), None
        for _ in range(runs):
            t0 = time.perf_counter()
            with session_scope(engine, write=False) as session:
                report = build_metrics(
                    session, service=service, days=days, end=END, timezone_name="UTC",
                    production_environments=PRODUCTION,
                )
            best = min(best, time.perf_counter() - t0)
        out.append({"scope": label, "seconds": best, "report": report})
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"scopes": out, "peak_rss_mib": peak}))


def _measure_floor_sqlite(path: str, runs: int) -> None:
    con = sqlite3.connect(path)
    out = []
    for label, service, days in SCOPES:
        best = {}
        numbers = {}
        for way in ("sql", "python"):
            best[way] = float("inf")
            for _ in range(runs):
                t0 = time.perf_counter()
                numbers[way] = floor_sqlite.metrics(con, end=END, days=days, service=service, lead=way)
                best[way] = min(best[way], time.perf_counter() - t0)
        assert floor_sqlite.rounded(numbers["sql"]) == floor_sqlite.rounded(numbers["python"]), numbers
        way = min(best, key=best.get)
        out.append({"scope": label, "seconds": best[way], "way": way, "ways": best, "numbers": numbers[way]})
    print(json.dumps({"scopes": out}))


def _measure_floor_pg(url: str, runs: int) -> None:
    import floor_pg

    con = floor_pg.connect(url)
    out = []
    for label, service, days in SCOPES:
        best, numbers = float("inf"), None
        for _ in range(runs):
            t0 = time.perf_counter()
            numbers = floor_pg.metrics(con, end=END, days=days, service=service)
            best = min(best, time.perf_counter() - t0)
        out.append({"scope": label, "seconds": best, "numbers": numbers})
    print(json.dumps({"scopes": out}))


def child(kind: str, target: str, runs: int) -> dict:
    r = run_process([sys.executable, __file__, f"_{kind}", target, str(runs)])
    return json.loads(r["stdout"].strip().splitlines()[-1])


# --- the benchmark ----------------------------------------------------------------------------

def key_numbers(report: dict) -> dict:
    return floor_sqlite.rounded(floor_sqlite.engine_numbers(report))


def check_equal(what: str, a: dict, b: dict) -> None:
    a, b = floor_sqlite.rounded(a), floor_sqlite.rounded(b)
    diff = {k: (a.get(k), b.get(k)) for k in a.keys() | b.keys() if a.get(k) != b.get(k)}
    if diff:
        raise SystemExit(f"{what}: the numbers differ: {diff}")


def metrics_cli(url: str, service: str | None, days: int, runs: int) -> dict:
    args = ["metrics", "--json", "--end", END.strftime("%Y-%m-%dT%H:%M:%SZ"), "--days", str(days)]
    if service:
        args += ["--service", service]
    cmd, env = dora_bot(*args, url=url)
    best = None
    for _ in range(runs):
        r = timed(cmd, env=env)
        if best is None or r["wall"] < best["wall"]:
            best = r
    best["report"] = json.loads(best["stdout"])
    return best


def bench_sqlite(path: Path, args, results: dict) -> None:
    lines = results["lines"]
    template = args.work / "template.db"
    engine_db, floor_db = args.work / "dora-bot.db", args.work / "floor.db"
    if not args.skip_import:
        for p in args.work.glob("*.db*"):
            p.unlink()
        migrate(f"sqlite:///{template}")
        shutil.copy(template, engine_db)
        shutil.copy(template, floor_db)
        print("sqlite: dora-bot import ...", flush=True)
        cmd, env = dora_bot("import", "--quiet", str(path), url=f"sqlite:///{engine_db}")
        eng = timed(cmd, env=env)
        print(f"  {eng['wall']:.1f} s, {eng['rss_mib']:.0f} MiB; floor load ...", flush=True)
        flo = timed([sys.executable, str(HERE / "floor_sqlite.py"), "load", str(path), str(floor_db)])
        print(f"  {flo['wall']:.1f} s, {flo['rss_mib']:.0f} MiB; comparing the stored facts ...", flush=True)
        facts = compare.compare(str(engine_db), str(floor_db))
        bad = {t: v for t, v in facts.items() if v[1] or v[2]}
        if bad:
            raise SystemExit(f"the floor stored different facts: {bad}")
        results["sqlite_import"] = {"engine": _summary(eng, lines), "floor": _summary(flo, lines), "facts": facts}
        results["sqlite_size"] = {"engine": store_size(engine_db), "floor": store_size(floor_db), "parts": size_parts(engine_db)}
    print("sqlite: metrics ...", flush=True)
    url = f"sqlite:///{engine_db}"
    eng = child("engine", url, args.runs)
    flo = child("floor_sqlite", str(floor_db), args.runs)
    rows = []
    for e, f, (label, service, days) in zip(eng["scopes"], flo["scopes"], SCOPES, strict=True):
        cli = metrics_cli(url, service, days, args.cli_runs)
        check_equal(f"sqlite {label}: dora-bot vs floor", key_numbers(e["report"]), f["numbers"])
        check_equal(f"sqlite {label}: in-process vs CLI", key_numbers(e["report"]), key_numbers(cli["report"]))
        rows.append({"scope": label, "engine": e["seconds"], "floor": f["seconds"], "floor_way": f["way"],
                     "floor_ways": f["ways"], "cli": cli["wall"], "cli_rss": cli["rss_mib"],
                     "numbers": key_numbers(e["report"])})
    results["sqlite_metrics"] = {"scopes": rows, "engine_peak_rss": eng["peak_rss_mib"]}


def bench_postgresql(path: Path, args, results: dict) -> None:
    lines = results["lines"]
    url = args.pg_url
    if not args.skip_import:
        pg_recreate(url)
        migrate(url)
        print("postgresql: dora-bot import ...", flush=True)
        cmd, env = dora_bot("import", "--quiet", str(path), url=url)
        eng = timed(cmd, env=env)
        print(f"  {eng['wall']:.1f} s, {eng['rss_mib']:.0f} MiB", flush=True)
        with pg_connect(url, autocommit=True) as con:
            con.execute("VACUUM ANALYZE")  # what autovacuum does soon after a bulk load anyway
            counts = {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in compare.CANONICAL}
            size = con.execute("SELECT pg_database_size(current_database())").fetchone()[0]
        results["pg_import"] = {"engine": _summary(eng, lines), "rows": counts, "size": size}
    print("postgresql: metrics ...", flush=True)
    eng = child("engine", url, args.runs)
    flo = child("floor_pg", url, args.runs)
    rows = []
    sqlite_rows = {r["scope"]: r for r in results.get("sqlite_metrics", {}).get("scopes", [])}
    for e, f, (label, service, days) in zip(eng["scopes"], flo["scopes"], SCOPES, strict=True):
        cli = metrics_cli(url, service, days, args.cli_runs)
        check_equal(f"postgresql {label}: dora-bot vs psycopg floor", key_numbers(e["report"]), f["numbers"])
        check_equal(f"postgresql {label}: in-process vs CLI", key_numbers(e["report"]), key_numbers(cli["report"]))
        if label in sqlite_rows:
            check_equal(f"{label}: PostgreSQL vs SQLite", key_numbers(e["report"]), sqlite_rows[label]["numbers"])
        rows.append({"scope": label, "engine": e["seconds"], "floor": f["seconds"], "cli": cli["wall"],
                     "cli_rss": cli["rss_mib"]})
    results["pg_metrics"] = {"scopes": rows, "engine_peak_rss": eng["peak_rss_mib"]}


def store_size(path: Path) -> int:
    """Bytes on disk of a SQLite store: the file and its write-ahead log after the import."""
    return sum(p.stat().st_size for p in (path, Path(f"{path}-wal")) if p.exists())


def size_parts(path: Path, top: int = 14) -> list[tuple[str, int]]:
    """What each table and index of a SQLite store takes (``dbstat``), largest first."""
    with sqlite3.connect(path) as con:
        try:
            return con.execute(
                "SELECT name, sum(pgsize) FROM dbstat GROUP BY name ORDER BY 2 DESC LIMIT ?", (top,)
            ).fetchall()
        except sqlite3.OperationalError:  # SQLite built without the dbstat table
            return []


LEAN_STORE_MB = 208  # issue 13: a lean design's store for the 1M-deploy history (target: within 2.5x)


def _summary(r: dict, lines: int) -> dict:
    return {"wall": r["wall"], "cpu": r["cpu"], "rss_mib": r["rss_mib"], "lines_per_s": lines / r["wall"]}


# --- the report -------------------------------------------------------------------------------

def ms(seconds: float) -> str:
    return f"{seconds * 1000:,.0f} ms" if seconds >= 0.1 else f"{seconds * 1000:,.1f} ms"


def verdict(ratio: float, target: float) -> str:
    return "met" if ratio <= target else "**missed**"


def render(results: dict) -> str:
    r = results
    out = [
        "# Benchmark results",
        "",
        f"Generated by `python benchmarks/run.py {r['argv']}` on {r['when']}.",
        "",
        f"Machine: {r['machine']}. SQLite {sqlite3.sqlite_version}, Python {platform.python_version()}"
        + (f", PostgreSQL {r['pg_version']}" if r.get("pg_version") else "") + ".",
        "",
        f"History: {r['deploys']:,} deploys ({r['commits']:,} commits) and {r['incidents']:,} incidents over two"
        f" years, 8 services, {r['lines']:,} JSON lines, {r['bytes'] / 1e6:,.0f} MB"
        " (`benchmarks/generate.py`, seeded).",
        "",
    ]
    if "sqlite_import" in r or "pg_import" in r:
        out += [
            "## Import",
            "",
            "Each a process of its own into an empty, migrated database; wall clock, CPU (user + system) and peak",
            "RSS of that process. The floor is `benchmarks/floor_sqlite.py load`: plain `sqlite3`, same schema,",
            "same PRAGMAs, one transaction, no validation, its own row ids; it stores the same facts (checked",
            "row for row below).",
            "",
            "| database | program | wall | CPU | lines/s | peak RSS | vs floor (target <= 2x) |",
            "| --- | --- | ---: | ---: | ---: | ---: | --- |",
        ]
        if "sqlite_import" in r:
            e, f = r["sqlite_import"]["engine"], r["sqlite_import"]["floor"]
            ratio = e["wall"] / f["wall"]
            out.append(f"| SQLite | `dora-bot import` | {e['wall']:.1f} s | {e['cpu']:.1f} s | {e['lines_per_s']:,.0f} |"
                       f" {e['rss_mib']:.0f} MiB | **{ratio:.2f}x** ({verdict(ratio, 2.0)}; CPU {e['cpu'] / f['cpu']:.2f}x) |")
            out.append(f"| SQLite | floor (plain `sqlite3`) | {f['wall']:.1f} s | {f['cpu']:.1f} s | {f['lines_per_s']:,.0f} |"
                       f" {f['rss_mib']:.0f} MiB | 1x |")
        if "pg_import" in r:
            e = r["pg_import"]["engine"]
            vs = ""
            if "sqlite_import" in r:
                vs = f"{e['wall'] / r['sqlite_import']['floor']['wall']:.2f}x the SQLite floor"
            out.append(f"| PostgreSQL | `dora-bot import` | {e['wall']:.1f} s | {e['cpu']:.1f} s (client) |"
                       f" {e['lines_per_s']:,.0f} | {e['rss_mib']:.0f} MiB | {vs} |")
        out.append("")
        if "sqlite_import" in r:
            facts = r["sqlite_import"]["facts"]
            out.append("Stored facts, dora-bot vs floor (rows; rows only in one of them): "
                       + ", ".join(f"{t} {v[0]:,} ({v[1] + v[2]})" for t, v in facts.items()) + ".")
            out.append("")
    if "sqlite_size" in r:
        z = r["sqlite_size"]
        lean = LEAN_STORE_MB * r["deploys"] / 1_000_000  # scaled to this history's size
        ratio = z["engine"] / (lean * 1e6)
        out += [
            "## Store size on disk",
            "",
            f"SQLite after the import: dora-bot {z['engine'] / 1e6:,.0f} MB (the floor, same schema: {z['floor'] / 1e6:,.0f} MB);"
            f" **{ratio:.2f}x** a lean design's {lean:,.0f} MB (issue 13: {LEAN_STORE_MB} MB for 1M deploys; target <= 2.5x:"
            f" {verdict(ratio, 2.5)})"
            + (f"; PostgreSQL {r['pg_import']['size'] / 1e6:,.0f} MB" if "size" in r.get("pg_import", {}) else "") + ".",
            "",
            "Largest tables and indexes (SQLite `dbstat`): "
            + ", ".join(f"{name} {size / 1e6:,.0f} MB" for name, size in z["parts"]) + ".",
            "",
        ]
    for key, name, floor_name in (("sqlite_metrics", "SQLite", "plain `sqlite3`"), ("pg_metrics", "PostgreSQL", "plain `psycopg`")):
        if key not in r:
            continue
        m = r[key]
        out += [
            f"## Metrics on {name}",
            "",
            f"Best of {r['runs']} in-process calls each (`build_metrics`, i.e. what `/dora`, the API and digests run),"
            f" against the floor ({floor_name}, same numbers asserted);"
            f" and the `dora-bot metrics --json` process, best of {r['cli_runs']} (wall clock, peak RSS).",
            "",
            "| scope | dora-bot | floor | ratio (target <= 1.5x) | `dora-bot metrics` process | its peak RSS |",
            "| --- | ---: | ---: | --- | ---: | ---: |",
        ]
        for s in m["scopes"]:
            ratio = s["engine"] / s["floor"]
            way = f" ({s['floor_way']})" if "floor_way" in s else ""
            target = verdict(ratio, 1.5) if key == "sqlite_metrics" else "(same SQL)"
            out.append(f"| {s['scope']} | {ms(s['engine'])} | {ms(s['floor'])}{way} | **{ratio:.2f}x** {target} |"
                       f" {ms(s['cli'])} | {s['cli_rss']:.0f} MiB |")
        out.append("")
        if key == "sqlite_metrics":
            ways = "; ".join(
                f"{s['scope']}: " + ", ".join(f"{w} {ms(t)}" for w, t in s["floor_ways"].items()) for s in m["scopes"]
            )
            out += [f"Floor by way of taking percentiles: {ways}.", ""]
        out += [f"Peak RSS of the in-process measuring process (all scopes, {r['runs']} runs each): {m['engine_peak_rss']:.0f} MiB.", ""]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0].startswith("_"):  # a measuring child
        kind, target, runs = argv[0][1:], argv[1], int(argv[2])
        {"engine": _measure_engine, "floor_sqlite": _measure_floor_sqlite, "floor_pg": _measure_floor_pg}[kind](target, runs)
        return 0
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--deploys", type=int, default=1_000_000)
    ap.add_argument("--db", choices=("sqlite", "postgresql", "both"), default="both")
    ap.add_argument("--pg-url", default=os.environ.get("BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/bench"))
    ap.add_argument("--runs", type=int, default=5, help="in-process metrics runs (best is kept)")
    ap.add_argument("--cli-runs", type=int, default=3, help="`dora-bot metrics` process runs (best is kept)")
    ap.add_argument("--skip-import", action="store_true", help="reuse the databases of the previous run")
    ap.add_argument("--out", type=Path, default=HERE / "RESULTS.md")
    args = ap.parse_args(argv)
    args.work = DATA / f"run-{args.deploys}"
    args.work.mkdir(parents=True, exist_ok=True)

    path = ensure_history(args.deploys)
    lines = commits = incidents = 0
    with open(path, "rb") as f:
        for raw in f:
            lines += 1
            if raw.startswith(b'{"type":"incident"'):
                incidents += 1
            else:
                commits += raw.count(b'"sha"')
    info = machine()
    results = {
        "argv": " ".join(argv), "when": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{info['cpus']} CPUs, {info['arch']}, load average {info['load_start']:.1f} at start",
        "deploys": args.deploys, "commits": commits, "incidents": incidents, "lines": lines,
        "bytes": path.stat().st_size, "runs": args.runs, "cli_runs": args.cli_runs,
    }
    if args.db in ("sqlite", "both"):
        bench_sqlite(path, args, results)
    if args.db in ("postgresql", "both"):
        results["pg_version"] = pg_version(args.pg_url, database="postgres")
        bench_postgresql(path, args, results)
    results["machine"] += f", {os.getloadavg()[0]:.1f} at the end"
    (args.work / "results.json").write_text(json.dumps(results, indent=2, default=str))
    text = render(results)
    args.out.write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
