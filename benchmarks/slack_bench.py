"""Slack speed: ``/deploy`` acknowledgement latency next to a bare Bolt app, and ``/dora`` on 1M deploys.

Everything runs as separate processes on 127.0.0.1, and every time is taken by this script (the
client) or by the fake Slack, on the machine's monotonic clock (``time.monotonic``, one clock for
all processes on Linux):

* a fake Slack Web API (``tests/fake_slack.py``, this script's ``fake`` sub-command): answers
  ``chat.postMessage``, ``chat.update``, ``response_url`` POSTs ... like Slack, checks Block Kit
  limits, and records when each call arrived;
* dora-bot, started the way ``dora-bot serve`` starts it (``bot.cli`` ``serve`` itself: Prometheus
  telemetry, its logging at INFO with uvicorn's access log (to a file), the outbox worker, gauges,
  the scheduler), ``SLACK_API_URL`` pointing at the fake;
* a bare Bolt app with the same signing secret and one ``/deploy`` listener that only calls
  ``ack()``, on uvicorn with the same options (INFO logging and access log to a file). Two ways:
  ``threadpool`` is Bolt's Starlette adapter functions with ``App.dispatch`` in Starlette's thread
  pool, exactly as dora-bot's ``bot/server.py`` serves its Bolt app, so the two differ only in the
  app; ``stock`` is ``slack_bolt.adapter.starlette.SlackRequestHandler`` as published, which calls
  the synchronous ``dispatch`` on the event loop (one request at a time). The ratio targets are
  checked against the faster of the two.

Phase ``ack``: N client threads (default 8), one keep-alive connection each, send signed ``/deploy
<service> <version>`` slash commands (form-encoded like Slack's, ``v0=`` HMAC-SHA256 signature,
a ``response_url`` on the fake, distinct versions) to each server in turn, as fast as the acks come
back (closed loop), for a warm-up and then a measured period; then again paced, every server at
the same offered load (``--loads closed,40``: 40 commands/s in all, Poisson arrivals per client).
Latency is the time to the HTTP 200 ack. Reported: p50/p90/p99/max, acks/s, errors (non-200 or an
ack with a body), CPU of each process, and dora/bare ratios. After each dora-bot run the script
waits until every command's reply and card reached the fake, then checks that the database holds
exactly the deploys that were acked (none lost, none twice) and that every outbox message was sent,
and reports how long after its ack each reply (``response_url``) and card (``chat.postMessage``)
arrived.

Phase ``dora``: ``generate.py`` writes the 1,000,000-deploy history (seeded) if it is not there and
``dora-bot import`` loads it into benchmarks/data/slack-1m.db (kept for the next run; about two
minutes). dora-bot serves that file with its clock set to the history's end (``generate.END``,
then running normally) so the 30-day window is full of deploys; signed ``/dora``, ``/dora checkout
days=90`` and ``/dora days=730`` are sent one at a time, and the time from sending the command to
the card's arrival at the fake (dora-bot posts it to the ``response_url``) is measured: once cold
(the database file dropped from the OS page cache first), then ``--runs`` times warm. ``--pg`` does
the same on PostgreSQL (database ``slackbench``, imported once, analyzed, and kept; "cold" there is
the first run after the server started).

    python benchmarks/slack_bench.py                          # both phases (SQLite), ~5 minutes
    python benchmarks/slack_bench.py --phase ack --duration 10 --loads closed,8,40,64
    python benchmarks/slack_bench.py --phase dora --pg --runs 7
    python benchmarks/slack_bench.py --prepare-only [--pg]    # only generate + import (slow, no lock needed)
    python benchmarks/slack_bench.py --profile                # py-spy dora-bot while measuring acks

Targets (issue "Slack speed"): dora-bot's /deploy ack p50 <= 1.5x and p99 <= 2x the bare Bolt
app's with 8 concurrent clients and no errors; the /dora card within 3 s of the command on 1M deploys.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import http.client
import json
import os
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlparse

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from benchlib import (  # noqa: E402
    ROOT,
    KeepAlive,
    add_root,
    db_rows,
    dora_bot_exe,
    ensure_history,
    free_port,
    latency_stats,
    machine,
    migrate,
    pg_connect,
    pg_recreate,
    pg_version,
    proc_cpu,
    profile_lines,
    py_spy,
    run_load,
    start_py_spy,
    stop_process,
    summarize_profile,
    wait_http,
    write_results,
)

DATA = HERE / "data"
SIGNING_SECRET = "bench-signing-secret-5f1d0c7a9e3b4d6f8a2c"
BOT_TOKEN = "xoxb-test"  # what tests/fake_slack.py accepts
TEAM_ID, APP_ID = "T0TEST", "A0TEST"
SERVICES = ("checkout", "web", "payments", "api-gateway", "auth", "data-pipeline", "search", "legacy-billing")
DORA_FORMS = ("", "checkout days=90", "days=730")
DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/slackbench"
HISTORY_DEPLOYS = 1_000_000
SELF = str(Path(__file__).resolve())
TARGET_P50_RATIO, TARGET_P99_RATIO, TARGET_CARD_S = 1.5, 2.0, 3.0
VERSION_RE = re.compile(r"\bv(\d+)\.(\d+)\.(\d+)\b")


# === the processes ============================================================================

def run_fake(port_file: str, latency_ms: float) -> None:
    """The fake Slack Web API (tests/fake_slack.py) plus ``/_bench/...`` for this script."""
    add_root()
    from http.server import ThreadingHTTPServer

    from tests.fake_slack import FakeSlack, _Handler

    arrival = threading.local()

    class StampedFake(FakeSlack):
        def _record(self, call) -> None:
            call.at = getattr(arrival, "at", call.at)  # when the request arrived, not when it was answered
            super()._record(call)

    fake = StampedFake()

    class Handler(_Handler):
        slack = fake

        def _handle(self) -> None:
            url = urlparse(self.path)
            if url.path.startswith("/_bench/"):
                return self._bench(url)
            arrival.at = time.monotonic()
            if latency_ms:
                time.sleep(latency_ms / 1000)
            return super()._handle()

        def _bench(self, url) -> None:
            q = {k: v[-1] for k, v in parse_qs(url.query).items()}
            if url.path == "/_bench/wait":  # long-poll: the first response_url POST to `path`
                want, timeout = q["path"], float(q.get("timeout", "30"))
                found = None

                def hit():
                    nonlocal found
                    for c in reversed(fake.calls):
                        if c.method == "response_url" and c.path == want:
                            found = c
                            return True
                    return False

                try:
                    fake.wait_for(hit, timeout=timeout)
                except AssertionError:
                    pass
                body = {"found": found is not None}
                if found is not None:
                    p = found.params
                    body.update(at=found.at, status=found.status, response_type=p.get("response_type"),
                                text=p.get("text"), blocks=len(p.get("blocks") or []))
            elif url.path == "/_bench/summary":
                with fake.lock:
                    calls = list(fake.calls)
                    body = {
                        "responses": [[c.path, c.at, c.ok] for c in calls if c.method == "response_url"],
                        "posts": [[c.params.get("text"), c.at] for c in calls if c.method == "chat.postMessage" and c.ok],
                        "methods": dict(Counter(f"{c.method} {'ok' if c.ok else 'error'}" for c in calls)),
                        "violations": fake.violations[:20],
                        "violation_count": len(fake.violations),
                        "escaping": fake.escaping[:5],
                    }
            elif url.path == "/_bench/reset":
                fake.reset()
                body = {"ok": True}
            else:
                self._send(404, b"not found", "text/plain")
                return
            self._send(200, json.dumps(body).encode(), "application/json")

        do_GET = _handle
        do_POST = _handle

    class FakeServer(ThreadingHTTPServer):
        daemon_threads = True
        request_queue_size = 128  # listen() backlog (default 5): dora-bot's listener threads post in bursts

    server = FakeServer(("127.0.0.1", 0), Handler)
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    Path(port_file).write_text(str(server.server_address[1]))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        server.serve_forever(poll_interval=0.05)
    finally:
        server.server_close()


def run_dora(clock_at: str | None) -> None:
    """dora-bot's own ``serve`` command (settings from the environment this script sets).

    ``clock_at``: the runtime's clock starts at that instant and runs on from there (used for the
    imported history, which ends in the past).
    """
    add_root()
    from bot import cli

    if clock_at:
        from bot.runtime import build_runtime

        start = datetime.fromisoformat(clock_at)
        offset = start - datetime.now(UTC)

        def shifted_clock():
            return datetime.now(UTC) + offset

        cli.build_runtime = lambda settings, **_kw: build_runtime(settings, clock=shifted_clock)
    cli.main(["serve"], prog_name="dora-bot")


def run_bare(port: int, adapter: str, slack_url: str) -> None:
    """A bare Bolt app: one ``/deploy`` listener that only acks, on uvicorn like dora-bot."""
    import logging

    import uvicorn
    from slack_bolt import App
    from slack_sdk import WebClient
    from starlette.applications import Starlette
    from starlette.routing import Route

    logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    app = App(signing_secret=SIGNING_SECRET, client=WebClient(token=BOT_TOKEN, base_url=slack_url),
              token_verification_enabled=False)

    @app.command("/deploy")
    def deploy(ack):
        ack()

    if adapter == "stock":
        from slack_bolt.adapter.starlette import SlackRequestHandler

        handler = SlackRequestHandler(app)

        async def endpoint(request):
            return await handler.handle(request)
    else:
        from slack_bolt.adapter.starlette.handler import (
            to_bolt_request,
            to_starlette_response,
        )
        from starlette.concurrency import run_in_threadpool

        async def endpoint(request):
            body = await request.body()
            return to_starlette_response(await run_in_threadpool(app.dispatch, to_bolt_request(request, body)))

    asgi = Starlette(routes=[Route("/slack/events", endpoint, methods=["POST"])])
    # dora-bot serve's options (bot/cli.py): log_config=None, access log on, 25 s graceful stop.
    uvicorn.run(asgi, host="127.0.0.1", port=port, log_config=None, timeout_graceful_shutdown=25)


# === helpers =================================================================================

def http_json(port: int, path: str, timeout: float = 60) -> dict:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        return json.loads(conn.getresponse().read())
    finally:
        conn.close()


def wait_idle(pid: int, *, quiet: float = 1.0, timeout: float = 60) -> None:
    """Until a process used (almost) no CPU for ``quiet`` seconds (start-up work done)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        c0 = proc_cpu(pid)
        time.sleep(quiet)
        if proc_cpu(pid) - c0 < 0.05 * quiet:
            return


class Fake:
    """The fake Slack process."""

    def __init__(self, workdir: Path, latency_ms: float = 0.0):
        port_file = workdir / "fake.port"
        self.log = open(workdir / "fake.log", "wb")  # noqa: SIM115 (open for the process's life)
        self.proc = subprocess.Popen(
            [sys.executable, SELF, "fake", "--port-file", str(port_file), "--latency-ms", str(latency_ms)],
            stdout=self.log, stderr=subprocess.STDOUT, cwd=ROOT,
        )
        deadline = time.monotonic() + 30
        while not port_file.exists() or not port_file.read_text():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the fake Slack did not start")
            time.sleep(0.02)
        self.port = int(port_file.read_text())
        self.url = f"http://127.0.0.1:{self.port}"

    def reset(self) -> None:
        http_json(self.port, "/_bench/reset")

    def summary(self) -> dict:
        return http_json(self.port, "/_bench/summary")

    def wait_response(self, path: str, timeout: float = 30) -> dict:
        return http_json(self.port, f"/_bench/wait?path={path}&timeout={timeout}", timeout=timeout + 10)

    def stop(self) -> None:
        stop_process(self.proc)
        self.log.close()


class Server:
    """dora-bot or the bare app in a process of its own."""

    def __init__(self, kind: str, workdir: Path, fake: Fake, *, db_url: str | None = None, clock_at: str | None = None,
                 adapter: str = "threadpool"):
        self.kind, self.port = kind, free_port()
        self.log_path = workdir / f"server-{kind}{'-' + adapter if kind == 'bare' else ''}.log"
        self.log = open(self.log_path, "ab")  # noqa: SIM115 (open for the process's life)
        own = ("SLACK_", "DORA_", "DATABASE_URL", "INGEST_", "LOG_", "RUN_SCHEDULER", "HOST", "PORT")
        env = {k: v for k, v in os.environ.items() if not k.startswith(own)}
        if kind == "dora":
            cmd = [sys.executable, SELF, "serve-dora"] + (["--clock-at", clock_at] if clock_at else [])
            env.update(DATABASE_URL=db_url, SLACK_BOT_TOKEN=BOT_TOKEN, SLACK_SIGNING_SECRET=SIGNING_SECRET,
                       SLACK_API_URL=fake.url + "/api/", HOST="127.0.0.1", PORT=str(self.port))
        else:
            cmd = [sys.executable, SELF, "serve-bare", "--port", str(self.port), "--adapter", adapter, "--slack-url", fake.url + "/api/"]
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, cwd=workdir, env=env)
        try:
            wait_http(self.port, self.proc)
        except Exception:
            self.stop()
            raise
        self.pid = self.proc.pid

    def stop(self) -> None:
        stop_process(self.proc)
        self.log.close()


def sign(body: bytes, timestamp: str) -> str:
    return "v0=" + hmac.new(SIGNING_SECRET.encode(), b"v0:" + timestamp.encode() + b":" + body, hashlib.sha256).hexdigest()


def command_body(command: str, text: str, response_url: str, *, user: str, n: int) -> bytes:
    """A slash command as Slack sends it (application/x-www-form-urlencoded, Slack's field order)."""
    return urlencode([
        ("token", "verification-token-unused"),
        ("team_id", TEAM_ID),
        ("team_domain", "dora-bench"),
        ("channel_id", "C1"),
        ("channel_name", "general"),
        ("user_id", user),
        ("user_name", user.lower()),
        ("command", command),
        ("text", text),
        ("api_app_id", APP_ID),
        ("is_enterprise_install", "false"),
        ("response_url", response_url),
        ("trigger_id", f"{n}.{TEAM_ID}.{hashlib.md5(f'{user}{n}'.encode()).hexdigest()[:16]}"),
    ]).encode()


def headers_for(body: bytes) -> dict:
    ts = str(int(time.time()))
    return {"Content-Type": "application/x-www-form-urlencoded", "User-Agent": "Slackbot 1.0 (+https://api.slack.com/robots)",
            "X-Slack-Request-Timestamp": ts, "X-Slack-Signature": sign(body, ts)}


# === phase "ack": /deploy against both servers ==================================================

@dataclass
class Sent:
    version: str
    path: str  # the response_url's path on the fake
    acked_at: float  # monotonic


@dataclass
class Client:
    index: int
    port: int
    fake_url: str
    round: int
    ok: list[float] = field(default_factory=list)  # ack latencies (s) in the measured period
    errors: Counter = field(default_factory=Counter)
    acked: list[Sent] = field(default_factory=list)  # every 200 ack, warm-up included

    def run(self, start_measure: float, stop_at: float, interval: float | None) -> None:
        rng = random.Random(self.index * 7919 + self.round)
        conn = KeepAlive(self.port)
        n = 0
        user = f"U{self.index:03d}"
        next_send = time.monotonic() + (rng.expovariate(1 / interval) if interval else 0)
        while True:
            if interval:
                delay = next_send - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                next_send += rng.expovariate(1 / interval)
            if time.monotonic() >= stop_at:
                break
            n += 1
            version = f"v{self.round}.{self.index}.{n}"
            path = f"/response/r{self.round}c{self.index}n{n}"
            text = f"{SERVICES[(self.index + n) % len(SERVICES)]} {version}"
            body = command_body("/deploy", text, self.fake_url + path, user=user, n=n)
            headers = headers_for(body)
            t0 = time.monotonic()
            status, payload = conn.request("POST", "/slack/events", body=body, headers=headers)
            if payload:
                status = f"{status} with a body"
            t1 = time.monotonic()
            if status == 200:
                self.acked.append(Sent(version, path, t1))
            if t0 >= start_measure:
                if status == 200:
                    self.ok.append(t1 - t0)
                else:
                    self.errors[str(status)] += 1
        conn.close()


def load(server: Server, fake: Fake, args, round_: int, rate: float | None, profile_path: Path | None = None) -> dict:
    clients = [Client(i, server.port, fake.url, round_) for i in range(args.clients)]
    interval = args.clients / rate if rate else None
    profile = None
    if profile_path is not None:
        profile = partial(start_py_spy, server.pid, args.duration, profile_path, rate=250,
                          extra=("--threads", *(["--gil"] if args.profile_gil else [])))
    measured = run_load([partial(c.run, interval=interval) for c in clients], warmup=args.warmup, duration=args.duration,
                        pids={"server": server.pid, "fake": fake.proc.pid}, profile=profile, profile_timeout=120)
    elapsed = measured["elapsed"]
    lat = sorted(x for c in clients for x in c.ok)
    errors = sum((c.errors for c in clients), Counter())
    return {
        "ok": len(lat), "errors": dict(errors), "elapsed": elapsed, "rate": len(lat) / elapsed,
        "lat": lat,
        "server_cpu": measured["cpu"]["server"], "client_cpu": measured["own_cpu"],
        "fake_cpu": measured["cpu"]["fake"],
        "acked": [s for c in clients for s in c.acked],
    }


def drain(fake: Fake, acked: list[Sent], timeout: float) -> tuple[dict, float]:
    """Wait until every acked command's reply and card reached the fake (or nothing moves for a while)."""
    want = len(acked)
    last, last_change = (-1, -1), time.monotonic()
    started = time.monotonic()
    while True:
        s = fake.summary()
        now = (len(s["responses"]), len(s["posts"]))
        if now[0] >= want and now[1] >= want:
            return s, time.monotonic() - started
        if now != last:
            last, last_change = now, time.monotonic()
        elif time.monotonic() - last_change > timeout:
            return s, time.monotonic() - started
        time.sleep(0.25)


def count_slack_deploys(url: str) -> tuple[int, int, Counter]:
    """(deploys recorded from Slack, distinct versions, outbox rows by status)."""
    [(n, distinct)], outbox = db_rows(url, "SELECT count(*), count(DISTINCT version) FROM deploy WHERE source = 'slack'",
                                      "SELECT status, count(*) FROM outbox GROUP BY status")
    return n, distinct, Counter(dict(outbox))


def seed_services(url: str) -> None:
    """The benchmark's services in the catalogue, as in a workspace that has been running a while:
    from Slack, a ``/deploy`` naming an unknown service only asks (a typo never splits a history),
    so without them every command would measure the question instead of the deploy."""
    from datetime import UTC, datetime

    add_root()
    from bot.services.lookup import get_or_create_service
    from bot.store.db import make_engine, session_scope

    engine = make_engine(url)
    try:
        with session_scope(engine) as session:
            for name in SERVICES:
                get_or_create_service(session, name, now=datetime.now(UTC))
    finally:
        engine.dispose()


def phase_ack(args, workdir: Path, fake: Fake, rate: float | None) -> dict:
    """One load level (closed loop when ``rate`` is None) against every server, ``args.rounds`` times."""
    label = f"paced {rate:g}/s" if rate else "closed loop"
    adapters = ["threadpool", "stock"] if args.bare == "both" else [args.bare]
    runs: dict[str, list[dict]] = {"dora": [], **{f"bare-{a}": [] for a in adapters}}
    checks = []
    for round_ in range(1, args.rounds + 1):
        for adapter in adapters:
            fake.reset()
            server = Server("bare", workdir, fake, adapter=adapter)
            try:
                r = load(server, fake, args, round_, rate)
            finally:
                server.stop()
            runs[f"bare-{adapter}"].append(r)
            print(f"  {label}, round {round_}, bare ({adapter}): {r['rate']:.0f} acks/s, p50 {latency_stats(r['lat'])['p50_ms']:.1f} ms, "
                  f"p99 {latency_stats(r['lat'])['p99_ms']:.1f} ms, errors {sum(r['errors'].values())}", flush=True)
        fake.reset()
        db = workdir / f"ack-{rate or 'closed'}-{round_}.db"
        url = f"sqlite:///{db}"
        migrate(url)
        seed_services(url)
        server = Server("dora", workdir, fake, db_url=url)
        try:
            wait_idle(server.pid)
            profile = Path(args.profile_dir) / f"slack-profile-ack-{rate or 'closed'}-{round_}.txt" if args.profile else None
            r = load(server, fake, args, round_, rate, profile)
            print(f"  {label}, round {round_}, dora-bot: {r['rate']:.0f} acks/s, p50 {latency_stats(r['lat'])['p50_ms']:.1f} ms, "
                  f"p99 {latency_stats(r['lat'])['p99_ms']:.1f} ms, errors {sum(r['errors'].values())}; "
                  "waiting for replies and cards ...", flush=True)
            summary, waited = drain(fake, r["acked"], timeout=args.drain_timeout)
        finally:
            server.stop()
        if profile is not None:
            r["profile"] = summarize_profile(profile, PROFILE_PROBES, top=12, skip_idle=True, by_thread=True)
        stored, distinct, outbox = count_slack_deploys(url)
        acked = r["acked"]
        by_path = {p: at for p, at, ok in summary["responses"] if ok}
        cards = {}
        for text, at in summary["posts"]:
            m = VERSION_RE.search(text or "")
            if m:
                cards.setdefault(m.group(0), at)
        reply_delay = sorted(by_path[s.path] - s.acked_at for s in acked if s.path in by_path)
        card_delay = sorted(cards[s.version] - s.acked_at for s in acked if s.version in cards)
        check = {
            "round": round_, "acked": len(acked), "stored": stored, "distinct": distinct,
            "replies": len(reply_delay), "cards": len(card_delay), "outbox": dict(outbox),
            "violations": summary["violation_count"], "violation_examples": summary["violations"][:3],
            "methods": summary["methods"], "drain_s": waited,
            "reply_delay": latency_stats(reply_delay), "card_delay": latency_stats(card_delay),
        }
        check["consistent"] = (stored == distinct == len(acked) == check["replies"] == check["cards"]
                               and set(outbox) <= {"sent"} and check["violations"] == 0)
        checks.append(check)
        runs["dora"].append(r)
        print(f"  {label}, round {round_}, checks: stored {stored} / acked {len(acked)}, replies {check['replies']}, "
              f"cards {check['cards']}, "
              f"outbox {dict(outbox)}, violations {check['violations']}, drained in {waited:.1f} s", flush=True)
    result = {"rate": rate, "label": label, "runs": {}, "checks": checks}
    for name, rs in runs.items():
        lat = sorted(x for r in rs for x in r["lat"])
        result["runs"][name] = {
            "ok": len(lat), "errors": dict(sum((Counter(r["errors"]) for r in rs), Counter())),
            "rate": statistics.fmean(r["rate"] for r in rs), **latency_stats(lat),
            "server_cpu": statistics.fmean(r["server_cpu"] for r in rs), "client_cpu": statistics.fmean(r["client_cpu"] for r in rs),
            "fake_cpu": statistics.fmean(r["fake_cpu"] for r in rs),
            "profile": next((r["profile"] for r in rs if r.get("profile")), None),
        }
    bares = {k: v for k, v in result["runs"].items() if k.startswith("bare")}
    best = min(bares, key=lambda k: bares[k]["p50_ms"])
    d, b = result["runs"]["dora"], bares[best]
    result["baseline"] = best
    result["p50_ratio"], result["p99_ratio"] = d["p50_ms"] / b["p50_ms"], d["p99_ms"] / b["p99_ms"]
    result["met"] = (result["p50_ratio"] <= TARGET_P50_RATIO and result["p99_ratio"] <= TARGET_P99_RATIO
                     and not d["errors"] and all(c["consistent"] for c in checks))
    return result


# === phase "dora": /dora on the 1M-deploy history ================================================

def imported_count(url: str) -> int | None:
    from sqlalchemy.exc import DBAPIError

    try:
        [(n,)] = db_rows(url, "SELECT count(*) FROM deploy")
    except DBAPIError:
        return None
    return n


def ensure_imported(url: str, *, sqlite_path: Path | None = None, pg_admin: str | None = None) -> dict:
    """The history in ``url``: reused when it holds exactly the history's deploys, else imported afresh."""
    if sqlite_path is not None and sqlite_path.exists() and imported_count(url) == HISTORY_DEPLOYS:
        return {"reused": True}
    if sqlite_path is None and imported_count(url) == HISTORY_DEPLOYS:
        return {"reused": True}
    history = ensure_history(HISTORY_DEPLOYS)
    if sqlite_path is not None:
        for p in sqlite_path.parent.glob(sqlite_path.name + "*"):
            p.unlink()
    else:
        pg_recreate(url, pg_admin)
    migrate(url)
    print(f"importing {history.name} into {url} (a few minutes) ...", flush=True)
    t0 = time.monotonic()
    subprocess.run([dora_bot_exe(), "import", "--quiet", str(history)], env={**os.environ, "DATABASE_URL": url}, check=True, cwd=ROOT)
    took = time.monotonic() - t0
    print(f"  imported in {took:.0f} s", flush=True)
    return {"reused": False, "import_s": took}


def analyze_pg(url: str) -> bool:
    """VACUUM ANALYZE once after the import, as benchmarks/run.py does (autovacuum would, where it is
    on: it is off on some servers, and the planner has no statistics until then). True if it ran."""
    with pg_connect(url, autocommit=True) as conn:
        analyzed = conn.execute(
            "SELECT coalesce(last_analyze, last_autoanalyze) IS NOT NULL FROM pg_stat_user_tables WHERE relname = 'deploy'"
        ).fetchone()
        if analyzed and analyzed[0]:
            return False
        conn.execute("VACUUM ANALYZE")
        return True


def evict_from_page_cache(db_file: Path) -> int:
    """Drop a SQLite file (and its WAL) from the OS page cache; returns the bytes it had cached."""
    cached = 0
    for path in (db_file, Path(f"{db_file}-wal")):
        if not path.exists():
            continue
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            cached += path.stat().st_size
        finally:
            os.close(fd)
    return cached


def dora_once(server: Server, fake: Fake, form: str, n: int, backend: str) -> dict:
    """One signed /dora: (card seconds from sending, ack ms, problems)."""
    path = f"/response/dora-{backend}-{n}"
    body = command_body("/dora", form, fake.url + path, user="U0DORA", n=n)
    headers = headers_for(body)
    # A new connection each time: uvicorn drops idle keep-alive connections after 5 s.
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    t0 = time.monotonic()
    conn.request("POST", "/slack/events", body=body, headers=headers)
    resp = conn.getresponse()
    ack_body = resp.read()
    t_ack = time.monotonic()
    conn.close()
    got = fake.wait_response(path, timeout=60)
    out = {"ack_ms": (t_ack - t0) * 1000, "card_s": None, "problems": []}
    if resp.status != 200 or ack_body:
        out["problems"].append(f"ack {resp.status} {ack_body[:100]!r}")
    if not got["found"]:
        out["problems"].append("no card within 60 s")
        return out
    if got["response_type"] != "in_channel" or not got["blocks"] or got["status"] != 200:
        out["problems"].append(f"not a card: {got.get('response_type')} {got.get('text')!r}")
    out["card_s"] = got["at"] - t0
    return out


def phase_dora(args, workdir: Path, fake: Fake, backend: str, url: str, sqlite_file: Path | None = None) -> dict:
    """Cold (SQLite: the file dropped from the page cache first; PostgreSQL: the first run after
    start) then ``args.runs`` warm runs of each form."""
    import generate

    clock_at = generate.END.isoformat()
    fake.reset()
    server = Server("dora", workdir, fake, db_url=url, clock_at=clock_at)
    forms: dict[str, dict] = {form: {"card_s": [], "ack_ms": [], "problems": [], "cold_s": None} for form in DORA_FORMS}
    n = 0
    try:
        wait_idle(server.pid, quiet=2.0, timeout=120)  # start-up work (the four-key gauges) done
        for form in DORA_FORMS:
            if sqlite_file is not None:
                evict_from_page_cache(sqlite_file)
            n += 1
            r = dora_once(server, fake, form, n, backend)
            forms[form]["cold_s"] = r["card_s"]
            forms[form]["problems"] += r["problems"]
            time.sleep(args.pause)
        for _ in range(args.runs):
            for form in DORA_FORMS:
                n += 1
                r = dora_once(server, fake, form, n, backend)
                e = forms[form]
                e["problems"] += r["problems"]
                if r["card_s"] is not None:
                    e["card_s"].append(r["card_s"])
                    e["ack_ms"].append(r["ack_ms"])
                time.sleep(args.pause)
        summary = fake.summary()
    finally:
        server.stop()
    out = {"backend": backend, "forms": forms, "violations": summary["violation_count"], "clock_at": clock_at,
           "cold": "the database file dropped from the OS page cache" if sqlite_file is not None else "the first run after start"}
    out["met"] = not out["violations"] and all(
        e["card_s"] and e["cold_s"] is not None and max(e["card_s"] + [e["cold_s"]]) <= TARGET_CARD_S and not e["problems"]
        for e in forms.values()
    )
    for form, e in forms.items():
        cs = e["card_s"]
        cold = f"{e['cold_s']:.2f} s" if e["cold_s"] is not None else "none"
        print(f"  {backend} /dora {form or '(all services, 30 days)'}: cold {cold}; warm min {min(cs):.2f} s, "
              f"median {statistics.median(cs):.2f} s, max {max(cs):.2f} s" if cs else
              f"  {backend} /dora {form}: no cards: {e['problems'][:2]}", flush=True)
    return out


# === profile summary =========================================================================

PROFILE_PROBES = [
    ("uvicorn event loop (HTTP parsing, routing, middleware)", "run_forever"),
    ("Bolt dispatch in Starlette's thread pool (until the ack)", "dispatch (slack_bolt/app/app.py"),
    ("    of which waiting for the ack: `time.sleep(0.01)` polls", "run (slack_bolt/listener/thread_runner.py"),
    ("listener threads (Bolt's listener executor)", "run_ack_function_asynchronously"),
    ("    parse + ack", "deploy_command (bot/slack/listeners/deploy_command.py"),
    ("    record_deploy (database write)", "record_deploy (bot/services/deploys.py"),
    ("    respond() to response_url", "__call__ (slack_bolt/context/respond/respond.py"),
    ("    post_deploy_card (outbox + chat.postMessage)", "post_deploy_card (bot/slack/messaging.py"),
    ("outbox worker thread", "_run (bot/slack/delivery.py"),
    ("logging", "logging/__init__.py"),
    ("Prometheus telemetry", "prometheus_client"),
]


# === the report ==============================================================================

def fmt_ms(v: float) -> str:
    return f"{v:,.1f}" if v < 100 else f"{v:,.0f}"


APP_NAMES = {"dora": "dora-bot (`serve`)", "bare-threadpool": "bare Bolt, dispatch in the thread pool (as `bot/server.py`)",
             "bare-stock": "bare Bolt, stock `SlackRequestHandler` (dispatch on the event loop)"}


def render_ack(args, ack: dict) -> list[str]:
    rate = ack["rate"]
    if rate:
        head = f"### Paced: {rate:g} commands/s offered to every server"
        desc = (f"Each client sends at random (Poisson) times, {rate / args.clients:g} commands/s on average, "
                "waiting for its previous ack first; the same offered load for every server.")
    else:
        head = "### Closed loop: as fast as the acks come back"
        desc = "Each client sends its next command as soon as the previous one is acked."
    lines = ["", head, "", desc, "",
             "| app | acks/s | p50 ms | p90 ms | p99 ms | max ms | errors | server CPU (cores) | fake Slack CPU | client CPU |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for key in ("bare-threadpool", "bare-stock", "dora"):
        r = ack["runs"].get(key)
        if r is None:
            continue
        errs = sum(r["errors"].values())
        lines.append(
            f"| {APP_NAMES[key]} | {r['rate']:,.0f} | {fmt_ms(r['p50_ms'])} | {fmt_ms(r['p90_ms'])} | {fmt_ms(r['p99_ms'])} | "
            f"{fmt_ms(r['max_ms'])} | {errs}{(' ' + json.dumps(r['errors'])) if errs else ''} | {r['server_cpu']:.2f} | "
            f"{r['fake_cpu']:.2f} | {r['client_cpu']:.2f} |"
        )
    lines += [
        "",
        f"Ratios dora-bot / `{ack['baseline']}`: p50 **{ack['p50_ratio']:.2f}x** (target <= {TARGET_P50_RATIO}x), "
        f"p99 **{ack['p99_ratio']:.2f}x** (target <= {TARGET_P99_RATIO}x): " + ("**met**." if ack["met"] else "**missed**."),
    ]
    d = ack["runs"]["dora"]
    for key in ("bare-threadpool", "bare-stock"):
        if key in ack["runs"] and key != ack["baseline"]:
            b = ack["runs"][key]
            lines.append(f"Against `{key}`: p50 {d['p50_ms'] / b['p50_ms']:.2f}x, p99 {d['p99_ms'] / b['p99_ms']:.2f}x.")
    lines += [
        "",
        ("After each dora-bot run every acked command's reply and card must reach the fake, the database must hold "
         "exactly the acked deploys, and every outbox message must be sent. Delays: from the command's ack to the "
         "message's arrival at the fake (every command, warm-up included)."),
        "",
        "| round | acked | deploys stored (distinct versions) | replies | cards | outbox | Block Kit violations"
        " | reply delay p50 / p99 / max | card delay p50 / p99 / max | drained after the run | consistent |",
        "| ---: | ---: | --- | ---: | ---: | --- | ---: | --- | --- | ---: | --- |",
    ]
    for c in ack["checks"]:
        rd, cd = c["reply_delay"], c["card_delay"]
        lines.append(
            f"| {c['round']} | {c['acked']} | {c['stored']} ({c['distinct']}) | {c['replies']} | {c['cards']} | "
            f"{', '.join(f'{k} {v}' for k, v in sorted(c['outbox'].items()))} | {c['violations']} | "
            f"{fmt_ms(rd['p50_ms'])} / {fmt_ms(rd['p99_ms'])} / {fmt_ms(rd['max_ms'])} ms | "
            f"{fmt_ms(cd['p50_ms'])} / {fmt_ms(cd['p99_ms'])} / {fmt_ms(cd['max_ms'])} ms | {c['drain_s']:.1f} s | "
            f"{'yes' if c['consistent'] else '**NO**'} |"
        )
    prof = d.get("profile")
    if prof and prof.get("samples"):
        what = "samples of the thread holding the GIL" if args.profile_gil else "non-idle samples, all threads"
        lines += profile_lines(prof, f"Where dora-bot's time goes (py-spy, {prof['samples']} {what}):")
    return lines


def render(args, info: dict, acks: list[dict], doras: list[dict], argv: list[str]) -> str:
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# Slack speed benchmark",
        "",
        f"Generated by `python benchmarks/slack_bench.py {' '.join(argv)}`".rstrip() + f" on {now}.",
        "",
        f"Machine: {info['cpus']} CPUs, {info['arch']}, Python {info['python']}, SQLite {info['sqlite']}"
        + (f", PostgreSQL {info['postgresql']}" if info.get("postgresql") else "")
        + f", uvicorn {info['uvicorn']} ({info['loop']} loop, {info['http']} parser, for both apps)"
        + f"; load average {info['load_start']:.1f} at start, {os.getloadavg()[0]:.1f} at the end.",
        "",
        ("Every process on 127.0.0.1: this script's client threads, the fake Slack (`tests/fake_slack.py` in a process "
        "of its own, recording arrival times), and the server under test (dora-bot's `serve` command, or the bare Bolt "
        "app), one after the other. Requests are signed like Slack's (`v0=` HMAC-SHA256, `X-Slack-Signature`, "
        "`X-Slack-Request-Timestamp`), form-encoded slash-command bodies with a `response_url` on the fake."),
    ]
    if acks:
        lines += [
            "",
            "## `/deploy` acknowledgement latency",
            "",
            (f"{args.clients} client threads, one keep-alive connection each; {args.warmup:g} s warm-up, then "
            f"{args.duration:g} s measured per server"
            f"{f', {args.rounds} rounds (bare, dora-bot, bare, dora-bot ...), pooled' if args.rounds > 1 else ''}. "
            "Text `<service> v<round>.<client>.<n>` (8 services, every version distinct). Latency: from sending the "
            "request to reading the HTTP 200 ack. dora-bot writes a fresh SQLite file each run."
            + (f" What-if: the fake Slack answers every call after {args.slack_latency_ms:g} ms." if args.slack_latency_ms else "")),
            "",
            (f"Targets: dora-bot p50 <= {TARGET_P50_RATIO}x and p99 <= {TARGET_P99_RATIO}x the bare Bolt app, no errors "
            "(ratios against the faster bare app)."),
        ]
    for ack in acks:
        lines += render_ack(args, ack)
    for d in doras:
        lines += [
            "",
            f"## `/dora` on 1,000,000 deploys ({'SQLite' if d['backend'] == 'sqlite' else 'PostgreSQL'})",
            "",
            (f"History: `benchmarks/generate.py` (1,000,000 deploys, 65,430 incidents, two years, seeded), loaded with "
            f"`dora-bot import`{' and `VACUUM ANALYZE`' if d['backend'] == 'postgresql' else ''}. dora-bot's clock starts at "
            f"the history's end ({d['clock_at']}) and runs on. One command at a time: each form once cold ({d['cold']}), "
            f"then {args.runs} warm runs of each form in turn, {args.pause:g} s apart. Card time: from sending the command "
            "to the card's arrival at the fake (the public reply to `response_url`; dora-bot computes the current and "
            "the previous window)."),
            "",
            f"Target: the card within {TARGET_CARD_S:g} s.",
            "",
            f"| command | ack ms (median) | card, cold ({d['cold']}) | warm: min | median | max | target |",
            "| --- | ---: | ---: | ---: | ---: | ---: | --- |",
        ]
        for form, e in d["forms"].items():
            cs = e["card_s"]
            name = f"`/dora{(' ' + form) if form else ''}`"
            if not cs or e["cold_s"] is None:
                lines.append(f"| {name} | - | - | - | - | - | **missed**: {'; '.join(e['problems'][:2])} |")
                continue
            met = max(cs + [e["cold_s"]]) <= TARGET_CARD_S and not e["problems"]
            lines.append(
                f"| {name} | {statistics.median(e['ack_ms']):.1f} | {e['cold_s']:.2f} s | {min(cs):.2f} s | "
                f"{statistics.median(cs):.2f} s | {max(cs):.2f} s | {'met' if met else '**missed**'}"
                f"{(' (' + '; '.join(e['problems'][:2]) + ')') if e['problems'] else ''} |"
            )
        lines.append("")
        lines.append(f"Block Kit violations in the cards: {d['violations']}.")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["fake"]:
        p = argparse.ArgumentParser(prog="slack_bench.py fake")
        p.add_argument("--port-file", required=True)
        p.add_argument("--latency-ms", type=float, default=0.0)
        a = p.parse_args(argv[1:])
        run_fake(a.port_file, a.latency_ms)
        return 0
    if argv[:1] == ["serve-dora"]:
        p = argparse.ArgumentParser(prog="slack_bench.py serve-dora")
        p.add_argument("--clock-at")
        run_dora(p.parse_args(argv[1:]).clock_at)
        return 0
    if argv[:1] == ["serve-bare"]:
        p = argparse.ArgumentParser(prog="slack_bench.py serve-bare")
        p.add_argument("--port", type=int, required=True)
        p.add_argument("--adapter", choices=["threadpool", "stock"], default="threadpool")
        p.add_argument("--slack-url", required=True)
        a = p.parse_args(argv[1:])
        run_bare(a.port, a.adapter, a.slack_url)
        return 0

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--phase", choices=["ack", "dora", "both"], default="both")
    p.add_argument("--clients", type=int, default=8)
    p.add_argument("--duration", type=float, default=20.0, help="measured seconds per server (after the warm-up)")
    p.add_argument("--warmup", type=float, default=3.0)
    p.add_argument("--rounds", type=int, default=1, help="bare, dora-bot, bare, dora-bot ... (pooled)")
    p.add_argument("--loads", default="closed,40",
                   help="comma-separated load levels: `closed` (as fast as acked) and/or offered commands/s in all (paced)")
    p.add_argument("--bare", choices=["threadpool", "stock", "both"], default="both", help="how the bare Bolt app is served")
    p.add_argument("--slack-latency-ms", type=float, default=0.0, help="what-if: the fake Slack answers after this delay")
    p.add_argument("--drain-timeout", type=float, default=60.0, help="give up waiting for cards after this long without progress")
    p.add_argument("--runs", type=int, default=5, help="warm /dora runs of each form (after one cold run each)")
    p.add_argument("--pause", type=float, default=0.5, help="seconds between /dora commands")
    p.add_argument("--sqlite-db", default=str(DATA / "slack-1m.db"), help="the imported 1M history (SQLite; made if missing)")
    p.add_argument("--pg", action="store_true", help="/dora on PostgreSQL too")
    p.add_argument("--pg-url", default=os.environ.get("BENCH_SLACK_PG_URL", DEFAULT_PG))
    p.add_argument("--no-sqlite", action="store_true", help="/dora on PostgreSQL only (with --pg)")
    p.add_argument("--prepare-only", action="store_true", help="generate and import the history, measure nothing")
    p.add_argument("--profile", action="store_true", help="py-spy dora-bot during the measured /deploy period")
    p.add_argument("--profile-gil", action="store_true", help="with --profile: only samples of the thread holding the GIL")
    p.add_argument("--profile-dir", default=tempfile.gettempdir())
    p.add_argument("--results", default=str(HERE / "SLACK_RESULTS.md"), help="markdown file to write ('-': none)")
    p.add_argument("--json", action="store_true", help="print the raw results as JSON too")
    args = p.parse_args(argv)
    if args.profile and py_spy() is None:
        p.error("--profile needs py-spy (pip install py-spy)")
    try:
        loads = [None if x.strip() == "closed" else float(x) for x in args.loads.split(",") if x.strip()]
    except ValueError:
        p.error("--loads: `closed` or numbers, like closed,40")

    sqlite_path = Path(args.sqlite_db).resolve()
    sqlite_url = f"sqlite:///{sqlite_path}"
    if args.phase in ("dora", "both") or args.prepare_only:
        if not args.no_sqlite:
            ensure_imported(sqlite_url, sqlite_path=sqlite_path)
        if args.pg:
            ensure_imported(args.pg_url, pg_admin=None)
            if analyze_pg(args.pg_url):
                print("PostgreSQL: VACUUM ANALYZE after the import (statistics for the planner)", flush=True)
    if args.prepare_only:
        return 0

    info = machine()
    if args.pg:
        info["postgresql"] = pg_version(args.pg_url)
    workdir = Path(tempfile.mkdtemp(prefix="slack-bench-"))
    fake = Fake(workdir, args.slack_latency_ms)
    acks, doras = [], []
    try:
        if args.phase in ("ack", "both"):
            for rate in loads:
                print(f"/deploy acks, {f'paced {rate:g}/s' if rate else 'closed loop'}:", flush=True)
                acks.append(phase_ack(args, workdir, fake, rate))
        if args.phase in ("dora", "both"):
            print("/dora on 1M deploys:", flush=True)
            if not args.no_sqlite:
                doras.append(phase_dora(args, workdir, fake, "sqlite", sqlite_url, sqlite_path))
            if args.pg:
                doras.append(phase_dora(args, workdir, fake, "postgresql", args.pg_url))
    except BaseException:
        print(f"(server logs kept in {workdir})", file=sys.stderr)
        fake.stop()
        raise
    fake.stop()
    shutil.rmtree(workdir, ignore_errors=True)

    report = render(args, info, acks, doras, argv)
    print()
    print(report)
    if args.json:
        print(json.dumps({"ack": acks, "dora": doras}, indent=2, default=str))
    if args.results != "-":
        write_results(args.results, report)
    if not all(c["consistent"] for a in acks for c in a["checks"]):
        return 2
    return 0 if all(a["met"] for a in acks) and all(d["met"] for d in doras) else 1


if __name__ == "__main__":
    sys.exit(main())
