"""Leadership in-process: one scheduler among replicas (PostgreSQL advisory lock), takeover, robustness.

Each "replica" is a ``Leadership`` with its own Engine and Runtime on one fresh PostgreSQL
database (``replica_db``), polling every 0.2 s instead of 5 s.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime, timezone

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from bot.runtime import Runtime
from bot.scheduler import setup
from bot.scheduler.setup import Leadership
from bot.store.db import make_engine, upgrade
from bot.telemetry import Telemetry
from tests.scheduler.conftest import make_flow, settings_for

UTC = timezone.utc
POLL = 0.2


def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def lock_backend(leadership: Leadership) -> int | None:
    conn = leadership._conn
    return None if conn is None else conn.connection.dbapi_connection.info.backend_pid


@pytest.fixture
def replicas(replica_db, slack, bound_jobs):
    url, _ = replica_db
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    made = []

    def make(n: int) -> list[Leadership]:
        for _ in range(n):
            eng = make_engine(url)
            rt = Runtime(settings=settings_for(eng, slack), engine=eng)
            rt.telemetry = Telemetry()
            made.append(Leadership(rt, poll_seconds=POLL))
        return made

    yield make
    for leadership in made:
        leadership.stop()
        leadership.rt.engine.dispose()


def leaders(group: list[Leadership]) -> list[Leadership]:
    return [g for g in group if g.is_leader]


def test_one_leader_among_three_and_takeover_when_its_connection_dies_or_it_stops(replicas, replica_db):
    url, name = replica_db
    group = replicas(3)
    for g in group:
        g.start()
    first = wait_for(lambda: leaders(group), 5, "a leader")
    time.sleep(3 * POLL)  # several polls: still exactly one
    (first,) = leaders(group)
    assert [g.rt.telemetry.scheduler_leader._value.get() for g in group].count(1) == 1
    assert first.scheduler is not None and first.scheduler.running
    assert all(g.scheduler is None for g in group if g is not first)

    # The leader's lock connection is killed (database failover, network, idle timeout):
    # it steps down at its next poll and someone (maybe itself, reconnected) takes over.
    admin = create_engine(make_url(url), isolation_level="AUTOCOMMIT")
    try:
        old_scheduler = first.scheduler
        with admin.connect() as conn:
            assert conn.execute(text("SELECT pg_terminate_backend(:p)"), {"p": lock_backend(first)}).scalar()
        wait_for(lambda: not old_scheduler.running, 5, "the old leader to stop its scheduler")
        new = wait_for(lambda: leaders(group), 5, "a new leader")
        time.sleep(3 * POLL)
        (new,) = leaders(group)
        with admin.connect() as conn:
            holders = conn.execute(text(
                "SELECT l.pid FROM pg_locks l JOIN pg_database d ON d.oid = l.database "
                "WHERE l.locktype = 'advisory' AND l.granted AND d.datname = :db"
            ), {"db": name}).scalars().all()
        assert holders == [lock_backend(new)]
    finally:
        admin.dispose()

    # A graceful stop releases the lock at once: another replica leads within a poll or two.
    new.stop()
    stopped_at = time.monotonic()
    rest = [g for g in group if g is not new]
    wait_for(lambda: leaders(rest), 5 * POLL + 2, "a replica to take over after a graceful stop")
    assert time.monotonic() - stopped_at < 5 * POLL + 2


def test_the_leader_runs_the_job_from_the_postgresql_job_store(replicas, slack):
    """The scheduler's jobs are stored in PostgreSQL (apscheduler_jobs) and run from there."""
    from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED

    group = replicas(2)
    for g in group:
        g.start()
    (leader,) = wait_for(lambda: leaders(group), 5, "a leader")
    ran, outcomes = threading.Event(), []

    def listener(event):
        # Both jobs run once as soon as a replica leads; on a slow machine the digest job's first
        # run can end after this listener is added. Record every run, wait for the one we asked for.
        outcomes.append((event.job_id, event.exception))
        if event.job_id == "reminders.send_due":
            ran.set()

    leader.scheduler.add_listener(listener, EVENT_JOB_EXECUTED | EVENT_JOB_ERROR)
    leader.scheduler.modify_job("reminders.send_due", next_run_time=datetime.now(UTC))
    assert ran.wait(10)
    assert ("reminders.send_due", None) in outcomes
    assert [job for job, error in outcomes if error is not None] == []
    with leader.rt.engine.connect() as conn:
        stored = set(conn.execute(text("SELECT id FROM apscheduler_jobs")).scalars())
    assert stored == {"digests.send_due", "reminders.send_due", "watches.check", "nudges.commit_hints"}


def test_a_failure_while_starting_the_scheduler_is_retried_at_the_next_poll(sqlite_engine, slack, bound_jobs, monkeypatch):
    """A database hiccup just as a replica becomes leader (the job store is written then) must not
    leave the process without a scheduler for good -- on PostgreSQL it would also keep the lock, so
    no other replica could take over."""
    real = setup.build_scheduler
    calls = []

    def flaky(rt):
        calls.append(1)
        if len(calls) == 1:
            raise OperationalError("INSERT INTO apscheduler_jobs ...", {}, Exception("server closed the connection unexpectedly"))
        return real(rt)

    monkeypatch.setattr(setup, "build_scheduler", flaky)
    flow = make_flow(sqlite_engine, slack)
    leadership = Leadership(flow.rt, poll_seconds=POLL).start()
    try:
        deadline = time.monotonic() + 5 * POLL + 1
        while not leadership.is_leader and time.monotonic() < deadline:
            time.sleep(0.05)
        assert leadership.is_leader, (
            f"no scheduler after the failed start: build_scheduler called {len(calls)} time(s); "
            f"leadership thread alive: {leadership._thread.is_alive()}"
        )
    finally:
        leadership.stop()
