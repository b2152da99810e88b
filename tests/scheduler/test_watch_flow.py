"""Threshold watches end to end: the scheduler's job at each hour with a movable clock, the outbox,
the fake Slack. A watch fires after its condition held at two consecutive checks, posts once,
clears after two checks where it did not hold, and a re-run of an hour (a restart, a second
replica, `dora-bot jobs run`) changes nothing.
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone

import pytest
from sqlmodel import select

from bot.runtime import Runtime
from bot.scheduler import jobs
from bot.services import watches
from bot.slack.client import make_web_client
from bot.slack.delivery import OutboxSender
from bot.store.db import session_scope
from bot.store.models import OutboxMessage, Watch
from tests.dbutil import load
from tests.scheduler.conftest import Flow, reopen
from tests.slack.harness import Clock, message_text

UTC = timezone.utc
H = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)  # the first check's hour
WATCHES = "C0WATCH"


def deploy(i: int, at: datetime, *, service: str = "checkout", failure: bool = False, commits: bool = True) -> dict:
    record = {"type": "deploy", "id": f"d{service}{i}", "service": service, "environment": "production", "version": f"v{i}",
              "deployed_at": at.isoformat(), "status": "success", "change_failure": failure}
    if commits:
        record["commits"] = [{"sha": f"{i:04d}{len(service):02d}abcdef", "committed_at": (at - timedelta(hours=3)).isoformat()}]
    return record


def failing_history(engine) -> None:
    """checkout: 4 production deploys in the last days, 2 of them change failures (50%)."""
    records = [deploy(i, H - timedelta(days=5 - i), failure=i in (1, 2)) for i in range(1, 5)]
    report = load(engine, records, now=H)
    assert report.committed, report.errors


def recover(engine, start: int = 10, n: int = 12) -> None:
    """Enough good deploys that checkout's change fail rate drops to 2 of 16 (12.5%)."""
    records = [deploy(i, H + timedelta(minutes=5 * (i - start + 1))) for i in range(start, start + n)]
    assert load(engine, records, now=H + timedelta(hours=2)).committed


def add_watch(flow: Flow, condition: str = "cfr>15%", service: str | None = "checkout", days: int = 30) -> int:
    with session_scope(flow.engine) as s:
        return watches.add_watch(s, condition=condition, channel=WATCHES, service=service, days=days, actor="U1",
                                 now=H - timedelta(hours=1)).id


def watch_posts(slack) -> list[dict]:
    return [p for p in slack.posts(WATCHES) if p["text"].startswith("Watch #")]


def check(flow: Flow, at: datetime) -> int:
    flow.at(at)
    changed = jobs.check_watches()
    flow.drain()
    return changed


def state(engine, watch_id: int) -> Watch:
    with session_scope(engine, write=False) as s:
        return s.get(Watch, watch_id)


def test_fires_after_two_checks_posts_once_and_clears_after_two(flow):
    failing_history(flow.engine)
    watch_id = add_watch(flow)

    assert check(flow, H) == 0, "one check where it holds is not enough"
    assert watch_posts(flow.slack) == []
    w = state(flow.engine, watch_id)
    assert (w.state, w.held_checks, w.last_check_at) == ("ok", 1, H)

    # A second run in the same hour (the job runs every 5 minutes) is the same check: nothing moves.
    assert check(flow, H + timedelta(minutes=35)) == 0
    assert state(flow.engine, watch_id).held_checks == 1

    assert check(flow, H + timedelta(hours=1, minutes=2)) == 1
    (fired,) = watch_posts(flow.slack)
    body = message_text(fired)
    assert f"Watch #{watch_id} fired" in body and "change fail rate for `checkout`" in body
    assert "50.0% (2 of 4 deploys)" in body, "the value"
    assert "above 15%" in body, "the threshold"
    assert "2026-11-25 12:00 UTC" in body, "since the first check at which it held"
    assert "/dora explain cfr checkout days=30" in body, "how to see why"
    assert state(flow.engine, watch_id).state == "firing"

    # Still above the line: no post on every check.
    for hours in (2, 3, 4):
        assert check(flow, H + timedelta(hours=hours)) == 0
    assert len(watch_posts(flow.slack)) == 1

    recover(flow.engine)
    assert check(flow, H + timedelta(hours=5)) == 0, "one check below the line does not clear it"
    w = state(flow.engine, watch_id)
    assert (w.state, w.cleared_checks) == ("firing", 1)
    assert check(flow, H + timedelta(hours=6)) == 1
    fired, cleared = watch_posts(flow.slack)
    body = message_text(cleared)
    assert f"Watch #{watch_id} cleared" in body and "12.5% (2 of 16 deploys)" in body and "no longer above 15%" in body
    assert "2026-11-25 17:00 UTC" in body
    assert state(flow.engine, watch_id).state == "ok"

    for hours in (7, 8):
        assert check(flow, H + timedelta(hours=hours)) == 0
    assert len(watch_posts(flow.slack)) == 2
    with session_scope(flow.engine, write=False) as s:
        kinds = [m.kind for m in s.exec(select(OutboxMessage)).all()]
    assert kinds == ["watch.post", "watch.post"]


def test_a_check_that_does_not_hold_in_between_starts_the_count_again(flow):
    failing_history(flow.engine)
    watch_id = add_watch(flow, "cfr>40%")
    check(flow, H)
    recover(flow.engine, n=2)  # 2 of 6: 33%, below 40%
    check(flow, H + timedelta(hours=1))
    assert state(flow.engine, watch_id).held_checks == 0
    check(flow, H + timedelta(hours=2))
    assert watch_posts(flow.slack) == []


def test_na_values_neither_hold_nor_clear(flow):
    """No incident recovered with a known cause: failed deployment recovery time is n/a."""
    failing_history(flow.engine)
    watch_id = add_watch(flow, "ttr>4h")
    for hours in range(3):
        check(flow, H + timedelta(hours=hours))
    w = state(flow.engine, watch_id)
    assert (w.state, w.held_checks, w.last_value) == ("ok", 0, "n/a")
    assert watch_posts(flow.slack) == []

    # payments has only deployed to staging: its deployment frequency is n/a, which never fires
    # a `df<1/day` watch; once it deploys to production, two checks at 1 deploy in 30 days do.
    staging = dict(deploy(1, H - timedelta(days=1), service="payments"), id="staging1", environment="staging")
    assert load(flow.engine, [staging], now=H).committed
    other = add_watch(flow, "df<1/day", service="payments")
    for hours in range(3, 6):
        check(flow, H + timedelta(hours=hours))
    assert state(flow.engine, other).held_checks == 0 and watch_posts(flow.slack) == []
    load(flow.engine, [deploy(2, H + timedelta(hours=5, minutes=10), service="payments")], now=H + timedelta(hours=6))
    assert check(flow, H + timedelta(hours=6)) == 0
    assert check(flow, H + timedelta(hours=7)) == 1
    (post,) = watch_posts(flow.slack)
    body = message_text(post)
    assert "deployment frequency for `payments` is 0.03/day (1 deploys in 30 days), below 1/day" in body
    assert "/dora explain df payments days=30" in body


def test_a_restart_between_the_checks_fires_once(flow):
    failing_history(flow.engine)
    watch_id = add_watch(flow)
    check(flow, H)

    # "Restart": a new engine, runtime and sender on the same database, the next hour.
    engine2 = reopen(flow.engine)
    try:
        clock2 = Clock(H + timedelta(hours=1, minutes=1))
        rt2 = Runtime(settings=flow.rt.settings, engine=engine2, clock=clock2)
        rt2.prepare(migrate=False)
        jobs.bind(rt2)
        sender2 = OutboxSender(make_web_client(rt2.settings), engine2, clock2)
        assert jobs.check_watches() == 1
        assert flow.drain(sender2) == 1
        clock2.now = H + timedelta(hours=1, minutes=6)  # its next run in that hour
        assert jobs.check_watches() == 0
        assert flow.drain(sender2) == 0
    finally:
        engine2.dispose()
    assert len(watch_posts(flow.slack)) == 1
    assert state(flow.engine, watch_id).state == "firing"


def test_two_replicas_running_the_job_at_once_post_once(flow):
    """Several replicas (or `jobs run` while `serve` runs) check the same hour: one fires."""
    failing_history(flow.engine)
    watch_id = add_watch(flow)
    check(flow, H)
    flow.at(H + timedelta(hours=1))
    engines = [reopen(flow.engine) for _ in range(3)]
    results, errors = [], []
    start = threading.Barrier(len(engines))

    def run(engine):
        try:
            start.wait()
            results.extend(watches.check_all(engine, now=flow.clock(), timezone_name="UTC", production_environments=("production", "prod")))
        except Exception as exc:  # pragma: no cover - shown in the assertion
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(e,)) for e in engines]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    for e in engines:
        e.dispose()
    assert errors == []
    assert [r.transition for r in results if r.checked] == ["fired"], results
    flow.drain()
    assert len(watch_posts(flow.slack)) == 1
    w = state(flow.engine, watch_id)
    assert (w.state, w.last_check_at) == ("firing", H + timedelta(hours=1))


def test_an_org_watch_pools_every_service_and_a_removed_watch_posts_nothing(flow):
    failing_history(flow.engine)
    load(flow.engine, [deploy(i, H - timedelta(days=2, hours=i), service="payments") for i in range(1, 5)], now=H)
    org = add_watch(flow, "cfr>=25%", service=None)  # 2 of 8
    gone = add_watch(flow, "cfr>15%")
    check(flow, H)
    flow.at(H + timedelta(hours=1))
    jobs.check_watches()  # both fire; one is removed before the outbox worker sends its post
    with session_scope(flow.engine) as s:
        watches.remove_watch(s, gone)
    flow.drain()
    (post,) = watch_posts(flow.slack)
    body = message_text(post)
    assert f"Watch #{org} fired" in body and "for all services is 25.0% (2 of 8 deploys), at or above 25%" in body
    assert "/dora explain cfr days=30" in body


@pytest.mark.parametrize("engine", ["sqlite"], indirect=True)
def test_the_job_is_listed_and_named(flow):
    spec = jobs.get("watches.check")
    assert spec.func is jobs.check_watches and spec.seconds <= 3600
