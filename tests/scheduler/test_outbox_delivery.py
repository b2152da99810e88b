"""Slack outages and rate limits: the outbox delays messages, never loses or duplicates them.

The fake Slack fails the next calls of a method with a 429 (``Retry-After``) or a 5xx; the outbox's
client does not retry by itself, so the message stays in the outbox, due again when Slack asked
(``Retry-After``) or after a backoff, and goes out exactly once when Slack is back (a retry first
looks in the channel for an earlier attempt that may have gone through).
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

from sqlmodel import select

from bot.core.inputs import IncidentInput
from bot.runtime import utc_now
from bot.services import outbox
from bot.services.incidents import (
    acknowledge_incident,
    declare_incident,
    resolve_incident,
)
from bot.slack.delivery import OutboxWorker
from bot.store.db import session_scope
from bot.store.models import OutboxMessage, SlackMessage
from tests.conftest import NOW
from tests.scheduler.conftest import ALERTS, fast_client, make_flow, settings_for
from tests.slack.harness import message_text

UTC = timezone.utc


def declare(engine, at: datetime) -> int:
    with session_scope(engine) as s:
        return declare_incident(
            s, data=IncidentInput(service="checkout", started_at=at, severity="sev2", title="Checkout 5xx"), now=at, source="slack",
            actor="U1",
        ).incident.id


def queue_card(engine, incident: int, channels: list[str], at: datetime = NOW) -> None:
    """What declaring the incident queues with it: its card in each channel."""
    with session_scope(engine) as s:
        outbox.post_cards(s, "incident", incident, channels, now=at)


def rows(engine) -> list[OutboxMessage]:
    with session_scope(engine, write=False) as s:
        out = list(s.exec(select(OutboxMessage).order_by(OutboxMessage.id)).all())
        for m in out:
            s.expunge(m)
        return out


def cards(engine) -> list[SlackMessage]:
    with session_scope(engine, write=False) as s:
        out = list(s.exec(select(SlackMessage)).all())
        for m in out:
            s.expunge(m)
        return out


def test_rate_limited_the_card_waits_for_retry_after_then_posts_once(sqlite_engine, slack, bound_jobs):
    """The outbox's client does not sleep on a 429: the message waits in the outbox until Retry-After."""
    flow = make_flow(sqlite_engine, slack)  # the client `serve` gives the outbox worker
    incident = declare(flow.engine, NOW)
    slack.fail_next("chat.postMessage", 1, status=429, retry_after=1)
    queue_card(flow.engine, incident, [ALERTS])
    assert flow.sender.deliver_due() == 0

    failed = slack.calls_of("chat.postMessage", ok=False)
    assert [c.status for c in failed] == [429]
    assert slack.posts() == [] and slack.top_level(ALERTS) == []
    (msg,) = rows(flow.engine)
    assert (msg.kind, msg.status, msg.attempts, msg.last_error) == ("card.post", "pending", 1, "ratelimited")
    assert msg.next_attempt_at == NOW + timedelta(seconds=1), "next attempt when Retry-After says"

    # Not before Retry-After: nothing is sent, nothing is called.
    calls = len(slack.calls)
    assert flow.sender.deliver_due() == 0
    assert len(slack.calls) == calls

    flow.clock.advance(seconds=1)
    assert flow.sender.deliver_due() == 1
    (card,) = slack.top_level(ALERTS)
    assert "INC-1" in message_text(card)
    assert [(m.channel, m.ts) for m in cards(flow.engine)] == [(ALERTS, card["ts"])]
    assert [m.status for m in rows(flow.engine)] == ["sent"]
    flow.clock.advance(minutes=10)
    assert flow.sender.deliver_due() == 0
    assert len(slack.posts()) == 1


def test_a_slack_outage_then_recovery_the_worker_delivers_exactly_one_card(sqlite_engine, slack, bound_jobs):
    """Real time: 503, then 429 with Retry-After: 1 twice; the outbox worker (0.2 s) gets it through."""
    flow = make_flow(sqlite_engine, slack, client=None)
    flow.rt.clock = utc_now
    from bot.slack.delivery import OutboxSender

    sender = OutboxSender(fast_client(flow.rt.settings), flow.engine, utc_now)
    incident = declare(flow.engine, utc_now())
    slack.fail_next("chat.postMessage", 1, status=503)
    slack.fail_next("chat.postMessage", 2, status=429, retry_after=1)

    started, before = time.monotonic(), utc_now()
    queue_card(flow.engine, incident, [ALERTS], at=before)
    sender.deliver_due()
    after = utc_now()
    (msg,) = rows(flow.engine)
    assert (msg.status, msg.attempts, msg.last_error) == ("pending", 1, "fatal_error")
    assert before + timedelta(seconds=2) <= msg.next_attempt_at <= after + timedelta(seconds=2), "backoff: 2 s after the first failure"

    worker = OutboxWorker(sender, interval=0.2).start()
    try:
        slack.wait_for(lambda: slack.top_level(ALERTS), timeout=15, message="the card after the outage")
        elapsed = time.monotonic() - started
        time.sleep(1.0)  # several more worker rounds: nothing else goes out
    finally:
        worker.stop()
    assert elapsed >= 3.5, f"delivered after {elapsed:.1f}s: the backoff (2 s) and Retry-After (1 s, twice) were not honoured"
    statuses = [c.status for c in slack.calls_of("chat.postMessage", ok=None)]
    assert statuses == [503, 429, 429, 200]
    assert len(slack.calls_of("conversations.history")) == 3, "each retry first looked for an earlier attempt's card"
    assert len(slack.posts(ALERTS)) == 1 and len(slack.top_level(ALERTS)) == 1
    (msg,) = rows(flow.engine)
    assert (msg.status, msg.attempts) == ("sent", 4)
    assert len(cards(flow.engine)) == 1


def test_card_refreshes_queued_during_an_outage_show_the_latest_state_and_no_stale_one(engine, slack, bound_jobs):
    flow = make_flow(engine, slack, client=fast_client(settings_for(engine, slack)))
    incident = declare(flow.engine, NOW)
    queue_card(flow.engine, incident, [ALERTS])
    flow.sender.deliver_due()
    (card,) = slack.top_level(ALERTS)

    slack.fail_next("chat.update", 3, status=503)  # chat.update is down
    # Acknowledged during the outage: the refresh fails (retry in 2 s), its thread line waits behind it.
    flow.clock.advance(minutes=2)
    with session_scope(flow.engine) as s:  # queues the refresh and its thread line with the change
        acknowledge_incident(s, ref=f"INC-{incident}", now=flow.clock(), actor="U2")
    assert flow.sender.deliver_due() == 0
    flow.clock.advance(seconds=2)
    assert flow.sender.deliver_due() == 0  # the retry fails too (retry in 4 s)
    # Resolved during the outage: a second refresh of the same card.
    with session_scope(flow.engine) as s:
        resolve_incident(s, ref=f"INC-{incident}", now=flow.clock(), actor="U2")
    assert [(m.kind, m.status) for m in rows(flow.engine)] == [
        ("card.post", "sent"), ("card.refresh", "pending"), ("thread.post", "pending"),
        ("card.refresh", "pending"), ("thread.post", "pending"),
        ("nudge.post", "pending"),  # resolved with no cause: the question goes in the thread after the line
    ]
    assert slack.updates() == [] and slack.thread(ALERTS, card["ts"]) == []

    # Slack recovers (after one more failed chat.update, for the newer refresh).
    for _ in range(3):
        flow.clock.advance(seconds=4)
        flow.sender.deliver_due()
    (update,) = slack.updates(ALERTS)  # exactly one successful edit, with the latest state
    assert "Resolved" in message_text(update) or "resolved" in message_text(update)
    current = slack.message(ALERTS, card["ts"])
    assert message_text(current) == message_text(update)
    assert "Acknowledge" not in [el["text"]["text"] for b in current["blocks"] if b.get("type") == "actions" for el in b["elements"]]
    failed = slack.calls_of("chat.update", ok=False)
    assert len(failed) == 3
    thread = [m["text"] for m in slack.thread(ALERTS, card["ts"])]
    assert len(thread) == 3 and "acknowledged" in thread[0].lower() and "resolved" in thread[1].lower(), thread
    assert "caused by a deploy" in thread[2]
    assert [(m.kind, m.status) for m in rows(flow.engine)] == [
        ("card.post", "sent"), ("card.refresh", "superseded"), ("thread.post", "sent"), ("card.refresh", "sent"), ("thread.post", "sent"),
        ("nudge.post", "sent"),
    ]
    # Nothing stale is left to go out later.
    flow.clock.advance(hours=1)
    assert flow.sender.deliver_due() == 0
    assert len(slack.updates(ALERTS)) == 1


def test_a_permanent_error_drops_the_message_and_does_not_hold_up_other_cards(engine, slack, bound_jobs):
    flow = make_flow(engine, slack, client=fast_client(settings_for(engine, slack)))
    first, second = declare(flow.engine, NOW), declare(flow.engine, NOW)
    slack.fail_next("chat.postMessage", 1, status=200, error="channel_not_found")  # Slack's answer for a deleted channel
    queue_card(flow.engine, first, ["C0GONE"])
    flow.sender.deliver_due()
    queue_card(flow.engine, second, [ALERTS])
    flow.sender.deliver_due()
    assert [(m.key, m.status) for m in rows(flow.engine)] == [(f"incident:{first}", "dead"), (f"incident:{second}", "sent")]
    assert "channel_not_found" in rows(flow.engine)[0].last_error
    assert len(slack.top_level(ALERTS)) == 1
    flow.clock.advance(hours=1)
    assert flow.sender.deliver_due() == 0


def test_slack_unreachable_keeps_the_message_and_retries(engine, slack, bound_jobs):
    """Connection refused (Slack API URL down): not lost, retried with backoff, then sent once."""
    import socket

    from slack_sdk import WebClient

    from bot.slack.delivery import OutboxSender

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    dead_port = sock.getsockname()[1]
    sock.close()  # nothing listens there
    flow = make_flow(engine, slack, client=fast_client(settings_for(engine, slack)))
    down = OutboxSender(WebClient(token="xoxb-test", base_url=f"http://127.0.0.1:{dead_port}/api/", timeout=2, retry_handlers=[]),
                        flow.engine, flow.clock)
    incident = declare(flow.engine, NOW)
    queue_card(flow.engine, incident, [ALERTS])
    down.deliver_due()
    (msg,) = rows(flow.engine)
    assert msg.status == "pending" and msg.attempts == 1 and msg.next_attempt_at == NOW + timedelta(seconds=2)
    flow.clock.advance(seconds=2)
    assert flow.sender.deliver_due() == 1  # Slack reachable again
    assert len(slack.top_level(ALERTS)) == 1
    assert rows(flow.engine)[0].status == "sent"


def test_a_card_posted_by_a_sender_that_lost_its_lease_is_found_by_the_next_not_posted_again(engine, slack, bound_jobs):
    """Sender A's post outlives its lease; sender B claims the message again.

    B looks for the message in the channel first (its metadata names the outbox id), finds A's
    card and records it: one card in Slack, the message sent, and that card is the one edited.
    """
    from slack_sdk import WebClient

    from bot.services.outbox import LEASE
    from bot.slack.delivery import OutboxSender

    flow = make_flow(engine, slack, client=fast_client(settings_for(engine, slack)))
    other = OutboxSender(fast_client(flow.rt.settings), flow.engine, flow.clock)

    class SlowClient(WebClient):
        raced = False

        def chat_postMessage(self, **kwargs):
            resp = super().chat_postMessage(**kwargs)
            if not SlowClient.raced:  # while A waits for Slack, its lease runs out and B takes over
                SlowClient.raced = True
                flow.clock.advance(seconds=LEASE.total_seconds() + 1)
                assert other.deliver_due() == 1
            return resp

    settings = flow.rt.settings
    slow = OutboxSender(SlowClient(token=settings.slack_bot_token, base_url=settings.slack_api_url, timeout=5, retry_handlers=[]),
                        flow.engine, flow.clock)
    incident = declare(flow.engine, NOW)
    queue_card(flow.engine, incident, [ALERTS])
    slow.deliver_due()

    assert SlowClient.raced
    (msg,) = rows(flow.engine)
    assert (msg.status, msg.attempts) == ("sent", 2)
    (card,) = slack.top_level(ALERTS)
    assert [(c.channel, c.ts) for c in cards(flow.engine)] == [(ALERTS, card["ts"])], "B recorded A's card"
    flow.clock.advance(minutes=30)
    assert flow.sender.deliver_due() == 0 and len(slack.posts()) == 1

    with session_scope(flow.engine) as s:
        acknowledge_incident(s, ref=str(incident), now=flow.clock(), actor="U2")
    flow.sender.deliver_due()
    (edit,) = slack.updates(ALERTS)
    assert edit["ts"] == card["ts"] and "Acknowledged" in message_text(slack.message(ALERTS, card["ts"]))


def test_delivering_one_card_reads_the_outbox_once_when_everything_went_out(engine, slack, bound_jobs):
    """The worker's pass after a wake-up: one look, no second look for what the first one sent."""
    from sqlalchemy import event

    flow = make_flow(engine, slack, client=fast_client(settings_for(engine, slack)))
    incident = declare(flow.engine, NOW)
    queue_card(flow.engine, incident, [ALERTS, "C0SECOND"])
    looks: list[str] = []

    def count(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("SELECT") and "outbox.next_attempt_at <=" in statement:
            looks.append(statement)

    event.listen(flow.engine, "before_cursor_execute", count)
    try:
        flow.sender.deliver_due()
    finally:
        event.remove(flow.engine, "before_cursor_execute", count)
    assert len(slack.top_level(ALERTS)) == 1 and len(slack.top_level("C0SECOND")) == 1
    assert [m.status for m in rows(flow.engine)] == ["sent", "sent"]
    assert len(looks) == 1, f"{len(looks)} due-message queries for one delivery"
