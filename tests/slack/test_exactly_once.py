"""Exactly once, end to end, in one process: every change's messages are queued with it and sent by
the outbox worker alone, once, in order; a lost answer is checked in Slack's history before a
retry; a replayed or retried request acts once. (Real processes: tests/scheduler/test_exactly_once_serve.py.)"""

from __future__ import annotations

import http.client
import json
import threading
import time
from datetime import timedelta

import pytest

from bot.services import outbox
from bot.slack.client import make_web_client
from bot.slack.delivery import METADATA_EVENT, OutboxSender, make_sender
from bot.store.models import Deploy, HandledRequest, OutboxMessage, SlackMessage
from tests.slack.conftest import ALERTS, KNOWN_SERVICES
from tests.slack.harness import message_text

INGEST = "exactly-once-ingest-token-0123456789"


def api(app, method: str, path: str, body: dict) -> tuple[int, dict]:
    conn = http.client.HTTPConnection("127.0.0.1", app.server.port, timeout=30)
    try:
        conn.request(method, path, body=json.dumps(body), headers={"Content-Type": "application/json", "Authorization": f"Bearer {INGEST}"})
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read() or b"null")
    finally:
        conn.close()


def thread_lines(app, channel: str) -> list[str]:
    (card,) = [m for m in app.fake.top_level(channel) if m["text"].startswith("INC-")]
    return [m["text"] for m in app.fake.thread(channel, card["ts"])]


def test_quick_patches_give_one_right_thread_line_each_in_order(make_slack_app):
    """Each line is rendered from the event it announces, never from "the latest event"."""
    app = make_slack_app(ingest_tokens=(INGEST,))
    status, body = api(app, "POST", "/api/v1/incidents",
                       {"id": "pd-1", "service": "checkout", "title": "5xx", "started_at": "2026-11-25T11:00:00Z"})
    assert status == 201, body
    for patch in ({"update": "update-1"}, {"acknowledged_at": "now"}, {"update": "update-2"}, {"resolved_at": "now"}):
        status, body = api(app, "PATCH", "/api/v1/incidents/pd-1", patch)
        assert status == 200, body
    app.slack.settle()
    lines = thread_lines(app, ALERTS)
    assert len(lines) == 5, lines  # the last: the question a resolved incident with no cause gets
    assert "update-1" in lines[0] and "Acknowledged" in lines[1] and "update-2" in lines[2] and "Resolved" in lines[3], lines
    assert "Was it caused by a deploy?" in lines[4], lines
    assert app.fake.calls_of("chat.postMessage")[0].params["metadata"]["event_type"] == METADATA_EVENT


def test_every_post_names_its_outbox_message_in_its_metadata(slack_app):
    app = slack_app
    app.slack.command("/incident", "declare sev2 checkout Down", channel="C1")
    card = app.fake.top_level(ALERTS)[0]
    app.slack.press(card, "Acknowledge")
    posts = app.fake.calls_of("chat.postMessage")
    assert len(posts) == 4  # two cards, and the "Acknowledged" line under each
    ids = [c.params["metadata"]["event_payload"]["outbox_id"] for c in posts]
    kinds = {m.id: m.kind for m in app.all(OutboxMessage)}
    assert [kinds[i] for i in ids] == ["card.post", "card.post", "thread.post", "thread.post"]
    assert ids[2] == ids[3], "one outbox message, one line in each card's thread"


def test_a_slack_that_posts_but_answers_late_yields_one_card(make_slack_app):
    app = make_slack_app(with_worker=False)
    fake = app.fake
    # The worker's client gives up after 1 s; this Slack posts the card and answers after 2.5 s.
    sender = make_sender(app.rt, client=make_web_client(app.rt.settings, outbox=True, timeout=1), parallel=1)
    fake.answer_late("chat.postMessage", 2.5)
    r = app.slack.command("/deploy", "checkout 1.0")
    assert "Recorded D-1" in r.reply()["text"]
    assert sender.deliver_due() == 0, "the answer was lost: the outcome is unknown"
    (message,) = app.all(OutboxMessage)
    assert message.status == "pending" and "Timeout" in message.last_error
    fake.wait_for(lambda: len(fake.posts("C1")) == 1, 5, "the late post to land")
    app.clock.advance(minutes=1)
    assert sender.deliver_due() == 1
    assert len(fake.posts("C1")) == 1, "looked for it in the channel and found it: not posted again"
    (history,) = fake.calls_of("conversations.history")
    assert history.params["include_all_metadata"] in (True, "true", "1") and history.params["channel"] == "C1"
    (card,) = app.all(SlackMessage)
    assert card.ts == fake.posts("C1")[0]["ts"], "the found message is the card that gets updated"
    assert [m.status for m in app.all(OutboxMessage)] == ["sent"]


def test_a_send_interrupted_by_a_crash_is_found_after_the_lease_not_posted_again(make_slack_app):
    app = make_slack_app(with_worker=False)
    fake = app.fake
    sender = make_sender(app.rt, parallel=1)
    app.slack.command("/incident", "declare sev2 checkout Down", channel=ALERTS)
    assert sender.deliver_due() == 1  # the card
    app.slack.command("/incident", "ack INC-1", channel=ALERTS)
    (refresh, line) = [m for m in app.all(OutboxMessage) if m.status == "pending"]
    sender._deliver_one(outbox.claim(app.engine, refresh.id, now=app.clock.now))
    # The thread line: claimed, posted, and the process dies before it records "sent".
    claimed = outbox.claim(app.engine, line.id, now=app.clock.now)
    sender.send(claimed)
    assert len(fake.posts(ALERTS, thread=True)) == 1
    assert sender.deliver_due() == 0, "still claimed by the dead sender"
    app.clock.advance(seconds=outbox.LEASE.total_seconds())
    assert sender.deliver_due() == 1
    assert len(fake.posts(ALERTS, thread=True)) == 1, "found in the thread (conversations.replies), not posted twice"
    assert len(fake.calls_of("conversations.replies")) == 1


def test_a_digest_whose_answer_was_lost_is_not_posted_twice_and_its_chart_goes_once(make_slack_app):
    app = make_slack_app(with_worker=False)
    fake = app.fake
    app.slack.command("/dora", "digest add #general")
    app.slack.command("/dora", "digest send 1")
    sender = make_sender(app.rt, parallel=1)
    (digest,) = [m for m in app.all(OutboxMessage) if m.kind == "digest.post"]
    claimed = outbox.claim(app.engine, digest.id, now=app.clock.now)
    sender.send(claimed)  # posted; the crash comes before "sent" (and before its chart is queued)
    app.clock.advance(seconds=outbox.LEASE.total_seconds())
    sender.deliver_due()
    digests = [p for p in fake.posts("C1") if "digest" in message_text(p).lower() or "DORA" in message_text(p)]
    assert len(digests) == 1, [p["text"] for p in fake.posts("C1")]
    assert sorted(m.kind for m in app.all(OutboxMessage) if m.kind.startswith("digest")) == ["digest.chart", "digest.post"]


def test_a_chart_upload_interrupted_by_a_crash_is_found_by_its_name_not_uploaded_again(make_slack_app):
    app = make_slack_app(with_worker=False)
    fake = app.fake
    app.slack.command("/dora", "digest add #general")
    app.slack.command("/dora", "digest send 1")
    sender = make_sender(app.rt, parallel=1)
    (digest,) = [m for m in app.all(OutboxMessage) if m.kind == "digest.post"]
    sender._deliver_one(outbox.claim(app.engine, digest.id, now=app.clock.now))  # the text, and its chart queued
    (chart,) = [m for m in app.all(OutboxMessage) if m.kind == "digest.chart"]
    sender.send(outbox.claim(app.engine, chart.id, now=app.clock.now))  # uploaded; the crash comes before "sent"
    assert len(fake.calls_of("files.completeUploadExternal")) == 1
    app.clock.advance(seconds=outbox.LEASE.total_seconds())
    assert sender.deliver_due() == 1
    assert len(fake.calls_of("files.completeUploadExternal")) == 1, "the chart was in the channel: not uploaded twice"
    assert [m.status for m in app.all(OutboxMessage) if m.kind.startswith("digest")] == ["sent", "sent"]


def test_a_replayed_signed_command_records_once(make_slack_app):
    app = make_slack_app()
    url = app.fake.new_response_url()
    body = app.slack.command_body("/deploy", "checkout 2.0", response_url=url)
    timestamp = str(int(time.time()))
    signature = app.slack.signature(body, timestamp)
    answers = [app.slack.post(body, timestamp=timestamp, signature=signature) for _ in range(3)]
    assert [a.status for a in answers] == [200, 200, 200], "a replay is answered, not refused"
    assert len(app.all(Deploy)) == 1 and len(app.fake.posts("C1")) == 1
    assert len([r for r in app.fake.responses() if url.endswith(r["_path"])]) == 1, "one answer to the user"
    assert len(app.all(HandledRequest, order=HandledRequest.key)) == 1


def test_replays_on_two_replicas_record_once(make_slack_app):
    """Two app servers on one database (the key is in the database, so every replica knows)."""
    first, second = make_slack_app(), make_slack_app()
    body = first.slack.command_body("/incident", "declare sev2 checkout Replayed")
    timestamp = str(int(time.time()))
    signature = first.slack.signature(body, timestamp)
    results = []
    threads = [threading.Thread(target=lambda d=d: results.append(d.post(body, timestamp=timestamp, signature=signature, settle=False)))
               for d in (first.slack, second.slack, first.slack, second.slack)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    first.slack.settle()
    second.slack.settle()
    assert [r.status for r in results] == [200] * 4
    assert len(first.fake.posts(ALERTS)) == 1, "one incident, one card"
    assert len(first.all(HandledRequest, order=HandledRequest.key)) == 1


def test_a_retried_event_acts_once(slack_app):
    app = slack_app
    body = app.slack.event_body(
        {"type": "app_home_opened", "user": "U1", "channel": "D0HOME", "tab": "home", "event_ts": f"{time.time():.6f}"}
    )
    first = app.slack.post(body, content_type="application/json")
    retried = app.slack.post(body, content_type="application/json",
                             headers={"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"})
    assert first.status == retried.status == 200
    assert len(app.fake.calls_of("views.publish")) == 1


def test_a_429_storm_keeps_every_ack_fast_and_loses_nothing(slack_app):
    """Slack answering 429 Retry-After: 30 to every post: no listener waits on it."""
    app, fake = slack_app, slack_app.fake
    fake.fail_next("chat.postMessage", 200, status=429, retry_after=30)
    answers = []
    lock = threading.Lock()

    def one(i):
        r = app.slack.command("/deploy", f"{KNOWN_SERVICES[i % 4]} 1.{i}", settle=False)
        with lock:
            answers.append(r)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    app.slack.settle(timeout=30)
    assert [a.http.status for a in answers] == [200] * 40
    slow = [a.http.elapsed for a in answers if a.http.elapsed >= 3]
    assert not slow, f"acks over Slack's 3 s: {slow}"
    assert len(app.all(Deploy)) == 40
    assert all("Recorded" in a.reply()["text"] for a in answers)
    waiting = app.all(OutboxMessage)
    assert len(waiting) == 40 and all(m.status == "pending" for m in waiting)
    assert all(m.next_attempt_at >= app.clock.now + timedelta(seconds=30) or m.attempts == 0 for m in waiting)


def test_the_worker_is_woken_by_the_commit_not_by_its_poll(make_slack_app):
    app = make_slack_app()  # its worker polls once an hour: only the wake-up can send this card
    started = time.monotonic()
    app.slack.command("/deploy", "checkout 3.0", settle=False)
    app.fake.wait_for(lambda: len(app.fake.posts("C1")) == 1, 5, "the card")
    assert time.monotonic() - started < 5


@pytest.mark.allow_errors
def test_an_unknown_outbox_kind_is_kept_and_logged_not_sent(make_slack_app, caplog):
    app = make_slack_app(with_worker=False)
    from bot.store.db import session_scope

    with session_scope(app.engine) as session:
        outbox.enqueue(session, kind="message.post", key="legacy:1", payload={"channel": "C1", "text": "old"}, now=app.clock.now)
    sender = OutboxSender(make_web_client(app.rt.settings, outbox=True), app.engine, app.clock, parallel=1)
    assert sender.deliver_due() == 0
    assert app.fake.posts() == []
    (message,) = app.all(OutboxMessage)
    assert message.status == "pending" and "unknown outbox message kind" in message.last_error
