"""The DORA 2024 inputs from Slack over real HTTP: ``/incident mitigate``, ``/incident cancel``,
``/deploy ... fixes=INC-n``, ``/deploy hotfix`` and ``/dora explain rework``."""

from __future__ import annotations

from datetime import timedelta

from bot.services.metrics import build_metrics
from bot.store.db import session_scope
from bot.store.models import Deploy, Incident, IncidentEvent
from tests.conftest import NOW, PRODUCTION
from tests.slack.conftest import ALERTS
from tests.slack.harness import assert_usage_error, message_text


def metrics(app, service=None):
    with session_scope(app.engine, write=False) as session:
        return build_metrics(session, service=service, days=30, end=app.clock.now + timedelta(seconds=1),
                             timezone_name="UTC", production_environments=PRODUCTION)


def alert_card(app) -> dict:
    (card,) = app.fake.top_level(ALERTS)
    return card


def test_mitigate_ends_the_time_to_restore_and_resolve_keeps_it(slack_app):
    app, clock = slack_app, slack_app.clock
    app.slack.command("/incident", "declare sev2 checkout Checkout 5xx", channel=ALERTS)
    clock.advance(minutes=20)
    r = app.slack.command("/incident", "mitigate INC-1 flag turned off", user="U2", channel=ALERTS)
    assert "INC-1 mitigated" in r.reply()["text"]
    (incident,) = app.all(Incident)
    assert incident.mitigated_at == NOW + timedelta(minutes=20) and incident.resolved_at is None
    assert incident.state == "mitigated" and incident.restore_seconds == 20 * 60
    body = message_text(alert_card(app))
    assert "Mitigated" in body and "Time to restore" in body and "20m" in body
    line = app.fake.thread(ALERTS, alert_card(app)["ts"])[-1]["text"]
    assert "Mitigated by <@U2> after 20m" in line and "flag turned off" in line
    # measured now, while still open
    ttr = metrics(app)["time_to_restore"]
    assert ttr["incidents"] == 1 and ttr["median_seconds"] == 20 * 60 and ttr["open_incidents"] == 1

    again = app.slack.command("/incident", "mitigate INC-1", channel=ALERTS)
    assert "already mitigated" in again.reply()["text"]
    clock.advance(minutes=40)
    app.slack.command("/incident", "resolve INC-1 all clear", channel=ALERTS)
    (incident,) = app.all(Incident)
    assert incident.resolved_at == NOW + timedelta(hours=1) and incident.restore_seconds == 20 * 60
    assert metrics(app)["time_to_restore"]["open_incidents"] == 0


def test_resolving_without_mitigating_sets_both_to_the_same_instant(slack_app):
    app, clock = slack_app, slack_app.clock
    app.slack.command("/incident", "declare sev2 checkout Checkout 5xx", channel=ALERTS)
    clock.advance(minutes=30)
    app.slack.press(alert_card(app), "Resolve", user="U2")
    (incident,) = app.all(Incident)
    assert incident.mitigated_at == incident.resolved_at == NOW + timedelta(minutes=30)
    assert [e.kind for e in app.all(IncidentEvent)].count("mitigated") == 0  # one event: resolved


def test_cancel_takes_a_false_alarm_and_its_cause_out_of_the_numbers(slack_app):
    app = slack_app
    app.slack.command("/deploy", "checkout 1.0", channel="C1")
    app.slack.command("/incident", "declare sev2 checkout Checkout 5xx cause=D-1", channel=ALERTS)
    assert metrics(app)["change_failure_rate"]["failed"] == 1
    r = app.slack.command("/incident", "cancel INC-1 false alarm: the synthetic check broke", user="U2", channel=ALERTS)
    assert "INC-1 cancelled" in r.reply()["text"]
    m = metrics(app)
    assert m["change_failure_rate"]["failed"] == 0 and m["time_to_restore"]["open_incidents"] == 0
    (deploy,) = app.all(Deploy)
    assert deploy.change_failure is False
    body = message_text(alert_card(app))
    assert "Cancelled" in body and "synthetic check broke" in body
    assert app.fake.top_level(ALERTS)[0].get("blocks") and "Resolve" not in body, "a cancelled card has no buttons"
    assert "already cancelled" in app.slack.command("/incident", "cancel INC-1 again", channel=ALERTS).reply()["text"]
    assert "was cancelled" in app.slack.command("/incident", "resolve INC-1", channel=ALERTS).reply()["text"]
    assert "was cancelled" in app.slack.command("/incident", "severity INC-1 sev1", channel=ALERTS).reply()["text"]
    assert app.all(Incident)[0].severity == "sev2"
    assert_usage_error(app.slack.command("/incident", "cancel INC-1"), "/incident cancel", says="needs a reason")


def test_deploy_fixes_an_incident_and_hotfix_are_rework_and_explained(slack_app):
    app = slack_app
    app.slack.command("/deploy", "checkout 1.0", channel="C1")
    app.slack.command("/incident", "declare sev2 checkout Checkout 5xx", channel=ALERTS)
    r = app.slack.command("/deploy", "checkout 1.0.1 fixes=INC-1 patch the cart", channel="C1")
    assert "fixing INC-1 (rework)" in r.reply()["text"]
    r = app.slack.command("/deploy", "hotfix checkout 1.0.2 cache bust", channel="C1")
    assert "as a hotfix (rework)" in r.reply()["text"]
    fix, hot = sorted((d for d in app.all(Deploy) if d.rework), key=lambda d: d.id)
    assert fix.fixes_id == 1 and fix.note == "patch the cart" and hot.fixes_id is None and hot.version == "1.0.2"
    cards = [message_text(c) for c in app.fake.posts("C1")]
    assert any("fixes INC-1" in c for c in cards) and any("Hotfix D-3" in c for c in cards)

    rr = metrics(app)["deployment_rework_rate"]
    assert rr["rework"] == 2 and rr["deploys"] == 3
    app.clock.advance(minutes=1)  # the window [now - 30 days, now) holds deploys made before now
    body = message_text(app.slack.command("/dora", "explain rework").reply())
    assert "2 of 3 deploys were rework" in body
    assert "D-2 `checkout` 1.0.1: fixes INC-1" in body and "D-3 `checkout` 1.0.2: marked as a hotfix" in body
    card = message_text(app.slack.command("/dora", "").reply())
    assert "Deployment rework rate" in card and "66.7% (2 of 3)" in card

    assert_usage_error(app.slack.command("/deploy", "checkout 1.1 fixes=banana"), "/deploy", says="not an incident")
    r = app.slack.command("/deploy", "checkout 1.1 fixes=INC-99")
    assert "no incident" in message_text(r.reply()).lower() or "INC-99" in message_text(r.reply())
    assert len(app.all(Deploy)) == 3
