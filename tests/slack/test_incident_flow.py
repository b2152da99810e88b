"""``/incident`` and the incident card's recovery buttons over real HTTP."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import select

from bot.slack.ids import Action
from bot.store.db import session_scope
from bot.store.models import Deploy, Incident, IncidentEvent, SlackMessage
from tests.conftest import NOW
from tests.slack.conftest import ALERTS
from tests.slack.harness import (
    assert_usage_error,
    button_labels,
    buttons,
    ephemeral_answer,
    message_text,
    sqlite_only,
)

USAGE = "/incident declare <sev1|sev2|sev3|sev4>"


def events(app, kind: str | None = None) -> list[IncidentEvent]:
    rows = app.all(IncidentEvent)
    return [e for e in rows if kind is None or e.kind == kind]


def cards(app) -> tuple[dict, dict]:
    """The incident card in the alert channel and in the declaring channel (current state)."""
    (alert,) = app.fake.top_level(ALERTS)
    (local,) = [m for m in app.fake.top_level("C1") if m["text"].startswith("INC-")]
    return alert, local


def declare(app, text="sev2 checkout Checkout 5xx", **kw):
    r = app.slack.command("/incident", "declare " + text, **kw)
    return r


def test_declare_posts_the_card_to_the_alert_channel_and_the_declaring_channel(slack_app):
    app = slack_app
    r = declare(app, user="U1", channel="C1")
    assert r.http.status == 200 and r.http.elapsed < 3
    reply = r.reply()
    assert reply["response_type"] == "ephemeral" and "INC-1" in reply["text"]

    alert, local = cards(app)
    for card in (alert, local):
        body = message_text(card)
        assert "INC-1" in body and "Checkout 5xx" in body and "SEV2" in body and "checkout" in body and "<@U1>" in body
        assert "Open for" in body
        assert button_labels(card) == ["Acknowledge", "Mitigated", "Resolve", "Post update", "I'm the lead", "Cancel"]
        assert {el["action_id"] for _, el in buttons(card)} == {
            Action.ACK, Action.MITIGATE, Action.RESOLVE, Action.UPDATE, Action.LEAD, Action.CANCEL,
        }
        assert {el["value"] for _, el in buttons(card)} == {"1"}
        assert card["text"], "a plain text for notifications"
    assert app.fake.posts(thread=True) == []

    (incident,) = app.all(Incident)
    assert (incident.severity, incident.title, incident.declared_by, incident.source) == ("sev2", "Checkout 5xx", "U1", "slack")
    assert incident.started_at == NOW and incident.state == "open"
    assert {(m.channel, m.kind) for m in app.all(SlackMessage)} == {(ALERTS, "incident"), ("C1", "incident")}


def test_declare_from_the_alert_channel_or_a_dm_posts_one_card(slack_app):
    app = slack_app
    declare(app, channel=ALERTS)
    declare(app, "sev3 payments Slow payouts", channel="D0DM")
    assert [p["channel"] for p in app.fake.posts()] == [ALERTS, ALERTS]


def test_declare_with_a_start_time(slack_app):
    app = slack_app
    declare(app, "sev1 checkout Down started=20m")
    (incident,) = app.all(Incident)
    assert incident.started_at == NOW - timedelta(minutes=20) and incident.severity == "sev1"
    assert "20m" in message_text(cards(app)[0])


def test_acknowledge_resolve_edit_both_cards_in_place_and_add_thread_lines(slack_app):
    app, fake, clock = slack_app, slack_app.fake, slack_app.clock
    declare(app)
    alert, local = cards(app)

    clock.advance(minutes=5)
    r = app.slack.press(alert, "Acknowledge", user="U2")
    assert r.http.status == 200 and r.http.elapsed < 3
    updates = fake.updates()
    assert sorted((u["channel"], u["ts"]) for u in updates) == sorted([(ALERTS, alert["ts"]), ("C1", local["ts"])])
    for u in updates:
        assert u["text"] and "acknowledged" in u["text"]
    new_alert, new_local = cards(app)
    for card in (new_alert, new_local):
        body = message_text(card)
        assert "Acknowledged" in body and "<@U2>" in body
        assert button_labels(card) == ["Mitigated", "Resolve", "Post update", "I'm the lead", "Cancel"]
    thread_alert = fake.thread(ALERTS, alert["ts"])
    thread_local = fake.thread("C1", local["ts"])
    assert len(thread_alert) == 1 and len(thread_local) == 1
    assert "Acknowledged by <@U2>" in thread_alert[0]["text"]
    assert r.replies() == [], "the card itself shows the change; no extra ephemeral"

    (incident,) = app.all(Incident)
    assert incident.acknowledged_at == NOW + timedelta(minutes=5) and incident.acknowledged_by == "U2"
    assert incident.ack_seconds == 300

    # A second press (a double click, or the stale card in the other channel) changes nothing.
    again = app.slack.press(local, "Acknowledge", user="U3")
    answer = again.reply()
    assert answer["response_type"] == "ephemeral"
    assert "already acknowledged" in answer["text"] and "<@U2>" in answer["text"]
    assert len(events(app, "acknowledged")) == 1
    assert len(fake.thread(ALERTS, alert["ts"])) == 1 and len(fake.thread("C1", local["ts"])) == 1
    (incident,) = app.all(Incident)
    assert incident.acknowledged_by == "U2"
    assert button_labels(cards(app)[1]) == ["Mitigated", "Resolve", "Post update", "I'm the lead", "Cancel"], "the stale card was refreshed"

    clock.advance(minutes=25)
    app.slack.press(new_alert, "Resolve", user="U2")
    for card in cards(app):
        body = message_text(card)
        assert "Resolved" in body and "Time to restore" in body and "30m" in body
        assert buttons(card) == [], "a resolved card has no buttons"
        assert "Open for" not in body
    *_, line, question = [m["text"] for m in fake.thread(ALERTS, alert["ts"])]
    assert "Resolved by <@U2>" in line and "30m" in line
    assert "Was it caused by a deploy?" in question, "resolved with no cause: the nudge follows"
    (incident,) = app.all(Incident)
    assert incident.resolved_at == NOW + timedelta(minutes=30) and incident.restore_seconds == 1800

    # Resolve again from a stale card: nothing changes.
    stale = app.slack.press(local, "Resolve", user="U3")
    assert "already resolved" in stale.reply()["text"]
    assert len(events(app, "resolved")) == 1
    assert len(fake.thread(ALERTS, alert["ts"])) == 3  # acknowledged, resolved, the cause question


def test_acknowledge_a_resolved_incident_from_a_stale_card(slack_app):
    app = slack_app
    declare(app)
    alert, _ = cards(app)
    app.slack.command("/incident", "resolve INC-1 false alarm")
    r = app.slack.press(alert, "Acknowledge")
    assert "already resolved" in r.reply()["text"]
    assert events(app, "acknowledged") == []


def test_roll_back_button_records_the_rollback_and_links_the_cause(slack_app):
    app, slack, clock, fake = slack_app, slack_app.slack, slack_app.clock, slack_app.fake
    slack.command("/deploy", "checkout 1.0")
    clock.advance(hours=1)
    slack.command("/deploy", "checkout 1.1")
    clock.advance(minutes=10)
    declare(app, "sev2 checkout Checkout 5xx cause=D-2")

    alert, local = cards(app)
    assert button_labels(alert) == ["Acknowledge", "Mitigated", "Resolve", "Roll back D-2", "Post update", "I'm the lead", "Cancel"]
    assert "Caused by" in message_text(alert) and "D-2" in message_text(alert)

    clock.advance(minutes=2)
    r = slack.press(alert, "Roll back", user="U2")
    assert r.http.status == 200
    _, d2, d3 = app.all(Deploy)
    assert d3.rollback_of_id == d2.id and d3.version == "1.0" and d3.created_by == "U2"
    assert d2.change_failure
    (incident,) = app.all(Incident)
    assert incident.caused_by_id == d2.id
    assert incident.resolved_at is None, "rolling back does not resolve by itself"

    for card in cards(app):
        assert "Roll back D-2" not in button_labels(card)
        assert "rolled back by D-3" in message_text(card)
    line = fake.thread(ALERTS, alert["ts"])[-1]["text"]
    assert "rolled back" in line and "D-3" in line

    again = slack.press(local, "Roll back", user="U3")
    assert "already rolled back by D-3" in again.reply()["text"]
    assert len(app.all(Deploy)) == 3, "no second rollback"
    assert len(events(app, "rollback")) == 1


def test_roll_back_when_there_is_no_earlier_version_explains_and_keeps_the_card(slack_app):
    app, slack = slack_app, slack_app.slack
    slack.command("/deploy", "checkout 1.0")
    declare(app, "sev2 checkout Broken cause=D-1")
    alert, _ = cards(app)
    r = slack.press(alert, "Roll back")
    answer = r.reply()
    assert answer["response_type"] == "ephemeral" and "No earlier good version" in message_text(answer)
    assert len(app.all(Deploy)) == 1
    assert events(app, "rollback") == []


def test_incident_subcommands_edit_the_card_and_thread(slack_app):
    app, slack, clock, fake = slack_app, slack_app.slack, slack_app.clock, slack_app.fake
    slack.command("/deploy", "checkout 1.0")
    declare(app)
    alert, _ = cards(app)

    clock.advance(minutes=3)
    assert "INC-1" in slack.command("/incident", "ack INC-1", user="U5").reply()["text"]
    assert "Acknowledged by <@U5>" in fake.thread(ALERTS, alert["ts"])[-1]["text"]

    slack.command("/incident", "update 1 rolled back the flag, watching", user="U5")
    assert "rolled back the flag, watching" in fake.thread(ALERTS, alert["ts"])[-1]["text"]

    slack.command("/incident", "cause INC-1 D-1")
    assert "Caused by" in message_text(cards(app)[0])
    assert "D-1" in fake.thread(ALERTS, alert["ts"])[-1]["text"]

    listing = message_text(slack.command("/incident", "list").reply())
    assert "INC-1" in listing and "acknowledged" in listing

    clock.advance(minutes=7)
    slack.command("/incident", "resolve INC-1 flag off")
    card = cards(app)[0]
    assert "flag off" in message_text(card) and "10m" in message_text(card)

    show = message_text(slack.command("/incident", "show INC-1").reply())
    for bit in ("Declared", "Acknowledged", "Update", "linked the cause", "Resolved"):
        assert bit in show
    assert "No open incidents" in message_text(slack.command("/incident", "list").reply())

    # Everything again: nothing changes, the user is told why.
    assert "already" in slack.command("/incident", "ack INC-1").reply()["text"]
    assert "already" in slack.command("/incident", "resolve INC-1").reply()["text"]
    assert "already" in slack.command("/incident", "cause INC-1 D-1").reply()["text"]
    with session_scope(app.engine, write=False) as s:
        kinds = [e.kind for e in s.exec(select(IncidentEvent).order_by(IncidentEvent.id)).all()]
    assert kinds == ["declared", "acknowledged", "update", "cause", "resolved"]


@sqlite_only
@pytest.mark.parametrize(
    "text, usage, says",
    [
        ("declare sev9 checkout Broken", USAGE, "severity"),
        ("declare sev2 checkout", USAGE, "title"),
        ("declare sev2 checkout Broken cause=checkout", USAGE, "not a deploy"),
        ("declare sev2 checkout Broken started=soonish", None, "not a time"),
        ("declare sev2 checkout Broken started=2099-01-01T00:00Z", None, "future"),
        ("bogus", "`/incident help` shows every form", "unknown subcommand `bogus` (try declare, list, show"),
        ("ack", "/incident ack <INC-n>", None),
        ("ack checkout", "/incident ack <INC-n>", "not an incident"),
        ("update INC-1", "/incident update", "text"),
        ("list everything", "/incident list", None),
    ],
)
def test_bad_incident_input_gets_usage_and_stores_nothing(slack_app, text, usage, says):
    before = slack_app.counts()
    r = slack_app.slack.command("/incident", text)
    assert_usage_error(r, *([usage] if usage else []), says=says)
    assert slack_app.counts() == before
    assert slack_app.fake.posts() == []


def test_unknown_references_are_explained(slack_app):
    slack = slack_app.slack
    slack.command("/deploy", "payments 1.0")
    before = slack_app.counts()
    missing = message_text(ephemeral_answer(slack.command("/incident", "ack INC-9")))
    assert "No incident `INC-9`" in missing and "/incident resolve" not in missing, "a reference that is not there: no usage dump"
    assert "D-7" in message_text(ephemeral_answer(slack.command("/incident", "declare sev2 checkout Broken cause=D-7")))
    # A cause of another service is refused, and the incident is not half-stored.
    other = message_text(ephemeral_answer(slack.command("/incident", "declare sev2 checkout Broken cause=D-1")))
    assert "payments" in other
    assert slack_app.counts() == before


@sqlite_only
def test_incident_help(slack_app):
    body = message_text(ephemeral_answer(slack_app.slack.command("/incident", "help")))
    for form in ("/incident declare", "/incident list", "/incident show", "/incident ack", "/incident update", "/incident cause",
                 "/incident resolve"):
        assert form in body


def test_the_bot_joins_a_public_alert_channel_it_is_not_in(slack_app):
    app, fake = slack_app, slack_app.fake
    fake.not_in_channel.add(ALERTS)
    declare(app)
    (join,) = fake.calls_of("conversations.join")
    assert join.params["channel"] == ALERTS
    assert len(fake.posts(ALERTS)) == 1 and len(fake.posts("C1")) == 1
    alert, _ = cards(app)
    app.slack.press(alert, "Acknowledge")
    assert len(fake.thread(ALERTS, alert["ts"])) == 1


def test_reminder_in_the_thread_with_snooze_and_acknowledge_buttons(slack_app):
    from bot.services import outbox

    app, fake, clock = slack_app, slack_app.fake, slack_app.clock
    declare(app, channel=ALERTS)
    alert = fake.top_level(ALERTS)[0]
    clock.advance(minutes=16)
    # What the scheduler's reminder job enqueues; the outbox worker sends it.
    with session_scope(app.engine) as s:
        outbox.enqueue(s, kind="reminder.post", key=outbox.card_key("incident", 1), payload={"incident": 1, "reminder": "ack"},
                       now=clock.now)
    app.slack.settle()  # the commit woke the outbox worker
    (reminder,) = fake.thread(ALERTS, alert["ts"])
    assert "16m" in message_text(reminder) and button_labels(reminder)[0] == "Acknowledge"
    snooze = [label for label in button_labels(reminder) if label.startswith("Snooze")]
    assert snooze

    r = app.slack.press(reminder, snooze[0], user="U3")
    answer = r.reply()
    assert answer["response_type"] == "in_channel" and "snoozed" in answer["text"] and "INC-1" in answer["text"]
    (incident,) = app.all(Incident)
    assert incident.snoozed_until is not None and incident.snoozed_until > clock.now
    assert incident.state == "open", "snoozing does not acknowledge"

    app.slack.press(reminder, "Acknowledge", user="U3")
    (incident,) = app.all(Incident)
    assert incident.acknowledged_by == "U3"
    assert button_labels(cards_in(app, ALERTS)) == ["Mitigated", "Resolve", "Post update", "I'm the lead", "Cancel"]


def cards_in(app, channel):
    return next(m for m in app.fake.top_level(channel) if m["text"].startswith("INC-"))


def test_a_button_of_an_unknown_incident_is_explained(slack_app):
    app = slack_app
    declare(app, channel=ALERTS)
    card = app.fake.top_level(ALERTS)[0]
    for block in card["blocks"]:
        for el in block.get("elements") or []:
            if el.get("type") == "button":
                el["value"] = "999"
    before = app.counts()
    answer = app.slack.press(card, "Acknowledge").reply()
    assert answer["response_type"] == "ephemeral" and "INC-999" in message_text(answer)
    assert app.counts() == before
