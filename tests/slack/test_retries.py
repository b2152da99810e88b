"""Slack answering 429 or 5xx: the outbox retries (honouring Retry-After; the client it sends with
does not retry by itself), and what fails stays in the outbox until it is delivered, exactly once."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.store.models import OutboxMessage, SlackMessage
from tests.slack.conftest import ALERTS
from tests.slack.harness import button_labels, sqlite_only

# Retrying is the outbox's business, the same on every database: SQLite only.
pytestmark = sqlite_only


def retry(app, seconds: float) -> int:
    """The worker's next round once ``seconds`` have passed on the app's clock."""
    app.clock.advance(seconds=seconds)
    return app.outbox_worker().deliver_due()


def test_a_429_is_retried_after_retry_after_and_posts_one_card(slack_app):
    app, fake = slack_app, slack_app.fake
    fake.fail_next("chat.postMessage", 1, status=429, retry_after=30)
    r = app.slack.command("/deploy", "checkout 1.0")
    assert r.http.status == 200 and r.http.elapsed < 3, "the ack does not wait for Slack's rate limit"
    assert "Recorded D-1" in r.reply()["text"], "the user's answer does not wait for the card"
    (message,) = app.all(OutboxMessage)
    assert message.status == "pending" and message.next_attempt_at == app.clock.now + timedelta(seconds=30)
    assert retry(app, 29) == 0 and fake.posts() == [], "not before Retry-After"
    assert retry(app, 1) == 1
    assert [c.status for c in fake.calls_of("chat.postMessage", ok=None)] == [429, 200]
    assert len(fake.posts("C1")) == 1 and len(app.all(SlackMessage)) == 1
    assert [m.status for m in app.all(OutboxMessage)] == ["sent"]


def test_a_503_is_retried_and_posts_one_card(slack_app):
    app, fake = slack_app, slack_app.fake
    fake.fail_next("chat.postMessage", 1, status=503)
    app.slack.command("/incident", "declare sev2 checkout Down", channel="C1")
    assert fake.posts() == [], "the second card waits behind the first (one incident's messages keep their order)"
    assert retry(app, 60) == 2
    statuses = [c.status for c in fake.calls_of("chat.postMessage", ok=None)]
    assert statuses.count(503) == 1 and statuses.count(200) == 2
    assert len(fake.posts(ALERTS)) == 1 and len(fake.posts("C1")) == 1
    # The failed post's retry first looked for it in the channel (a 5xx may have posted it).
    assert len(fake.calls_of("conversations.history")) == 1


def test_a_rate_limited_card_edit_is_retried(slack_app):
    app, fake = slack_app, slack_app.fake
    app.slack.command("/incident", "declare sev2 checkout Down", channel=ALERTS)
    card = fake.top_level(ALERTS)[0]
    fake.fail_next("chat.update", 1, status=429, retry_after=1)
    app.slack.press(card, "Acknowledge")
    assert [c.status for c in fake.calls_of("chat.update", ok=None)] == [429]
    assert fake.thread(ALERTS, card["ts"]) == [], "the thread line waits behind the card's edit"
    assert retry(app, 1) == 2
    assert [c.status for c in fake.calls_of("chat.update", ok=None)] == [429, 200]
    assert button_labels(fake.top_level(ALERTS)[0]) == ["Mitigated", "Resolve", "Post update", "I'm the lead", "Cancel"]
    assert len(fake.thread(ALERTS, card["ts"])) == 1


@pytest.mark.parametrize("failure", [{"times": 5, "status": 429, "retry_after": 2}, {"times": 1, "status": 502}],
                         ids=["429-five-times", "502"])
def test_a_longer_outage_delays_the_card_but_never_loses_or_duplicates_it(slack_app, failure):
    app, fake = slack_app, slack_app.fake
    fake.fail_next("chat.postMessage", **failure)
    r = app.slack.command("/deploy", "checkout 1.0")
    assert "D-1" in r.reply()["text"], "the user's reply does not depend on the card"
    assert fake.posts() == []
    (message,) = app.all(OutboxMessage)
    assert message.status == "pending" and message.last_error
    assert message.next_attempt_at > app.clock.now, "backed off"
    sent = 0
    for _ in range(8):  # each round of the worker, a minute apart
        sent += retry(app, 60)
    assert sent == 1
    assert len(fake.posts("C1")) == 1
    assert [m.status for m in app.all(OutboxMessage)] == ["sent"]


# --- replies to response_url -----------------------------------------------------------------

def test_a_reply_slack_cannot_take_now_is_kept_and_delivered_once_when_it_is_back(slack_app):
    app, fake = slack_app, slack_app.fake
    app.slack.command("/deploy", "checkout 1.0")
    fake.fail_next("response_url", 1, status=503)
    r = app.slack.command("/dora", "checkout")
    assert r.http.status == 200
    assert r.replies() == [], "Slack was down: nothing arrived yet"
    (queued,) = [m for m in app.all(OutboxMessage) if m.kind == "response.post"]
    assert (queued.kind, queued.status, queued.attempts) == ("response.post", "pending", 1) and "503" in queued.last_error
    assert r.response_url not in queued.key, "the key does not carry the URL"

    app.clock.advance(seconds=1)
    assert app.outbox_worker().deliver_due() == 1
    assert "DORA five keys" in r.reply()["text"] and r.reply()["response_type"] == "in_channel"
    app.clock.advance(minutes=5)
    assert app.outbox_worker().deliver_due() == 0 and len(r.replies()) == 1
    assert [m.status for m in app.all(OutboxMessage)] == ["sent", "sent"]  # the deploy card, the reply


def test_a_rate_limited_reply_waits_for_retry_after(slack_app):
    app, fake = slack_app, slack_app.fake
    fake.fail_next("response_url", 1, status=429, retry_after=7)
    r = app.slack.command("/deploy", "checkout 1.0")
    (reply,) = [m for m in app.all(OutboxMessage) if m.kind == "response.post"]
    assert reply.next_attempt_at == app.clock.now + timedelta(seconds=7)
    assert len(fake.posts("C1")) == 1, "the deploy card does not wait for the reply"
    app.clock.advance(seconds=6)
    assert app.outbox_worker().deliver_due() == 0 and r.replies() == []
    app.clock.advance(seconds=1)
    assert app.outbox_worker().deliver_due() == 1
    assert "Recorded D-1" in r.reply()["text"]


def test_a_reply_slack_refuses_is_dropped_not_retried(slack_app, caplog):
    app, fake = slack_app, slack_app.fake
    fake.fail_next("response_url", 1, status=404, error="expired_url")
    r = app.slack.command("/dora", "checkout")
    assert r.replies() == [] and app.all(OutboxMessage) == []
    assert any("Slack refused a reply" in rec.getMessage() and "expired_url" in rec.getMessage() for rec in caplog.records)


def test_a_reply_still_waiting_thirty_minutes_after_the_command_is_dropped(slack_app):
    """Slack takes a response_url for 30 minutes; after that the reply has nowhere to go."""
    app, fake = slack_app, slack_app.fake
    fake.fail_next("response_url", 1, status=503)
    r = app.slack.command("/dora", "checkout")
    app.clock.advance(minutes=30, seconds=1)
    assert app.outbox_worker().deliver_due() == 0
    (dropped,) = app.all(OutboxMessage)
    assert dropped.status == "dead" and "expired" in dropped.last_error
    assert r.replies() == []


def test_replies_after_one_that_waits_queue_behind_it_in_order(slack_app):
    from bot.slack.replies import DurableRespond

    app, fake = slack_app, slack_app.fake
    url = fake.new_response_url()
    respond = DurableRespond(url, app.engine, app.clock)
    fake.fail_next("response_url", 1, status=502)
    respond(text="first", response_type="ephemeral")
    respond(text="second", response_type="ephemeral")  # Slack is back, but this one must not overtake
    assert [c.status for c in fake.calls_of("response_url", ok=None)] == [502]
    app.clock.advance(seconds=1)
    # The app's own outbox worker may wake and send them first: wait for the replies, not a count.
    app.outbox_worker().deliver_due()
    texts = fake.wait_for(
        lambda: (t := [r["text"] for r in fake.responses() if url.endswith(r["_path"])]) == ["first", "second"] and t,
        message="both replies, in order",
    )
    assert texts == ["first", "second"]
