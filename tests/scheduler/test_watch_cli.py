"""`dora-bot jobs list` shows the watch job; `dora-bot jobs run watches.check` in two processes at
once (real clock; SQLite, and a fresh PostgreSQL database with TEST_DATABASE_URL) posts once."""

from __future__ import annotations

import re
import subprocess
from datetime import datetime, timedelta, timezone

import pytest
from sqlmodel import select

from bot.services import watches
from bot.store.db import make_engine, session_scope, upgrade
from bot.store.models import Watch
from tests.dbutil import load
from tests.scheduler.procs import DORA_BOT, cli_env, run

UTC = timezone.utc
CHANNEL = "C0WATCH"


def watch_that_held_last_hour(db_url: str) -> int:
    """checkout at 50% change fail rate; a `cfr>15%` watch whose condition held at last hour's check."""
    now = datetime.now(UTC)
    engine = make_engine(db_url)
    try:
        records = [{"type": "deploy", "id": f"d{i}", "service": "checkout", "environment": "production", "version": f"1.{i}",
                    "deployed_at": (now - timedelta(days=i)).isoformat(), "status": "success", "change_failure": i <= 2}
                   for i in range(1, 5)]
        assert load(engine, records, now=now).committed
        with session_scope(engine) as s:
            watch = watches.add_watch(s, condition="cfr>15%", channel=CHANNEL, service="checkout", now=now - timedelta(hours=2))
            watch.held_checks, watch.streak_since = 1, watches.check_hour(now) - timedelta(hours=1)
            watch.last_check_at = watch.streak_since
            return watch.id
    finally:
        engine.dispose()


def test_jobs_list_shows_the_watch_and_hint_jobs(db_file, tmp_path):
    result = run(["jobs", "list"], env=cli_env(db_file), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    (line,) = [ln for ln in result.stdout.splitlines() if ln.startswith("watches.check")]
    assert "every 300s" in line and "once per clock hour" in line
    (line,) = [ln for ln in result.stdout.splitlines() if ln.startswith("nudges.commit_hints")]
    assert "every 300s" in line and "commits" in line


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_two_jobs_run_processes_at_once_post_the_firing_once(backend, request, slack, tmp_path):
    if backend == "sqlite":
        url = request.getfixturevalue("db_file")
    else:
        url, _ = request.getfixturevalue("replica_db")
        engine = make_engine(url)
        upgrade(engine)
        engine.dispose()
    watch_id = watch_that_held_last_hour(url)
    env = cli_env(url, slack)
    procs = [subprocess.Popen([DORA_BOT, "jobs", "run", "watches.check"], env=env, cwd=tmp_path,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [p.communicate(timeout=90) for p in procs]
    assert all(p.returncode == 0 for p in procs), outputs
    queued = sorted(re.search(r"watches\.check: (\d+) queued", out).group(1) for out, _ in outputs)
    assert queued == ["0", "1"], outputs
    posts = [p for p in slack.posts(CHANNEL) if p["text"].startswith("Watch #")]
    assert len(posts) == 1 and f"Watch #{watch_id} fired" in posts[0]["text"], posts

    again = run(["jobs", "run", "watches.check"], env, tmp_path)  # the same hour, once more
    assert again.returncode == 0 and "watches.check: 0 queued" in again.stdout, again.stderr
    assert len([p for p in slack.posts(CHANNEL) if p["text"].startswith("Watch #")]) == 1
    engine = make_engine(url)
    try:
        with session_scope(engine, write=False) as s:
            (watch,) = s.exec(select(Watch)).all()
            assert watch.state == "firing"
    finally:
        engine.dispose()
