"""App Home lists the incidents I lead and my open follow-ups, with Done buttons."""

from __future__ import annotations

from bot.store.models import IncidentFollowup
from tests.slack.conftest import ALERTS
from tests.slack.harness import button_labels, message_text


def test_home_shows_my_incidents_and_follow_ups_and_done_republishes_it(slack_app):
    app, fake = slack_app, slack_app.fake
    app.slack.command("/incident", "declare sev1 checkout Checkout down", user="U1", channel=ALERTS)
    app.slack.command("/incident", "declare sev3 search Search slow", user="U1", channel=ALERTS)
    app.slack.command("/incident", "lead INC-1", user="U2", channel=ALERTS)
    app.slack.command("/incident", "followup INC-1 add a canary", user="U2", channel=ALERTS)
    app.slack.command("/incident", "followup INC-2 <@U3> tune the alert", user="U2", channel=ALERTS)

    app.slack.home_opened("U2")
    home = fake.published["U2"]
    body = message_text(home)
    mine = body.split("Incidents you lead", 1)[1].split("Your follow-ups", 1)[0]
    assert "INC-1" in mine and "Checkout down" in mine and "INC-2" not in mine
    followups = body.split("Your follow-ups", 1)[1].split("DORA five keys", 1)[0]
    assert "F-1" in followups and "add a canary" in followups and "tune the alert" not in followups, "F-2 is U3's"
    assert button_labels(home) == ["Done", "Refresh"]

    app.slack.press(home, "Done", user="U2")
    assert app.all(IncidentFollowup)[0].done_by == "U2"
    again = message_text(fake.published["U2"])
    assert "add a canary" not in again and "No open follow-ups" in again
    assert len(fake.calls_of("views.publish")) == 2

    app.slack.home_opened("U3")
    other = message_text(fake.published["U3"])
    assert "You lead no open incident" in other and "tune the alert" in other

    app.slack.command("/incident", "resolve INC-1", user="U2", channel=ALERTS)
    app.slack.home_opened("U2")
    assert "You lead no open incident" in message_text(fake.published["U2"])
