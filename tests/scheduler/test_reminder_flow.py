"""Incident reminders through Slack: the job, the outbox, the card's thread, and the Snooze button.

The incident is declared with ``/incident`` through the real served app (signed requests), its
card lands in the alert channel; the reminder job (``jobs.send_due_reminders``) runs with the
app's clock moved forward, and the outbox sender posts to the fake Slack. Buttons are pressed
on the messages the fake holds, through the served app.
"""

from __future__ import annotations

from datetime import timedelta

from bot.scheduler import jobs
from bot.slack.ids import Action
from tests.scheduler.conftest import ALERTS
from tests.slack.harness import button_labels, buttons, message_text


def card_and_thread(app):
    (card,) = app.fake.top_level(ALERTS)
    return card, app.fake.thread(ALERTS, card["ts"])


def reminders(app) -> list[dict]:
    _, thread = card_and_thread(app)
    return [m for m in thread if m["text"].startswith("Reminder:")]


def run_reminders(app) -> int:
    queued = jobs.send_due_reminders()
    app.slack.settle()  # the job's commit woke the outbox worker: wait for it
    return queued


def test_ack_reminder_in_the_card_thread_snooze_then_resolve_stops_them(served):
    app, clock = served, served.clock
    app.slack.command("/incident", "declare sev2 checkout Checkout 5xx", channel=ALERTS)
    card, thread = card_and_thread(app)
    assert thread == []

    clock.advance(minutes=14, seconds=59)
    assert run_reminders(app) == 0
    clock.advance(seconds=1)  # DORA_ACK_REMINDER (15m) after the declaration
    assert run_reminders(app) == 1
    (reminder,) = reminders(app)
    assert reminder["thread_ts"] == card["ts"]
    assert "INC-1" in message_text(reminder) and "acknowledged" in message_text(reminder)
    assert button_labels(reminder) == ["Acknowledge", "Snooze 30m", "Snooze 1h", "Snooze 4h"]
    snooze_values = {el["text"]["text"]: el["value"] for _, el in buttons(reminder)}
    assert snooze_values["Snooze 1h"] == "1:60"

    # The job runs every minute; the same reminder is never posted twice.
    clock.advance(minutes=1)
    assert run_reminders(app) == 0
    assert len(reminders(app)) == 1

    r = app.slack.press(reminder, "Snooze 1h", user="U7")
    assert r.http.status == 200
    (answer,) = r.replies()
    assert "snoozed" in answer["text"] and "1h" in answer["text"]

    clock.advance(minutes=59)  # still within the snooze
    assert run_reminders(app) == 0
    assert len(reminders(app)) == 1
    clock.advance(minutes=1)  # the snooze is over and it is still not acknowledged
    assert run_reminders(app) == 1
    assert len(reminders(app)) == 2

    # Resolve from the card: no reminder ever after.
    app.slack.press(app.fake.message(ALERTS, card["ts"]), "Resolve", user="U7")
    app.extra["sender"].deliver_due()
    for later in (timedelta(minutes=15), timedelta(hours=1), timedelta(hours=6)):
        clock.advance(seconds=later.total_seconds())
        assert run_reminders(app) == 0
    assert len(reminders(app)) == 2
    assert ("Resolved" in message_text(app.fake.message(ALERTS, card["ts"]))
            or "resolved" in message_text(app.fake.message(ALERTS, card["ts"])))


def test_after_acknowledge_update_reminders_every_hour_with_post_update_and_snooze(served):
    app, clock = served, served.clock
    app.slack.command("/incident", "declare sev2 checkout Checkout 5xx", channel=ALERTS)
    card, _ = card_and_thread(app)
    clock.advance(minutes=5)
    app.slack.press(card, "Acknowledge", user="U7")
    app.extra["sender"].deliver_due()

    clock.advance(minutes=59)
    assert run_reminders(app) == 0
    clock.advance(minutes=1)  # DORA_UPDATE_REMINDER (1h) after the acknowledgement
    assert run_reminders(app) == 1
    (reminder,) = reminders(app)
    assert reminder["thread_ts"] == card["ts"]
    assert button_labels(reminder)[0] == "Post update"
    assert {el["action_id"] for _, el in buttons(reminder)} >= {Action.UPDATE}

    clock.advance(hours=1)
    assert run_reminders(app) == 1  # an hour after the previous reminder
    assert len(reminders(app)) == 2


def test_a_reminder_queued_before_the_resolve_is_not_posted_after_it(served):
    app, clock = served, served.clock
    app.slack.command("/incident", "declare sev2 checkout Checkout 5xx", channel=ALERTS)
    app.slack.worker.stop()  # from here on, delivery happens only when this test says
    clock.advance(minutes=15)
    assert jobs.send_due_reminders() == 1  # queued; Slack delivery has not happened yet
    app.slack.command("/incident", "resolve INC-1 fixed", channel=ALERTS)
    app.extra["sender"].deliver_due()
    assert reminders(app) == []
