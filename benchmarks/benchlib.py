"""What the benchmark scripts share: statistics, processes and ports, py-spy, databases, reports.

Used by ``ingest_bench.py``, ``slack_bench.py`` and ``run.py``, and (``local_days``,
``days_per_week`` only) by the plain-code floors ``floor_sqlite.py`` and ``floor_pg.py``.

Importing it is cheap and loads nothing of dora-bot's: ``floor_sqlite.py load`` is timed as a
whole process, so the heavier standard modules (``http.client``, ``subprocess``, ``socket`` ...),
and dora-bot, SQLAlchemy and psycopg, are imported by the functions that use them.
"""

from __future__ import annotations

import os
import sys
import time
from collections import Counter
from datetime import date, datetime, timedelta, tzinfo
from pathlib import Path

TYPE_CHECKING = False
if TYPE_CHECKING:
    import subprocess
    from collections.abc import Callable

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
ANALYSIS_MARK = "## Analysis"  # a results file's hand-written part from this heading on is kept


# --- statistics ------------------------------------------------------------------------------

def percentile(sorted_values: list[float], q: float) -> float:
    """Linear interpolation, like numpy's default / percentile_cont."""
    if not sorted_values:
        return float("nan")
    pos = (len(sorted_values) - 1) * q
    lo = int(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def latency_stats(sorted_latencies: list[float]) -> dict:
    """p50/p90/p99/max/mean in milliseconds of latencies in seconds (NaN when there are none)."""
    import statistics

    lat = sorted_latencies
    return {
        "p50_ms": percentile(lat, 0.50) * 1000, "p90_ms": percentile(lat, 0.90) * 1000,
        "p99_ms": percentile(lat, 0.99) * 1000, "max_ms": (lat[-1] if lat else float("nan")) * 1000,
        "mean_ms": (statistics.fmean(lat) if lat else float("nan")) * 1000,
    }


# --- CPU and load -------------------------------------------------------------------------------

def proc_cpu(pid: int) -> float:
    """User + system CPU seconds of a process (Linux /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return float("nan")


def own_cpu() -> float:
    """User + system CPU seconds of this process so far."""
    t = os.times()
    return t.user + t.system


def run_load(clients: list[Callable[[float, float], None]], *, warmup: float, duration: float, pids: dict[str, int],
             clock: Callable[[], float] = time.monotonic, profile: Callable[[], subprocess.Popen] | None = None,
             profile_timeout: float = 60) -> dict:
    """Each client ``run(start_measure, stop_at)`` (times on ``clock``) in a thread of its own, for
    ``warmup`` then ``duration`` seconds. ``profile``: starts a profiler when the measured period
    begins. Returns the measured period's length (``elapsed``), the CPU (cores) the processes
    ``pids`` used during it (``cpu``, by the same keys) and this process's (``own_cpu``)."""
    import threading

    start_measure = clock() + warmup
    stop_at = start_measure + duration
    threads = [threading.Thread(target=run, args=(start_measure, stop_at)) for run in clients]
    for t in threads:
        t.start()
    time.sleep(max(0.0, start_measure - clock()))
    cpu0, own0 = {k: proc_cpu(pid) for k, pid in pids.items()}, own_cpu()
    profiler = profile() if profile is not None else None
    for t in threads:
        t.join()
    elapsed = clock() - start_measure
    cpu1, own1 = {k: proc_cpu(pid) for k, pid in pids.items()}, own_cpu()
    if profiler is not None:
        profiler.wait(timeout=profile_timeout)
    return {"elapsed": elapsed, "cpu": {k: (cpu1[k] - cpu0[k]) / elapsed for k in pids}, "own_cpu": (own1 - own0) / elapsed}


# --- processes and ports --------------------------------------------------------------------------

def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(port: int, proc: subprocess.Popen, path: str = "/healthz", *, want: int | None = None,
              timeout: float = 60) -> None:
    """Until the server ``proc`` answers ``GET path`` on 127.0.0.1:``port`` (with status ``want``, or any)."""
    import http.client

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode}")
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        try:
            conn.request("GET", path)
            resp = conn.getresponse()
            resp.read()
            if want is None or resp.status == want:
                return
        except (OSError, http.client.HTTPException):
            pass
        finally:
            conn.close()
        time.sleep(0.05)
    raise RuntimeError(f"the server did not answer GET {path} within {timeout:g} s")


def stop_process(proc: subprocess.Popen, timeout: float = 40) -> None:
    """SIGTERM (a graceful stop), then SIGKILL after ``timeout`` seconds."""
    import subprocess

    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class KeepAlive:
    """A load client's keep-alive HTTP/1.1 connection to 127.0.0.1:``port``: opened when first
    needed, and again after a failed request or a ``Connection: close``."""

    def __init__(self, port: int, timeout: float = 30):
        import http.client

        self.port, self.timeout, self.conn = port, timeout, None
        self._connection = http.client.HTTPConnection
        self._errors = (OSError, http.client.HTTPException)

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None) -> tuple[int | str, bytes]:
        """(the HTTP status, the body read), or (the name of the exception, b"") if the request failed."""
        try:
            if self.conn is None:
                self.conn = self._connection("127.0.0.1", self.port, timeout=self.timeout)
            self.conn.request(method, path, body=body, headers=headers or {})
            resp = self.conn.getresponse()
            payload = resp.read()
            if resp.getheader("connection", "").lower() == "close":
                self.close()
            return resp.status, payload
        except self._errors as exc:
            self.close()
            return type(exc).__name__, b""

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


# --- dora-bot and its databases -------------------------------------------------------------------

def add_root() -> None:
    """Make this checkout's packages (``bot``, ``tests``) importable."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))


def dora_bot_exe() -> str:
    """The ``dora-bot`` command of this interpreter's environment."""
    exe = Path(sys.executable).with_name("dora-bot")
    return str(exe) if exe.exists() else "dora-bot"


def migrate(url: str) -> None:
    """``dora-bot db upgrade`` on ``url``: the schema as the product creates it (not timed)."""
    import subprocess

    r = subprocess.run([dora_bot_exe(), "db", "upgrade"], env={**os.environ, "DATABASE_URL": url}, cwd=ROOT,
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"dora-bot db upgrade failed ({r.returncode}):\n{r.stderr[-3000:]}")


def db_rows(url: str, *statements: str) -> list[list[tuple]]:
    """The rows of each statement, run through dora-bot's own engine for ``url``."""
    add_root()
    from sqlalchemy import text

    from bot.store.db import make_engine

    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return [[tuple(row) for row in conn.execute(text(sql))] for sql in statements]
    finally:
        engine.dispose()


def pg_connect(url: str, *, database: str | None = None, autocommit: bool = False):
    """A psycopg connection for a SQLAlchemy URL (``postgresql+psycopg://user@host:port/db``), to its
    database or to ``database`` on the same server."""
    import psycopg
    from sqlalchemy.engine import make_url

    u = make_url(url)
    return psycopg.connect(host=u.host, port=u.port or 5432, user=u.username, password=u.password,
                           dbname=database or u.database or "postgres", autocommit=autocommit)


def _pg_admin(url: str, admin: str | None):
    """A connection allowed to create and drop ``url``'s database: ``admin``, or the same server's ``postgres``."""
    return pg_connect(admin, autocommit=True) if admin else pg_connect(url, database="postgres", autocommit=True)


def pg_recreate(url: str, admin: str | None = None) -> None:
    """``url``'s database, dropped (connections and all) if it exists and created empty."""
    from sqlalchemy.engine import make_url

    name = make_url(url).database
    with _pg_admin(url, admin) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def pg_drop(url: str, admin: str | None = None) -> None:
    from sqlalchemy.engine import make_url

    with _pg_admin(url, admin) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)')


def pg_version(url: str, *, database: str | None = None) -> str | None:
    """The server's version, or None if it cannot be reached."""
    import psycopg

    try:
        with pg_connect(url, database=database) as conn:
            return conn.execute("SHOW server_version").fetchone()[0]
    except psycopg.Error:
        return None


def ensure_history(deploys: int) -> Path:
    """``generate.py``'s seeded history of ``deploys`` deploys in benchmarks/data, written if it is not there."""
    import generate

    path = generate.default_path(deploys)
    if not path.exists():
        print(f"generating {path} ...", flush=True)
        generate.main(["--deploys", str(deploys)])
    return path


# --- py-spy --------------------------------------------------------------------------------------

IDLE_LEAVES = frozenset(("select", "poll", "epoll_wait", "wait", "_wait_for_tstate_lock", "acquire", "sleep", "accept",
                         "recv_into", "readinto", "_worker"))


def py_spy() -> str | None:
    """py-spy of this interpreter's environment, or on the PATH."""
    import shutil

    local = Path(sys.executable).parent / "py-spy"
    return str(local) if local.exists() else shutil.which("py-spy")


def start_py_spy(pid: int, seconds: float, output: Path, *, rate: int, extra: tuple[str, ...] = ()) -> subprocess.Popen:
    """py-spy recording ``pid`` for ``seconds`` into ``output`` (raw: collapsed stacks), in the background."""
    import subprocess

    return subprocess.Popen(
        [py_spy(), "record", "--pid", str(pid), "--duration", str(int(seconds)), "--rate", str(rate),
         "--format", "raw", "--output", str(output), "--nonblocking", *extra],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )


def summarize_profile(path: Path, probes: list[tuple[str, str]], *, top: int = 15, skip_idle: bool = False,
                      by_thread: bool = False) -> dict:
    """Shares of py-spy's samples (raw: one ``frame;frame;... count`` a line).

    ``probes``: (label, needle): the samples with a frame containing the needle (or one of its
    ``|``-separated alternatives). ``bot_inclusive``: the ``top`` dora-bot frames, each counted once
    a stack. ``skip_idle``: samples whose innermost frame waits (``IDLE_LEAVES``) are left out.
    ``by_thread``: the samples per thread too (stacks recorded with ``--threads`` start with it).
    """
    if not path.exists():
        return {"error": "no profile written (py-spy missing or not permitted)"}
    needles = [(label, needle.split("|")) for label, needle in probes]
    total, hits, inclusive, threads = 0, Counter(), Counter(), Counter()
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        n = int(count)
        frames = stack.split(";")
        if skip_idle and frames[-1].split(" (")[0] in IDLE_LEAVES:
            continue
        total += n
        if by_thread:
            threads[frames[0].split(" (")[0]] += n
        for label, parts in needles:
            if any(part in f for f in frames for part in parts):
                hits[label] += n
        for f in set(frames):
            if "(bot/" in f:
                inclusive[f] += n
    out = {"samples": total, "probes": [(label, hits[label]) for label, _ in probes], "bot_inclusive": inclusive.most_common(top)}
    if by_thread:
        out["threads"] = threads.most_common(8)
    return out


def profile_lines(prof: dict, heading: str) -> list[str]:
    """A ``summarize_profile`` result in markdown: the probes' shares, then the busiest dora-bot frames."""
    total = max(prof["samples"], 1)
    lines = ["", heading, "", "| stacks containing | share |", "| --- | ---: |"]
    lines += [f"| {label.replace('  ', '&nbsp;&nbsp;')} | {100 * n / total:.1f}% |" for label, n in prof["probes"]]
    lines += ["", "Busiest dora-bot frames (inclusive):", ""]
    lines += [f"- {100 * n / total:.1f}% `{frame}`" for frame, n in prof["bot_inclusive"][:10]]
    return lines


# --- the machine and the report -------------------------------------------------------------------

def uvicorn_auto() -> tuple[str, str]:
    """The event loop and HTTP parser uvicorn's defaults (loop="auto", http="auto") take here."""
    import importlib.util

    loop = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
    http = "httptools" if importlib.util.find_spec("httptools") else "h11"
    return loop, http


def machine() -> dict:
    import importlib.metadata
    import platform
    import sqlite3

    try:
        uvicorn = importlib.metadata.version("uvicorn")
    except importlib.metadata.PackageNotFoundError:
        uvicorn = None
    loop, http = uvicorn_auto()
    return {
        "cpus": os.cpu_count(), "arch": platform.machine(), "platform": platform.platform(),
        "python": platform.python_version(), "sqlite": sqlite3.sqlite_version,
        "load_start": os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan"),
        "uvicorn": uvicorn, "loop": loop, "http": http,
    }


def write_results(path: str | Path, report: str) -> None:
    """``report`` into a results file, keeping the file's hand-written part (from ``ANALYSIS_MARK`` on)."""
    out = Path(path)
    old = out.read_text() if out.exists() else ""
    kept = "\n" + old[old.index(ANALYSIS_MARK):] if ANALYSIS_MARK in old else ""
    out.write_text(report + kept)


# --- the floors' deploy days ------------------------------------------------------------------------

def local_days(start: datetime, end: datetime, days: int, zone: tzinfo) -> tuple[date, list[tuple[int, datetime, datetime]]]:
    """The local dates the deploy-days-per-week blocks look at: (the last date, [(i, lo, hi)]) for
    date ``last - i days`` and [lo, hi) its part of [start, end), dates outside the window left out."""
    last = (end - timedelta(microseconds=1)).astimezone(zone).date()
    span = max(7 * (days // 7), 30 * max(1, days // 30))
    bounds = []
    for i in range(span):
        d = last - timedelta(days=i)
        nx = d + timedelta(days=1)
        lo = max(datetime(d.year, d.month, d.day, tzinfo=zone), start)
        hi = min(datetime(nx.year, nx.month, nx.day, tzinfo=zone), end)
        if lo < hi:
            bounds.append((i, lo, hi))
    return last, bounds


def days_per_week(last: date, hit: set[date], days: int) -> float:
    """The median over the window's whole weeks (back from ``last``) of the dates with a deploy (``hit``)."""
    weeks = [sum(1 for j in range(7) if last - timedelta(days=b * 7 + j) in hit) for b in range(days // 7)]
    return float(percentile(sorted(weeks), 0.5))
