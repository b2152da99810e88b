"""Digests end to end: the job at its time, the outbox, the fake Slack (message + PNG chart upload).

The subscription posts weekly on Monday 09:00 Europe/Berlin; in November/December that is 08:00
UTC. The clock is injected: the job (``jobs.send_due_digests``, what the scheduler runs) and the
sender (``OutboxSender.deliver_due``, what the outbox worker runs) are called directly.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta, timezone

from sqlmodel import select

from bot.runtime import Runtime
from bot.scheduler import jobs
from bot.services import digests
from bot.slack.client import make_web_client
from bot.slack.delivery import OutboxSender
from bot.store.db import session_scope
from bot.store.models import DigestDelivery, OutboxMessage
from tests.dbutil import load
from tests.scheduler.conftest import DIGEST_CHANNEL, Flow, make_flow, reopen
from tests.slack.harness import Clock, message_text

UTC = timezone.utc
CREATED = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)  # a Wednesday
MONDAY_0900_BERLIN = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)  # Monday 09:00 CET
PNG = b"\x89PNG\r\n\x1a\n"
FIVE_KEYS = (
    "Throughput", "Change lead time", "Deployment frequency", "Failed deployment recovery time",
    "Instability", "Change fail rate", "Deployment rework rate", "Time to restore (all incidents)",
)


def history(engine) -> None:
    """Two weeks of deploys and incidents before the Monday, and one incident still open."""
    def deploy(i, day, failure=False):
        at = datetime(2026, 11, day, 10, 0, tzinfo=UTC)
        return {"type": "deploy", "id": f"d{i}", "service": "checkout", "environment": "production", "version": f"v{i}",
                "deployed_at": at.isoformat(), "status": "success", "change_failure": failure,
                "commits": [{"sha": f"abcdef{i:02d}", "committed_at": (at - timedelta(hours=5)).isoformat()}]}

    records = [deploy(1, 17), deploy(2, 18), deploy(3, 24), deploy(4, 25, failure=True), deploy(5, 26), deploy(6, 27)]
    records += [
        {"type": "incident", "id": "i1", "service": "checkout", "environment": "production", "severity": "sev2",
         "title": "Checkout 5xx", "started_at": "2026-11-25T10:30:00Z", "resolved_at": "2026-11-25T12:00:00Z", "caused_by": "d4"},
        {"type": "incident", "id": "i2", "service": "checkout", "environment": "production", "severity": "sev3",
         "title": "Slow search", "started_at": "2026-11-29T20:00:00Z"},
    ]
    report = load(engine, records, now=MONDAY_0900_BERLIN)
    assert report.committed, report.errors


def subscribe(flow: Flow, *, created: datetime = CREATED, **kw) -> int:
    with session_scope(flow.engine) as s:
        sub = digests.add_subscription(s, channel=DIGEST_CHANNEL, cadence=kw.pop("cadence", "weekly"), weekday=kw.pop("weekday", 0),
                                       time_of_day=kw.pop("time_of_day", "09:00"), timezone=kw.pop("timezone", "Europe/Berlin"),
                                       now=created, **kw)
        return sub.id


def digest_posts(slack, channel=DIGEST_CHANNEL) -> list[dict]:
    return [p for p in slack.posts(channel) if "DORA digest" in (p.get("text") or "")]


def outbox_statuses(engine) -> list[tuple[str, str]]:
    with session_scope(engine, write=False) as s:
        return [(m.kind, m.status) for m in s.exec(select(OutboxMessage).order_by(OutboxMessage.id)).all()]


def test_digest_goes_out_at_its_time_once_with_the_five_keys_and_a_png_chart(flow):
    history(flow.engine)
    subscribe(flow)
    slack = flow.slack

    # Monday 08:59:59 in Berlin: the period that started last Monday began before the
    # subscription existed, and this Monday's has not begun.
    flow.at(MONDAY_0900_BERLIN - timedelta(seconds=1))
    assert jobs.send_due_digests() == 0
    assert flow.drain() == 0
    assert slack.api_calls() == []

    flow.at(MONDAY_0900_BERLIN)
    assert jobs.send_due_digests() == 1
    assert flow.drain() == 2  # the digest, then its chart (queued behind it under the same key)

    (post,) = digest_posts(slack)
    assert post["channel"] == DIGEST_CHANNEL
    body = message_text(post)
    for title in FIVE_KEYS:
        assert title in body, f"{title!r} missing from the digest:\n{body}"
    assert "Weekly DORA digest" in body and "period 2026-11-30" in body
    assert "INC-2" in body and "Slow search" in body, "the open incident is listed"
    assert "longest incident" in body and "Checkout 5xx" in body

    (chart,) = slack.shared_files(DIGEST_CHANNEL)
    assert chart["data"].startswith(PNG) and len(chart["data"]) > 1000
    assert chart["filename"] == "dora-trend-all-services-2026-11-30.png"
    # The files_upload_v2 flow in order: URL, bytes, complete -- and only after the message.
    methods = [c.method for c in slack.calls]
    assert methods == ["chat.postMessage", "files.getUploadURLExternal", "upload", "files.completeUploadExternal"]
    assert outbox_statuses(flow.engine) == [("digest.post", "sent"), ("digest.chart", "sent")]

    # The job runs every minute: later runs in the same period send nothing more.
    for later in (timedelta(minutes=1), timedelta(hours=5), timedelta(days=6, hours=23)):
        flow.at(MONDAY_0900_BERLIN + later)
        assert jobs.send_due_digests() == 0
        assert flow.drain() == 0
    assert len(digest_posts(slack)) == 1 and len(slack.shared_files()) == 1

    # Next Monday 09:00 is a new period: one more digest.
    flow.at(MONDAY_0900_BERLIN + timedelta(days=7))
    assert jobs.send_due_digests() == 1
    flow.drain()
    assert len(digest_posts(slack)) == 2 and len(slack.shared_files()) == 2
    assert "period 2026-12-07" in message_text(digest_posts(slack)[-1])


def test_a_restarted_process_does_not_send_the_digest_again(flow):
    subscribe(flow)
    flow.at(MONDAY_0900_BERLIN)
    assert jobs.send_due_digests() == 1
    flow.drain()
    assert len(digest_posts(flow.slack)) == 1

    # "Restart": a new engine and runtime on the same database, a few minutes later.
    engine2 = reopen(flow.engine)
    try:
        clock2 = Clock(MONDAY_0900_BERLIN + timedelta(minutes=3))
        rt2 = Runtime(settings=flow.rt.settings, engine=engine2, clock=clock2)
        rt2.prepare(migrate=False)
        jobs.bind(rt2)
        assert jobs.send_due_digests() == 0
        sender2 = OutboxSender(make_web_client(rt2.settings), engine2, clock2)
        assert flow.drain(sender2) == 0
    finally:
        engine2.dispose()
    assert len(digest_posts(flow.slack)) == 1 and len(flow.slack.shared_files()) == 1


def test_a_digest_queued_before_a_crash_is_delivered_once_after_the_restart(flow):
    """The job committed the delivery record and the outbox message, then the process died."""
    subscribe(flow)
    flow.at(MONDAY_0900_BERLIN)
    assert jobs.send_due_digests() == 1  # queued, never sent: the process "dies" here
    assert flow.slack.api_calls() == []

    engine2 = reopen(flow.engine)
    try:
        clock2 = Clock(MONDAY_0900_BERLIN + timedelta(minutes=10))
        rt2 = Runtime(settings=flow.rt.settings, engine=engine2, clock=clock2)
        jobs.bind(rt2)
        assert jobs.send_due_digests() == 0  # the period is recorded: not queued a second time
        sender2 = OutboxSender(make_web_client(rt2.settings), engine2, clock2)
        assert flow.drain(sender2) == 2
    finally:
        engine2.dispose()
    assert len(digest_posts(flow.slack)) == 1 and len(flow.slack.shared_files()) == 1


def test_two_schedulers_running_the_job_at_once_queue_one_digest(flow):
    """Several replicas, or `jobs run` while `serve` runs: the unique delivery record decides."""
    subscribe(flow)
    flow.at(MONDAY_0900_BERLIN)
    engines = [reopen(flow.engine) for _ in range(4)]
    results, errors = [], []
    start = threading.Barrier(len(engines))

    def run(engine):
        rt = Runtime(settings=flow.rt.settings, engine=engine, clock=flow.clock)
        try:
            start.wait()
            with session_scope(engine) as s:
                for sub, period in digests.due_subscriptions(s, rt.now()):
                    results.append(digests.deliver(s, sub, period.key, now=rt.now()))
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(e,)) for e in engines]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    for e in engines:
        e.dispose()
    # A loser may see the unique violation (False) or, on PostgreSQL, a serialization failure;
    # what matters is that exactly one was recorded and queued.
    assert results.count(True) == 1, (results, errors)
    with session_scope(flow.engine, write=False) as s:
        assert len(s.exec(select(DigestDelivery)).all()) == 1
    flow.drain()
    assert len(digest_posts(flow.slack)) == 1 and len(flow.slack.shared_files()) == 1


def test_a_failed_chart_upload_is_retried_without_posting_the_digest_text_again(flow):
    subscribe(flow)
    flow.at(MONDAY_0900_BERLIN)
    jobs.send_due_digests()
    flow.slack.fail_upload_next(1, status=500)
    flow.drain()
    assert len(digest_posts(flow.slack)) == 1
    assert flow.slack.shared_files() == []
    assert outbox_statuses(flow.engine) == [("digest.post", "sent"), ("digest.chart", "pending")]

    flow.at(MONDAY_0900_BERLIN + timedelta(minutes=1))
    assert flow.drain() == 1
    assert len(digest_posts(flow.slack)) == 1, "the digest text is not posted twice"
    (chart,) = flow.slack.shared_files(DIGEST_CHANNEL)
    assert chart["data"].startswith(PNG)


# --- missed while down ---------------------------------------------------------------------

WEDNESDAY_AFTER = datetime(2026, 12, 2, 14, 0, tzinfo=UTC)


def test_a_digest_missed_while_the_bot_was_down_is_sent_once_when_it_comes_back(flow):
    # Created last Tuesday; the bot was down from before Monday 09:00 until Wednesday.
    old = subscribe(flow, created=datetime(2026, 11, 24, 10, 0, tzinfo=UTC))
    # Created Tuesday after Monday 09:00: this week's period began before it existed.
    new = subscribe(flow, created=datetime(2026, 12, 1, 10, 0, tzinfo=UTC))

    flow.at(WEDNESDAY_AFTER)  # the process starts; its first job run
    assert jobs.send_due_digests() == 1
    flow.drain()
    (post,) = digest_posts(flow.slack)
    assert "period 2026-11-30" in message_text(post) and f"#{old}:" in message_text(post)
    assert jobs.send_due_digests() == 0
    with session_scope(flow.engine, write=False) as s:
        assert [(d.subscription_id, d.period) for d in s.exec(select(DigestDelivery)).all()] == [(old, "2026-11-30")]

    # Next Monday both are due, each once.
    flow.at(datetime(2026, 12, 7, 8, 0, tzinfo=UTC))
    assert jobs.send_due_digests() == 2
    assert jobs.send_due_digests() == 0
    flow.drain()
    texts = [message_text(p) for p in digest_posts(flow.slack)]
    assert len(texts) == 3
    assert sorted(t.split("Digest #")[1][:1] for t in texts[1:]) == sorted([str(old), str(new)])


def test_down_over_two_mondays_only_the_current_period_is_sent(flow):
    subscribe(flow, created=datetime(2026, 11, 17, 10, 0, tzinfo=UTC))
    flow.at(WEDNESDAY_AFTER)
    assert jobs.send_due_digests() == 1
    flow.drain()
    (post,) = digest_posts(flow.slack)
    assert "period 2026-11-30" in message_text(post)
    with session_scope(flow.engine, write=False) as s:
        assert [d.period for d in s.exec(select(DigestDelivery)).all()] == ["2026-11-30"]


def test_the_real_scheduler_on_start_sends_the_missed_digest(sqlite_engine, slack, bound_jobs):
    """build_scheduler + Leadership (APScheduler, job store on the app database), as `serve` wires it.

    SQLite: one process, always the leader (PostgreSQL's lock: test_leadership.py, test_replicas.py).
    The jobs run once at start, then every interval.
    """
    from bot.scheduler.setup import Leadership
    from bot.slack.delivery import OutboxWorker
    from bot.telemetry import Telemetry

    flow = make_flow(sqlite_engine, slack)
    subscribe(flow, created=datetime(2026, 11, 24, 10, 0, tzinfo=UTC))
    flow.at(WEDNESDAY_AFTER)
    rt = flow.rt
    rt.telemetry = Telemetry()
    worker = OutboxWorker(flow.sender, interval=0.2).start()  # woken by the commit that queues the digest
    leadership = Leadership(rt, poll_seconds=0.2).start()
    try:
        deadline = time.monotonic() + 10
        while not leadership.is_leader and time.monotonic() < deadline:
            time.sleep(0.05)
        assert leadership.is_leader, "the only process must become leader"
        assert rt.telemetry.scheduler_leader._value.get() == 1
        scheduler = leadership.scheduler
        registered = {job.id: job for job in scheduler.get_jobs()}
        assert set(registered) == {"digests.send_due", "reminders.send_due", "watches.check", "nudges.commit_hints"}
        # The jobs' first run is at start, so the digest missed while no process was leader goes
        # out now rather than a minute later.
        flow.slack.wait_for(lambda: len(flow.slack.shared_files()) == 1, timeout=15, message="digest chart uploaded")
        assert len(digest_posts(flow.slack)) == 1
    finally:
        leadership.stop()
        worker.stop()
    (post,) = digest_posts(flow.slack)
    assert "period 2026-11-30" in message_text(post)
    assert outbox_statuses(flow.engine) == [("digest.post", "sent"), ("digest.chart", "sent")]


def test_slack_down_at_nine_the_digest_waits_in_the_outbox_and_goes_out_once(engine, slack, bound_jobs):
    from tests.scheduler.conftest import fast_client, settings_for

    flow = make_flow(engine, slack, client=fast_client(settings_for(engine, slack)))
    subscribe(flow)
    slack.fail_next("chat.postMessage", 3, status=503)
    flow.at(MONDAY_0900_BERLIN)
    assert jobs.send_due_digests() == 1
    assert flow.drain() == 0  # 503: retry in 2 s
    for minutes in (1, 2):  # the job keeps running every minute while Slack is down
        flow.at(MONDAY_0900_BERLIN + timedelta(minutes=minutes))
        assert jobs.send_due_digests() == 0, "the period is recorded: never queued twice"
        assert flow.drain() == 0
    assert digest_posts(slack) == [] and len(slack.calls_of("chat.postMessage", ok=False)) == 3
    assert outbox_statuses(flow.engine) == [("digest.post", "pending")]
    flow.at(MONDAY_0900_BERLIN + timedelta(minutes=3))  # Slack is back
    assert flow.drain() == 2
    assert len(digest_posts(slack)) == 1 and len(slack.shared_files(DIGEST_CHANNEL)) == 1
    assert "period 2026-11-30" in message_text(digest_posts(slack)[0])
