"""The outbox: order per card, latest state wins, backoff and Retry-After, leases, no double send."""

from datetime import datetime, timedelta, timezone

from bot.services import outbox
from bot.store.db import session_scope
from bot.store.models import OutboxMessage

UTC = timezone.utc
T0 = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)


def put(engine, kind, key="incident:1", at=T0) -> int:
    with session_scope(engine) as s:
        return outbox.enqueue(s, kind=kind, key=key, payload={"n": kind}, now=at).id


def status(engine, message_id):
    with session_scope(engine, write=False) as s:
        m = s.get(OutboxMessage, message_id)
        return m.status, m.attempts, m.next_attempt_at


def test_messages_of_one_card_go_in_order_while_other_cards_are_not_held_up(engine):
    post = put(engine, "card.post")
    thread = put(engine, "thread.post")
    other = put(engine, "card.post", key="incident:2")
    assert outbox.claim(engine, thread, now=T0) is None  # waits for the card to exist
    assert outbox.claim(engine, other, now=T0) is not None  # another card is independent
    assert outbox.claim(engine, post, now=T0) is not None
    outbox.mark_sent(engine, post, now=T0)
    assert outbox.claim(engine, thread, now=T0) is not None


def test_an_older_refresh_is_superseded_by_a_newer_one(engine):
    first = put(engine, "card.refresh")
    second = put(engine, "card.refresh")
    assert outbox.claim(engine, first, now=T0) is None
    assert status(engine, first)[0] == "superseded"
    assert outbox.claim(engine, second, now=T0) is not None


def test_a_claimed_message_cannot_be_claimed_twice(engine):
    m = put(engine, "digest.post", key="x")
    assert outbox.claim(engine, m, now=T0) is not None
    assert outbox.claim(engine, m, now=T0) is None  # another worker would skip it
    # ... until the lease runs out (its sender died mid-send): then it is due again.
    assert outbox.claim(engine, m, now=T0 + outbox.LEASE) is not None


def test_failures_back_off_and_honour_retry_after_then_give_up(engine):
    m = put(engine, "digest.post", key="x")
    outbox.claim(engine, m, now=T0)
    assert outbox.mark_failed(engine, m, now=T0, error="ratelimited", retry_after=30) == "pending"
    assert status(engine, m)[2] == T0 + timedelta(seconds=30)
    assert outbox.due_ids(engine, now=T0 + timedelta(seconds=29)) == []
    assert outbox.due_ids(engine, now=T0 + timedelta(seconds=30)) == [m]
    outbox.claim(engine, m, now=T0 + timedelta(seconds=30))
    assert outbox.mark_failed(engine, m, now=T0, error="HTTP 503") == "pending"
    assert status(engine, m)[2] == T0 + timedelta(seconds=4)  # 2 ** attempts
    assert outbox.mark_failed(engine, m, now=T0, error="invalid_blocks", permanent=True) == "dead"
    assert outbox.depth(engine)[0] == 0


def test_a_long_slack_outage_delays_a_message_but_never_drops_it(engine):
    m = put(engine, "digest.post", key="x")
    now = T0
    for _ in range(60):  # hours of 503s: the backoff grows to its cap and the message stays
        outbox.claim(engine, m, now=now)
        assert outbox.mark_failed(engine, m, now=now, error="HTTP 503") == "pending"
        now = status(engine, m)[2]
    assert now - T0 > timedelta(hours=6)
    outbox.claim(engine, m, now=now)
    assert outbox.mark_failed(engine, m, now=now, error="ratelimited", retry_after=30) == "pending"
    assert status(engine, m)[2] - now == timedelta(seconds=30)
    assert outbox.claim(engine, m, now=now + timedelta(seconds=30)) is not None
    outbox.mark_sent(engine, m, now=now + timedelta(seconds=30))
    assert status(engine, m)[0] == "sent"


def test_our_own_repeated_failures_end_in_dead_not_a_blocked_card(engine):
    m = put(engine, "card.refresh", key="incident:1")
    for i in range(outbox.MAX_FAULT_ATTEMPTS):
        outbox.claim(engine, m, now=T0 + timedelta(hours=i))
        state = outbox.mark_failed(engine, m, now=T0 + timedelta(hours=i), error="KeyError: 'x'", fault=True)
    assert state == "dead"


def test_depth_counts_waiting_messages_and_their_age(engine):
    put(engine, "digest.post", key="a", at=T0)
    sent = put(engine, "digest.post", key="b", at=T0 + timedelta(minutes=1))
    outbox.mark_sent(engine, sent, now=T0)
    n, oldest = outbox.depth(engine)
    assert n == 1 and oldest == T0
