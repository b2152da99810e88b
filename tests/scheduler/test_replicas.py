"""Two real `dora-bot serve` replicas on one PostgreSQL database: one leader, one digest, failover.

Needs TEST_DATABASE_URL (a PostgreSQL server); the test makes its own fresh database there and
drops it afterwards. It takes about 75 s: the scheduler's interval jobs run every 60 s
(``bot/scheduler/jobs.py`` JOBS, not configurable) and APScheduler first runs an interval job one
interval after the scheduler starts, so the leader's first digest run comes ~60 s after start.
After the leader is killed (-9), the newly due digest is run with `dora-bot jobs run` (the same
job code) twice at once instead of waiting another minute for the new leader's first run.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from bot.scheduler.setup import LOCK_KEY
from bot.services import digests
from bot.store.db import make_engine, session_scope
from tests.scheduler.conftest import DIGEST_CHANNEL
from tests.scheduler.procs import DORA_BOT, Replica, cli_env, wait_until
from tests.slack.harness import SIGNING_SECRET, message_text

UTC = timezone.utc
PNG = b"\x89PNG\r\n\x1a\n"
pytestmark = pytest.mark.skipif(
    not os.environ.get("TEST_DATABASE_URL"),
    reason="several replicas need PostgreSQL: set TEST_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/test",
)


def lock_holder_backend(engine, dbname: str) -> list[int]:
    """Backend pids holding the scheduler's advisory lock in ``dbname`` (bigint key: classid/objid)."""
    with engine.connect() as conn:
        return list(conn.execute(text(
            "SELECT l.pid FROM pg_locks l JOIN pg_database d ON d.oid = l.database "
            "WHERE l.locktype = 'advisory' AND l.granted AND d.datname = :db "
            "AND l.classid = :hi AND l.objid = :lo AND l.objsubid = 1"
        ), {"db": dbname, "hi": LOCK_KEY >> 32, "lo": LOCK_KEY & 0xFFFFFFFF}).scalars())


def os_process_of_backend(engine, backend_pid: int, candidates: list[Replica]) -> Replica | None:
    """Which replica owns the client end of that PostgreSQL connection (/proc socket inodes)."""
    with engine.connect() as conn:
        client_port = conn.execute(text("SELECT client_port FROM pg_stat_activity WHERE pid = :p"), {"p": backend_pid}).scalar()
    if not client_port:
        return None
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            parts = line.split()
            if int(parts[1].rsplit(":", 1)[1], 16) == client_port:
                inodes.add(parts[9])
    for replica in candidates:
        try:
            fds = os.listdir(f"/proc/{replica.proc.pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(f"/proc/{replica.proc.pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("socket:[") and target[8:-1] in inodes:
                return replica
    return None


def add_due_subscription(url: str, service_note: str) -> int:
    engine = make_engine(url)
    try:
        with session_scope(engine) as s:
            return digests.add_subscription(s, channel=DIGEST_CHANNEL, timezone="Europe/Berlin",
                                            actor=service_note, now=datetime.now(UTC) - timedelta(days=8)).id
    finally:
        engine.dispose()


def digest_posts_of(slack, sub_id: int) -> list[dict]:
    return [p for p in slack.posts(DIGEST_CHANNEL) if "DORA digest" in p["text"] and f"Digest #{sub_id}:" in message_text(p)]


def test_two_replicas_one_leader_one_digest_and_failover_after_kill_9(replica_db, slack, tmp_path):
    url, dbname = replica_db
    env = cli_env(url, slack, SLACK_SIGNING_SECRET=SIGNING_SECRET, LOG_LEVEL="INFO")
    upgraded = subprocess.run([DORA_BOT, "db", "upgrade"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert upgraded.returncode == 0, upgraded.stderr
    first_sub = add_due_subscription(url, "U1")  # due before the replicas start

    observer = create_engine(make_url(url), isolation_level="AUTOCOMMIT")
    replicas = [Replica("replica-a", env, tmp_path), Replica("replica-b", env, tmp_path)]
    started = time.monotonic()
    try:
        for r in replicas:
            wait_until(lambda r=r: r.get("/healthz")[0] == 200 or not r.alive(), 40, f"{r.name} to serve")
            assert r.alive(), f"{r.name} died:\n{r.output()}"

        # Exactly one leader: by its gauge, and by the advisory lock's owner in pg_locks.
        wait_until(lambda: sorted(r.leader_gauge() or 0 for r in replicas) == [0, 1], 20, "one leader gauge")
        (leader,) = [r for r in replicas if r.leader_gauge() == 1]
        (follower,) = [r for r in replicas if r is not leader]
        t_leader = time.monotonic() - started
        (backend,) = lock_holder_backend(observer, dbname)
        assert os_process_of_backend(observer, backend, replicas) is leader

        # The leader's scheduler runs the digest job a minute after it started: one digest, one chart.
        wait_until(lambda: digest_posts_of(slack, first_sub), 80, "the scheduled digest")
        wait_until(lambda: slack.shared_files(DIGEST_CHANNEL), 15, "the digest chart")
        t_digest = time.monotonic() - started
        time.sleep(2)
        assert len(digest_posts_of(slack, first_sub)) == 1
        (chart,) = slack.shared_files(DIGEST_CHANNEL)
        assert chart["data"].startswith(PNG)
        assert leader.leader_gauge() == 1 and follower.leader_gauge() == 0

        # kill -9 the leader: its connection drops, the lock is free, the follower takes it.
        leader.proc.send_signal(signal.SIGKILL)
        leader.proc.wait(10)
        killed_at = time.monotonic()
        wait_until(lambda: follower.leader_gauge() == 1, 15, "the follower to become leader")
        takeover = time.monotonic() - killed_at
        (backend2,) = wait_until(lambda: lock_holder_backend(observer, dbname), 5, "the lock in pg_locks")
        assert backend2 != backend
        assert os_process_of_backend(observer, backend2, replicas) is follower

        # A newly due digest, run by two `jobs run` processes at once while the new leader serves.
        second_sub = add_due_subscription(url, "U2")
        runs = [subprocess.Popen([DORA_BOT, "jobs", "run", "digests.send_due"], env=env, cwd=tmp_path,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
        outputs = [p.communicate(timeout=60) for p in runs]
        assert all(p.returncode == 0 for p in runs), outputs
        queued = sorted(re.search(r"digests\.send_due: (\d+) queued", out).group(1) for out, _ in outputs)
        assert queued == ["0", "1"], outputs
        wait_until(lambda: digest_posts_of(slack, second_sub), 15, "the second digest")
        wait_until(lambda: len(slack.shared_files(DIGEST_CHANNEL)) == 2, 15, "the second chart (the serving replica's worker)")
        time.sleep(2)
        assert len(digest_posts_of(slack, second_sub)) == 1
        assert len(digest_posts_of(slack, first_sub)) == 1, "the first digest was not posted again"
        assert len([p for p in slack.posts(DIGEST_CHANNEL) if "DORA digest" in p["text"]]) == 2
        print(f"\nleader {leader.name} after {t_leader:.1f}s, scheduled digest after {t_digest:.1f}s, "
              f"takeover after kill -9 in {takeover:.1f}s, replicas phase {time.monotonic() - started:.0f}s")
        assert takeover <= 15
    except AssertionError:
        for r in replicas:
            print(f"--- {r.name} (alive={r.alive()}) ---\n{r.output()}")
        raise
    finally:
        for r in replicas:
            r.stop()
        observer.dispose()
