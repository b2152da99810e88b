"""The scheduler's jobs: named module-level functions, so the persistent job store can hold them.

A job finds the application through ``bind(rt)`` (called once by the composition root), never
through a closure. ``dora-bot jobs run ID`` calls the same functions. Every job body is
idempotent: the unique delivery and reminder records decide what is sent, not the scheduler.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable

from bot.runtime import Runtime
from bot.services import digests, nudges, reminders, watches
from bot.store.db import session_scope

log = logging.getLogger(__name__)
_runtime: Runtime | None = None


def bind(rt: Runtime) -> None:
    global _runtime
    _runtime = rt


def runtime() -> Runtime:
    if _runtime is None:
        raise RuntimeError("scheduler jobs are not bound to a runtime: call bot.scheduler.jobs.bind(rt)")
    return _runtime


def send_due_digests() -> int:
    """Queue every digest whose current period has not been delivered; returns how many."""
    rt = runtime()
    now = rt.now()
    queued = 0
    with session_scope(rt.engine) as session:
        for sub, period in digests.due_subscriptions(session, now):
            if digests.deliver(session, sub, period.key, now=now):
                queued += 1
                log.info("digest %s for period %s queued", sub.id, period.key)
    return queued  # the commit woke the outbox worker


def send_due_reminders() -> int:
    """Queue the acknowledge and update reminders that are due; returns how many."""
    rt = runtime()
    now = rt.now()
    queued = 0
    with session_scope(rt.engine) as session:
        for incident, kind, due in reminders.due_reminders(
            session, now=now, ack_after=rt.settings.ack_reminder, update_every=rt.settings.update_reminder
        ):
            if reminders.record_reminder(session, incident, kind, due, now=now):
                queued += 1
    return queued  # the commit woke the outbox worker


def check_watches() -> int:
    """Check every metric watch for the current clock hour (once per hour each); returns how many
    fired or cleared."""
    rt = runtime()
    results = watches.check_all(
        rt.engine, now=rt.now(), timezone_name=rt.settings.timezone_name, production_environments=rt.settings.production_environments
    )
    return sum(1 for r in results if r.transition)  # the commits woke the outbox worker


def send_commit_hints() -> int:
    """Hint at sending commits under recent production deploys that came without; returns how many."""
    rt = runtime()
    return nudges.send_commit_hints(rt.engine, now=rt.now(), production_environments=rt.settings.production_environments)


@dataclass(frozen=True)
class JobSpec:
    id: str
    func: Callable[[], int]
    seconds: int
    description: str

    @property
    def ref(self) -> str:
        return f"{self.func.__module__}:{self.func.__name__}"


JOBS = (
    JobSpec("digests.send_due", send_due_digests, 60, "post digests whose period has come (weekly/daily)"),
    JobSpec("reminders.send_due", send_due_reminders, 60, "remind unacknowledged and quiet open incidents"),
    # Every 5 minutes, but each watch is checked once per clock hour (the hour is the check's key).
    JobSpec("watches.check", check_watches, 300, "check metric watches, each once per clock hour"),
    JobSpec("nudges.commit_hints", send_commit_hints, 300, "hint at sending commits under deploys that came without"),
)


def get(job_id: str) -> JobSpec:
    for job in JOBS:
        if job.id == job_id:
            return job
    raise KeyError(job_id)
