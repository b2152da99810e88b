"""App Home: ``app_home_opened`` publishes the home view; its Refresh button publishes it again."""

from __future__ import annotations

from bot.slack.ids import Action
from tests.slack.harness import button_labels, message_text


def test_app_home_opened_publishes_the_home_view(slack_app):
    app, fake = slack_app, slack_app.fake
    app.slack.command("/deploy", "checkout 1.0", user="U1")
    app.slack.command("/incident", "declare sev1 checkout Checkout down", user="U2")

    r = app.slack.home_opened("U1")
    assert r.status == 200 and r.elapsed < 3
    (call,) = fake.calls_of("views.publish")
    assert call.params["user_id"] == "U1"
    view = fake.published["U1"]
    assert view["type"] == "home" and len(view["blocks"]) <= 100
    body = message_text(view)
    assert "DORA five keys" in body
    assert "Your services" in body and "`checkout`" in body, "U1 deployed checkout"
    assert "Open incidents" in body and "INC-1" in body and "Checkout down" in body
    assert button_labels(view) == ["Refresh"]


def test_home_of_someone_without_services_has_no_your_services_section(slack_app):
    slack_app.slack.home_opened("U9")
    body = message_text(slack_app.fake.published["U9"])
    assert "Your services" not in body and "No open incidents" in body


def test_the_messages_tab_publishes_nothing(slack_app):
    r = slack_app.slack.event({"type": "app_home_opened", "user": "U1", "channel": "D0HOME", "tab": "messages", "event_ts": "1.2"})
    assert r.status == 200
    assert slack_app.fake.calls_of("views.publish") == []


def test_refresh_button_republishes_with_current_data(slack_app):
    app, fake = slack_app, slack_app.fake
    app.slack.home_opened("U1")
    home = fake.published["U1"]
    assert "INC-1" not in message_text(home)
    app.slack.command("/incident", "declare sev2 payments Payouts stuck")

    r = app.slack.press(home, "Refresh", user="U1")
    assert r.http.status == 200
    assert r.payload["actions"][0]["action_id"] == Action.HOME_REFRESH
    assert len(fake.calls_of("views.publish")) == 2
    assert "INC-1" in message_text(fake.published["U1"])
