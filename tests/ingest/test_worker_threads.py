"""The ingest API's hand-off to worker threads (``bot.ingest.http.WorkerThreads``)."""

from __future__ import annotations

import asyncio
import contextvars
import threading
import time

import pytest

from bot.ingest.http import WorkerThreads

where = contextvars.ContextVar("where", default=None)


def test_a_call_runs_off_the_loop_with_the_callers_context_and_returns_its_value():
    pool = WorkerThreads(max_workers=2)

    async def main():
        where.set("request-7")
        return await pool.run(lambda a, b: (where.get(), threading.current_thread().name, a + b), 2, 3)

    value, thread, total = asyncio.run(main())
    assert value == "request-7" and thread != threading.main_thread().name and total == 5


def test_an_exception_reaches_the_caller():
    pool = WorkerThreads(max_workers=1)

    def fail():
        raise LookupError("no such thing")

    async def main():
        with pytest.raises(LookupError, match="no such thing"):
            await pool.run(fail)
        return await pool.run(lambda: "still working")

    assert asyncio.run(main()) == "still working"


def test_at_most_max_workers_run_at_once():
    pool = WorkerThreads(max_workers=3)
    running, peak, lock = [0], [0], threading.Lock()

    def work():
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        time.sleep(0.02)
        with lock:
            running[0] -= 1

    async def main():
        await asyncio.gather(*(pool.run(work) for _ in range(12)))

    asyncio.run(main())
    assert peak[0] == 3 and len(pool._threads) == 3


def test_a_cancelled_caller_waits_for_its_call_to_finish():
    pool = WorkerThreads(max_workers=1)
    done = threading.Event()

    def slow():
        time.sleep(0.2)
        done.set()

    async def main():
        task = asyncio.ensure_future(pool.run(slow))
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return done.is_set()

    assert asyncio.run(main()) is True
