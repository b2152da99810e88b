"""APScheduler 3.11: persistent job store on the application database, explicit time zone,
misfire grace and coalescing, and leadership so only one replica schedules.

On PostgreSQL the leader holds a session-level advisory lock on a dedicated connection
(https://www.postgresql.org/docs/current/explicit-locking.html#ADVISORY-LOCKS); when that process
dies its connection closes, the lock is released, and another replica takes over within one poll.
On SQLite there is one process, which is the leader.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timezone

from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import text

from bot.runtime import Runtime
from bot.scheduler import jobs

log = logging.getLogger(__name__)
LOCK_KEY = 0x0D0_7A_B07  # one bigint for "the dora-bot scheduler"
MISFIRE_GRACE_SECONDS = 300


def build_scheduler(rt: Runtime) -> BackgroundScheduler:
    """A scheduler with every job of ``jobs.JOBS`` registered (not started)."""
    jobs.bind(rt)
    scheduler = BackgroundScheduler(
        timezone=rt.settings.tz,
        jobstores={"default": SQLAlchemyJobStore(engine=rt.engine, tablename="apscheduler_jobs")},
        job_defaults={"coalesce": True, "misfire_grace_time": MISFIRE_GRACE_SECONDS, "max_instances": 1},
    )
    started = datetime.now(timezone.utc)
    for spec in jobs.JOBS:
        # First run at once: a digest missed while no process was leader goes out on start.
        scheduler.add_job(
            spec.ref, trigger=IntervalTrigger(seconds=spec.seconds, timezone=rt.settings.tz), id=spec.id,
            name=spec.description, replace_existing=True, next_run_time=started,
        )
    return scheduler


class Leadership:
    """Runs the scheduler only while this process holds the leader lock."""

    def __init__(self, rt: Runtime, *, poll_seconds: float = 5.0):
        self.rt = rt
        self.poll = poll_seconds
        self.scheduler: BackgroundScheduler | None = None
        self._conn = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="scheduler-leader", daemon=True)
        self.is_leader = False

    def start(self) -> "Leadership":
        self._thread.start()
        return self

    def _try_lock(self) -> bool:
        if self.rt.engine.dialect.name != "postgresql":
            return True
        try:
            if self._conn is None:
                self._conn = self.rt.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            return bool(self._conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": LOCK_KEY}).scalar())
        except Exception:
            log.exception("could not ask for the scheduler lock")
            self._drop_connection()
            return False

    def _still_holding(self) -> bool:
        if self.rt.engine.dialect.name != "postgresql":
            return True
        try:
            self._conn.execute(text("SELECT 1"))
            return True
        except Exception:
            log.warning("lost the database connection that holds the scheduler lock")
            self._drop_connection()
            return False

    def _drop_connection(self) -> None:
        if self._conn is not None:
            try:
                self._conn.invalidate()
                self._conn.close()
            except Exception:
                pass
        self._conn = None

    def _become_leader(self) -> None:
        self.scheduler = build_scheduler(self.rt)
        telemetry = self.rt.telemetry
        if telemetry is not None:
            def count(event):
                telemetry.job_runs.labels(event.job_id, "error" if event.exception else "ok").inc()

            self.scheduler.add_listener(count, EVENT_JOB_EXECUTED | EVENT_JOB_ERROR)
            telemetry.scheduler_leader.set(1)
        self.scheduler.start()
        self.is_leader = True
        log.info("this process runs the scheduler")

    def _step_down(self) -> None:
        if self.scheduler is not None and self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        self.scheduler = None
        self.is_leader = False
        if self.rt.telemetry is not None:
            self.rt.telemetry.scheduler_leader.set(0)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                if not self.is_leader:
                    if self._try_lock():
                        self._become_leader()
                elif not self._still_holding():
                    self._step_down()
            except Exception:
                # e.g. the job store's table could not be created: give the lock back and try
                # again at the next poll rather than leave the cluster without a scheduler.
                log.exception("could not start the scheduler; retrying in %ss", self.poll)
                self._step_down()
                self._release_lock()
            self._stop.wait(self.poll)

    def _release_lock(self) -> None:
        if self._conn is not None:
            try:
                self._conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": LOCK_KEY})
            except Exception:
                self._drop_connection()

    def stop(self) -> None:
        """Stop scheduling and release the lock (graceful shutdown)."""
        self._stop.set()
        self._thread.join(timeout=self.poll + 5)
        if self.scheduler is not None:
            self.scheduler.shutdown(wait=True)
            self.scheduler = None
        self._release_lock()
        self._drop_connection()
        self.is_leader = False
