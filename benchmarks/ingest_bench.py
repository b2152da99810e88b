"""Sustained ``POST /api/v1/deploys`` against ``dora-bot serve`` on a real uvicorn server.

The server is ``dora-bot serve`` itself, run through its CLI entry point in a separate process
(this script's ``serve`` sub-command): the Slack app, the ingest API, the outbox worker, the
gauge refresher and the scheduler, Prometheus HTTP metrics, the project's logging (INFO, text,
uvicorn's access log on, sent to a file), uvicorn with the options ``serve`` gives it (its loop
and HTTP parser are uvloop and httptools when installed, as the project's dependencies declare).
Slack is never called. The database is fresh for each run: a new SQLite file, then a new
PostgreSQL database (created and dropped here).

The load: N client threads (default 8), each with one keep-alive ``http.client`` connection,
posting deploys with unique ids and 1-3 commits as fast as the server answers, for a warm-up and
then a measured period. Reported: throughput (deploys/s), latency percentiles, errors, and a
check that the database holds exactly the deploys that were answered 201.

    python benchmarks/ingest_bench.py                        # SQLite and PostgreSQL, 20 s each
    python benchmarks/ingest_bench.py --backend sqlite --duration 10
    python benchmarks/ingest_bench.py --profile              # py-spy the server while measuring
    python benchmarks/ingest_bench.py --request healthz      # what-if: GET /healthz (or: invalid, all 422)
    python benchmarks/ingest_bench.py floors                 # the same writes on plain sqlite3, the app in-process
    python benchmarks/ingest_bench.py serve --db URL --port P   # (internal: the server process)

Target (issue "Ingest"): >= 500 deploys/s on SQLite with p99 < 50 ms on a 2-core machine.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from functools import partial
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from benchlib import (  # noqa: E402
    KeepAlive,
    add_root,
    db_rows,
    free_port,
    latency_stats,
    machine,
    migrate,
    pg_drop,
    pg_recreate,
    pg_version,
    profile_lines,
    py_spy,
    run_load,
    start_py_spy,
    stop_process,
    summarize_profile,
    uvicorn_auto,
    wait_http,
    write_results,
)

TOKEN = "bench-ingest-token-0123456789abcdef"
DEFAULT_PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
TARGET_RATE, TARGET_P99_MS = 500.0, 50.0


# --- the server process ---------------------------------------------------------------------

BENCH_ENV = {
    # What `dora-bot serve` needs to start over HTTP. Slack is never called during a run (no
    # outbox message is queued, /readyz is not probed); its URL points at a closed local port.
    "SLACK_BOT_TOKEN": "xoxb-bench-not-a-real-token",
    "SLACK_SIGNING_SECRET": "bench-signing-secret-0123456789",
    "SLACK_API_URL": "http://127.0.0.1:9/api/",
    "INGEST_TOKENS": TOKEN,
    "HOST": "127.0.0.1",
    "LOG_LEVEL": "INFO",
    "LOG_FORMAT": "text",
}


def serve(db_url: str, port: int, *, info_path: str, access_log: bool, telemetry: bool, asyncio_h11: bool) -> int:
    """Run `dora-bot serve` itself (the CLI entry point, in this process) on ``db_url``.

    Everything `serve` starts runs: the Slack app, the ingest API, the outbox worker, the gauge
    refresher, the scheduler. The what-if switches patch the server's set-up in this process only.
    """
    add_root()
    import uvicorn

    import bot.server
    from bot.cli import main as cli

    os.environ.update(BENCH_ENV, DATABASE_URL=db_url, PORT=str(port))
    run = uvicorn.run

    def uvicorn_run(app, **options):
        if not access_log:
            options["access_log"] = False
        if asyncio_h11:
            options.update(loop="asyncio", http="h11")
        auto_loop, auto_http = uvicorn_auto()
        loop, http = options.get("loop", "auto"), options.get("http", "auto")
        if loop == "auto":
            loop = auto_loop
        if http == "auto":
            http = auto_http
        Path(info_path).write_text(json.dumps({"loop": loop, "http": http, "options": sorted(options)}))
        return run(app, **options)

    uvicorn.run = uvicorn_run
    if not telemetry:
        create = bot.server.create_asgi_app

        def create_without_http_metrics(rt, bolt, **kw):
            rt.telemetry = None
            return create(rt, bolt, **kw)

        bot.server.create_asgi_app = create_without_http_metrics
    try:
        cli(["serve"], prog_name="dora-bot")
    except SystemExit as exc:
        return exc.code or 0
    return 0


# --- databases ------------------------------------------------------------------------------

def count_deploys(url: str) -> tuple[int, int, int]:
    """(deploys, deploy_commit rows, distinct external ids) actually stored."""
    [(deploys, distinct)], [(commits,)] = db_rows(
        url, "SELECT count(*), count(DISTINCT external_id) FROM deploy", "SELECT count(*) FROM deploy_commit")
    return deploys, commits, distinct


class PgDatabase:
    """A fresh PostgreSQL database for one run, dropped afterwards."""

    def __init__(self, admin_url: str):
        from sqlalchemy.engine import make_url

        self.admin = admin_url
        self.url = make_url(admin_url).set(database=f"ingest_bench_{os.getpid()}").render_as_string(hide_password=False)

    def __enter__(self) -> str:
        pg_recreate(self.url, self.admin)
        return self.url

    def __exit__(self, *exc) -> None:
        pg_drop(self.url, self.admin)


# --- the load -------------------------------------------------------------------------------

def deploy_payload(rng: random.Random, deploy_id: str, n: int, services: list[str], client: int = 0) -> dict:
    """One deploy as CI sends it: 1-3 commits, one of the services, 85% production."""
    deployed = datetime.now(timezone.utc) - timedelta(seconds=rng.randint(0, 86400))
    commits = [
        {"sha": f"{rng.getrandbits(160):040x}",
         "committed_at": (deployed - timedelta(seconds=rng.randint(60, 7 * 86400))).strftime("%Y-%m-%dT%H:%M:%SZ")}
        for _ in range(rng.randint(1, 3))
    ]
    return {
        "id": deploy_id,
        "service": rng.choice(services),
        "environment": "production" if rng.random() < 0.85 else "staging",
        "version": f"2026.{n}",
        "deployed_at": deployed.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "commits": commits,
        "url": f"https://ci.example/run/{client}/{n}",
    }


@dataclass
class Worker:
    index: int
    port: int
    run_tag: str
    kind: str = "deploy"  # what-ifs: "invalid" (each deploy fails validation: 422), "healthz"
    ok: list[float] = field(default_factory=list)  # latencies (s) of 201s in the measured period
    errors: Counter = field(default_factory=Counter)
    sent_ok: int = 0  # every 201, warm-up included (to check against the database)

    def run(self, start_measure: float, stop_at: float, services: list[str]) -> None:
        rng = random.Random(self.index)
        conn = KeepAlive(self.port)
        n = 0
        headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
        expected = {"deploy": 201, "invalid": 422, "healthz": 200}[self.kind]
        while True:
            now = time.perf_counter()
            if now >= stop_at:
                break
            n += 1
            body = json.dumps(deploy_payload(rng, f"bench-{self.run_tag}-{self.index}-{n}", n, services, self.index)).encode()
            if self.kind == "invalid":
                body = body.replace(b'"deployed_at": "', b'"deployed_at": "not a time ')
            t0 = time.perf_counter()
            if self.kind == "healthz":
                status, _ = conn.request("GET", "/healthz")
            else:
                status, _ = conn.request("POST", "/api/v1/deploys", body=body, headers=headers)
            t1 = time.perf_counter()
            if status == 201:
                self.sent_ok += 1
            if t0 >= start_measure:
                if status == expected:
                    self.ok.append(t1 - t0)
                else:
                    self.errors[str(status)] += 1
        conn.close()


def run_one(backend: str, url: str, args, workdir: Path) -> dict:
    migrate(url)
    port = free_port()
    log_path = workdir / f"server-{backend}.log"
    info_path = workdir / f"server-{backend}.json"
    cmd = [sys.executable, str(Path(__file__).resolve()), "serve", "--db", url, "--port", str(port), "--info", str(info_path)]
    if args.no_access_log:
        cmd.append("--no-access-log")
    if args.no_telemetry:
        cmd.append("--no-telemetry")
    if args.asyncio_h11:
        cmd.append("--asyncio-h11")
    with open(log_path, "wb") as log:
        # In the scratch directory: `serve` reads a .env from its working directory and above.
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=workdir)
        try:
            wait_http(port, proc, want=200, timeout=30)
            services = [f"svc-{i:02d}" for i in range(20)]
            tag = f"{backend}{int(time.time())}"
            workers = [Worker(i, port, tag, kind=args.request) for i in range(args.threads)]
            profile_path = Path(args.profile_dir) / f"ingest-profile-{backend}.txt"
            measured = run_load(
                [partial(w.run, services=services) for w in workers], warmup=args.warmup, duration=args.duration,
                pids={"server": proc.pid}, clock=time.perf_counter,
                profile=partial(start_py_spy, proc.pid, args.duration, profile_path, rate=200) if args.profile else None,
            )
        finally:
            stop_process(proc, timeout=20)
    latencies = sorted(x for w in workers for x in w.ok)
    errors = sum((w.errors for w in workers), Counter())
    stored, stored_commits, distinct = count_deploys(url)
    sent_ok = sum(w.sent_ok for w in workers)
    elapsed = measured["elapsed"]
    result = {
        "backend": backend,
        "ok": len(latencies),
        "errors": dict(errors),
        "elapsed": elapsed,
        "rate": len(latencies) / elapsed,
        **latency_stats(latencies),
        "stored": stored,
        "stored_commits": stored_commits,
        "answered_201": sent_ok,
        "consistent": stored == sent_ok == distinct,
        "server_cpu_cores": measured["cpu"]["server"],
        "client_cpu_cores": measured["own_cpu"],
    }
    try:
        result["server"] = json.loads(info_path.read_text())
    except (OSError, ValueError):
        result["server"] = {}
    if args.profile:
        result["profile"] = summarize_profile(profile_path, PROFILE_PROBES)
    return result


# --- floors: the same deploys without the server --------------------------------------------

def floors(count: int, workdir: Path) -> dict:
    """Per deploy, one at a time, SQLite, no sockets: what the write costs at least.

    ``driver``: the write path's statements (``bot.services.deploys``) on plain sqlite3 with
    values prepared beforehand: BEGIN IMMEDIATE, the deploy, its commits, its lead-time samples,
    COMMIT. ``app``: dora-bot's ASGI app called in-process (middleware, routing, metrics, the
    hand-off to a worker thread, validation, the write, the 201 body), without uvicorn, sockets
    or the access log.
    """
    add_root()
    import asyncio

    from bot.config import Settings
    from bot.core.inputs import parse_deploy
    from bot.runtime import Runtime
    from bot.server import create_asgi_app
    from bot.services.deploys import _insert_commits_sql, _statements
    from bot.store.db import make_engine
    from bot.store.derived import _sqlite_instant
    from bot.telemetry import Telemetry

    services = [f"svc-{i:02d}" for i in range(20)]
    rng = random.Random(7)
    out = {}

    # driver: plain sqlite3, the statements of write_deploy, values already in stored form
    url = f"sqlite:///{workdir / 'floor-driver.db'}"
    migrate(url)
    sql = _statements("sqlite")
    samples_sql = ("INSERT INTO lead_sample (service_id, sha, deploy_id, deployed_at, committed_at, lead_seconds) VALUES {}"
                   " ON CONFLICT (service_id, sha) DO UPDATE SET deploy_id = excluded.deploy_id, deployed_at = excluded.deployed_at,"
                   " committed_at = excluded.committed_at, lead_seconds = excluded.lead_seconds"
                   " WHERE excluded.deployed_at < lead_sample.deployed_at")
    now = datetime.now(timezone.utc)
    prepared = []
    for n in range(count):
        d = parse_deploy(deploy_payload(rng, f"floor-{n}", n, services), now=now)
        at = _sqlite_instant(d.deployed_at)
        prepared.append((
            (d.external_id, d.environment, d.version, at, d.status, None, False, None, False, d.url, None, "api", "api",
             _sqlite_instant(now), d.service),
            [(c.sha, _sqlite_instant(c.committed_at), (d.deployed_at - c.committed_at).total_seconds()) for c in d.commits],
            d.status == "success" and d.environment == "production",
        ))
    db = sqlite3.connect(str(workdir / "floor-driver.db"), isolation_level=None, check_same_thread=False)
    for pragma in ("foreign_keys=ON", "busy_timeout=10000", "journal_mode=WAL", "synchronous=NORMAL"):
        db.execute(f"PRAGMA {pragma}")
    for name in services:
        db.execute(sql.insert_service, (name, _sqlite_instant(now)))
    t0, c0 = time.perf_counter(), time.process_time()
    for params, commits, qualifies in prepared:
        cur = db.cursor()
        cur.execute("BEGIN IMMEDIATE")
        deploy_id, service_id = cur.execute(sql.insert_deploy, params).fetchone()
        cur.execute(_insert_commits_sql("sqlite", len(commits)), [v for sha, at, _ in commits for v in (deploy_id, sha, at)])
        if qualifies:
            cur.execute(samples_sql.format(", ".join(["(?, ?, ?, ?, ?, ?)"] * len(commits))),
                        [v for sha, at, lead in commits for v in (service_id, sha, deploy_id, params[3], at, lead)])
        cur.execute("COMMIT")
    out["driver"] = {"wall_us": (time.perf_counter() - t0) / count * 1e6, "cpu_us": (time.process_time() - c0) / count * 1e6}
    db.close()

    # app: the ASGI app in-process, one request at a time
    url = f"sqlite:///{workdir / 'floor-app.db'}"
    migrate(url)
    rt = Runtime(settings=Settings(database_url=url, ingest_tokens=(TOKEN,), run_scheduler=False), engine=make_engine(url))
    rt.prepare(migrate=False)
    rt.telemetry = Telemetry()
    app = create_asgi_app(rt, None)
    bodies = [json.dumps(deploy_payload(rng, f"floor-app-{n}", n, services)).encode() for n in range(count)]

    async def post(body: bytes) -> int:
        scope = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
            "path": "/api/v1/deploys", "raw_path": b"/api/v1/deploys", "query_string": b"", "root_path": "",
            "headers": [(b"host", b"bench"), (b"authorization", f"Bearer {TOKEN}".encode()),
                        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
            "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 2),
        }
        messages = [{"type": "http.request", "body": body, "more_body": False}]
        status = []

        async def receive():
            return messages.pop() if messages else {"type": "http.disconnect"}

        async def send(message):
            if message["type"] == "http.response.start":
                status.append(message["status"])

        await app(scope, receive, send)
        return status[0]

    async def run_all() -> dict:
        for body in bodies[: count // 10]:  # warm-up
            assert await post(body) == 201
        t0, c0 = time.perf_counter(), time.process_time()
        for body in bodies[count // 10:]:
            assert await post(body) == 201
        n = count - count // 10
        return {"wall_us": (time.perf_counter() - t0) / n * 1e6, "cpu_us": (time.process_time() - c0) / n * 1e6}

    try:
        import uvloop

        out["app"] = uvloop.run(run_all())
    except ImportError:
        out["app"] = asyncio.run(run_all())
    rt.engine.dispose()
    return out


# --- profile summary ------------------------------------------------------------------------

PROFILE_PROBES = [
    # (label, substring of a frame in the stack): the share of samples whose stack contains it
    ("event-loop side of requests (middleware, routing)", "RequestMiddleware.__call__"),
    ("POST /api/v1/deploys handler in a worker thread", "post_deploy (bot/ingest/api.py"),
    ("    parse_deploy (validation)", "parse_deploy (bot/core/inputs.py"),
    ("    write_deploy (the driver statements)", "write_deploy (bot/services/deploys.py"),
    ("      upsert_stored_lead_samples", "upsert_stored_lead_samples (bot/store/derived.py"),
    ("    deploy_document (the 201 body)", "deploy_document (bot/ingest/serialize.py"),
    ("    BEGIN IMMEDIATE (SQLite's write lock)", "_on_begin (bot/store/db.py"),
    ("    COMMIT", "do_commit (sqlalchemy"),
    ("  Prometheus telemetry", "prometheus_client"),
    ("logging (access log through the redacting handler)", "logging/__init__.py"),
    ("uvicorn HTTP parsing/writing (h11)", "h11_impl.py"),
    ("uvicorn HTTP parsing/writing (httptools)", "httptools_impl.py"),
    ("event loop wake-ups from worker threads (asyncio loop)", "_write_to_self"),
    ("background threads of `serve` (outbox, gauges, scheduler)", "OutboxWorker._run|GaugeRefresher._run|apscheduler"),
]


# --- report ---------------------------------------------------------------------------------

def loop_http(results: list[dict]) -> str:
    seen = sorted({(r.get("server", {}).get("loop", "?"), r.get("server", {}).get("http", "?")) for r in results})
    return "; ".join(f"{loop} loop, {http}" for loop, http in seen)


def render(results: list[dict], args, info: dict) -> str:
    lines = [
        "# Ingest benchmark: sustained POST /api/v1/deploys",
        "",
        f"Run {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')} with `python benchmarks/ingest_bench.py"
        f" --duration {args.duration:g} --warmup {args.warmup:g} --threads {args.threads}"
        + (" --no-access-log" if args.no_access_log else "") + (" --no-telemetry" if args.no_telemetry else "")
        + (" --asyncio-h11" if args.asyncio_h11 else "")
        + (f" --request {args.request}" if args.request != "deploy" else "") + "`.",
        "",
        f"Machine: {info['cpus']} CPUs, {info['platform']}, Python {info['python']}, SQLite {info['sqlite']}, "
        f"uvicorn {info.get('uvicorn') or '?'}" + (f", PostgreSQL {info['postgresql']}" if info.get("postgresql") else "") + ".",
        "Server: `dora-bot serve` itself in a separate process (Slack app, ingest API, outbox worker, gauge refresher, "
        f"scheduler; uvicorn as `serve` runs it: {loop_http(results)}), Prometheus HTTP metrics "
        + ("off" if args.no_telemetry else "on") + ", logging as `serve` configures it (INFO, text, access log "
        + ("off" if args.no_access_log else "on") + ", to a file). "
        f"Client: {args.threads} threads in this process, one keep-alive connection each, unique ids, "
        "1-3 commits per deploy, 20 services, 85% production.",
        "",
        f"Target: >= {TARGET_RATE:g} deploys/s on SQLite with p99 < {TARGET_P99_MS:g} ms.",
        "",
        f"| backend | {'deploys' if args.request == 'deploy' else 'requests'}/s | p50 ms | p90 ms | p99 ms | max ms | errors"
        " | stored = answered 201 | server CPU (cores) | client CPU | target |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: | --- |",
    ]
    for r in results:
        errs = sum(r["errors"].values())
        met = r["rate"] >= TARGET_RATE and r["p99_ms"] < TARGET_P99_MS
        target = ("met" if met else "**missed**") if r["backend"] == "sqlite" and args.request == "deploy" else "(n/a)"
        lines.append(
            f"| {r['backend']} | {r['rate']:.0f} | {r['p50_ms']:.1f} | {r['p90_ms']:.1f} | {r['p99_ms']:.1f} | "
            f"{r['max_ms']:.1f} | {errs}{(' ' + json.dumps(r['errors'])) if errs else ''} | "
            f"{'yes' if r['consistent'] else 'NO'} ({r['stored']} / {r['answered_201']}) | "
            f"{r['server_cpu_cores']:.2f} | {r['client_cpu_cores']:.2f} | {target} |"
        )
    for r in results:
        prof = r.get("profile")
        if not prof or "samples" not in prof:
            continue
        lines += profile_lines(prof, f"## Where the server's time goes ({r['backend']}: py-spy,"
                                     f" {prof['samples']} samples of non-idle threads)")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["serve"]:
        p = argparse.ArgumentParser(prog="ingest_bench.py serve")
        p.add_argument("--db", required=True)
        p.add_argument("--port", type=int, required=True)
        p.add_argument("--no-access-log", action="store_true")
        p.add_argument("--no-telemetry", action="store_true")
        p.add_argument("--asyncio-h11", action="store_true")
        p.add_argument("--info", required=True)
        a = p.parse_args(argv[1:])
        return serve(a.db, a.port, info_path=a.info, access_log=not a.no_access_log, telemetry=not a.no_telemetry,
                     asyncio_h11=a.asyncio_h11)
    if argv[:1] == ["floors"]:
        p = argparse.ArgumentParser(prog="ingest_bench.py floors", description=floors.__doc__.split("\n\n")[0])
        p.add_argument("--count", type=int, default=5000)
        p.add_argument("--repeat", type=int, default=3, help="runs; the best of each is shown")
        a = p.parse_args(argv[1:])
        best: dict = {}
        for _ in range(a.repeat):
            workdir = Path(tempfile.mkdtemp(prefix="ingest-floors-"))
            try:
                for name, v in floors(a.count, workdir).items():
                    if name not in best or v["cpu_us"] < best[name]["cpu_us"]:
                        best[name] = v
            finally:
                shutil.rmtree(workdir, ignore_errors=True)
        for name, v in best.items():
            print(f"{name}: {v['wall_us']:.0f} us wall, {v['cpu_us']:.0f} us CPU per deploy (best of {a.repeat})")
        return 0
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    p.add_argument("--duration", type=float, default=20.0, help="measured seconds (after the warm-up)")
    p.add_argument("--warmup", type=float, default=3.0)
    p.add_argument("--threads", type=int, default=8)
    p.add_argument("--pg-admin-url", default=os.environ.get("BENCH_PG_ADMIN_URL", DEFAULT_PG_ADMIN),
                   help="a PostgreSQL URL allowed to CREATE/DROP DATABASE")
    p.add_argument("--profile", action="store_true", help="record the server with py-spy during the measured period")
    p.add_argument("--profile-dir", default=tempfile.gettempdir(), help="where py-spy's raw stacks are kept")
    p.add_argument("--no-access-log", action="store_true", help="what-if: uvicorn's access log off")
    p.add_argument("--no-telemetry", action="store_true", help="what-if: no HTTP metrics middleware (Prometheus)")
    p.add_argument("--request", choices=["deploy", "invalid", "healthz"], default="deploy",
                   help="what-if: post deploys that all fail validation (422, nothing stored), or GET /healthz")
    p.add_argument("--asyncio-h11", action="store_true",
                   help="what-if: uvicorn on asyncio's own loop and h11, as without uvloop and httptools")
    p.add_argument("--results", default=str(HERE / "INGEST_RESULTS.md"), help="markdown file to write ('-': none)")
    p.add_argument("--json", action="store_true", help="print the raw results as JSON too")
    args = p.parse_args(argv)
    if args.profile and py_spy() is None:
        p.error("--profile needs py-spy (pip install py-spy)")

    info = machine()
    results = []
    workdir = Path(tempfile.mkdtemp(prefix="ingest-bench-"))
    try:
        if args.backend in ("sqlite", "both"):
            url = f"sqlite:///{workdir / 'bench.db'}"
            results.append(run_one("sqlite", url, args, workdir))
            print(f"sqlite: {results[-1]['rate']:.0f} deploys/s, p50 {results[-1]['p50_ms']:.1f} ms,"
                  f" p99 {results[-1]['p99_ms']:.1f} ms", flush=True)
        if args.backend in ("postgresql", "both"):
            pg = PgDatabase(args.pg_admin_url)
            info["postgresql"] = pg_version(args.pg_admin_url)
            with pg as url:
                results.append(run_one("postgresql", url, args, workdir))
            print(f"postgresql: {results[-1]['rate']:.0f} deploys/s, p50 {results[-1]['p50_ms']:.1f} ms,"
                  f" p99 {results[-1]['p99_ms']:.1f} ms", flush=True)
        report = render(results, args, info)
        print()
        print(report)
        if args.json:
            print(json.dumps(results, indent=2, default=str))
        if args.results != "-":
            write_results(args.results, report)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    sqlite_result = next((r for r in results if r["backend"] == "sqlite"), None)
    if any(not r["consistent"] for r in results):
        return 2
    if sqlite_result and args.request == "deploy" and not (
        sqlite_result["rate"] >= TARGET_RATE and sqlite_result["p99_ms"] < TARGET_P99_MS
    ):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
