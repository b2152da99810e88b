"""Text people type reaches Slack intact: decoded once when it comes in, escaped for mrkdwn on the way out.

Slack sends slash-command text with ``&``, ``<`` and ``>`` escaped (``should_escape``) and modal
inputs raw; in mrkdwn (block text and a message's ``text``) those three characters are control
characters and must be sent as ``&amp;`` ``&lt;`` ``&gt;`` unless they form a link, mention or date
(https://docs.slack.dev/messaging/formatting-message-text#escaping). The fake records every
unescaped ``<`` in ``fake_slack.escaping``.
"""

from __future__ import annotations

import json

from bot.slack.ids import Block
from bot.store.models import Deploy, Incident, IncidentEvent
from tests.slack.conftest import ALERTS
from tests.slack.harness import ephemeral_answer, message_text, sqlite_only

pytestmark = sqlite_only  # about text, not storage


def test_help_and_usage_render_literally(slack_app):
    slack = slack_app.slack
    for command, text in (("/deploy", "help"), ("/deploy", "checkout"), ("/incident", "help"), ("/incident", "bogus"), ("/dora", "help")):
        ephemeral_answer(slack.command(command, text))
    assert slack_app.fake.escaping == [], (
        "usage like `/deploy <service> <version>` must be sent as &lt;service&gt;:\n" + "\n".join(slack_app.fake.escaping[:5])
    )


def test_a_deploy_note_with_angle_brackets(slack_app):
    app = slack_app
    app.slack.command("/deploy", "checkout 1.0 fixes &lt;cart&gt; &amp; more")  # as Slack sends it
    (deploy,) = app.all(Deploy)
    assert deploy.note == "fixes <cart> & more", "stored as typed"
    assert app.fake.escaping == [], "\n".join(app.fake.escaping)


def test_an_incident_title_with_angle_brackets_from_the_command(slack_app):
    app = slack_app
    app.slack.command("/incident", "declare sev2 checkout p99 &gt; 2s &amp; rising", channel=ALERTS)
    (incident,) = app.all(Incident)
    assert incident.title == "p99 > 2s & rising"
    app.slack.command("/incident", "list")
    app.slack.command("/deploy", "checkout 1.1")  # the deploy card warns about the open incident
    assert app.fake.escaping == [], "\n".join(app.fake.escaping)


def test_modal_text_with_angle_brackets(slack_app):
    app, fake = slack_app, slack_app.fake
    app.slack.command("/incident", "", channel=ALERTS)
    view = fake.last_view()
    app.slack.submit(view, {Block.TITLE: "p99 <200ms target missed", Block.SERVICE: "checkout"})
    (incident,) = app.all(Incident)
    assert incident.title == "p99 <200ms target missed"
    card = fake.top_level(ALERTS)[0]
    app.slack.press(card, "Post update")
    app.slack.submit(fake.last_view(), {Block.UPDATE_TEXT: "latency <1s again, watching"})
    assert "latency <1s again" in fake.thread(ALERTS, card["ts"])[0]["text"].replace("&lt;", "<")
    app.slack.command("/incident", "list")
    assert fake.escaping == [], "\n".join(fake.escaping)


def test_update_text_is_stored_the_same_from_the_command_and_the_modal(slack_app):
    app = slack_app
    app.slack.command("/incident", "declare sev2 checkout Down", channel=ALERTS)
    app.slack.command("/incident", "update INC-1 latency &lt;1s again")  # as Slack sends it
    app.slack.command("/incident", "resolve INC-1 flag &amp; cache off")
    events = app.all(IncidentEvent)
    assert [e.text for e in events if e.kind in ("update", "resolved")] == ["latency <1s again", "flag & cache off"]
    (incident,) = app.all(Incident)
    assert incident.resolution_note == "flag & cache off"
    card = app.fake.top_level(ALERTS)[0]
    raw = json.dumps(card)
    assert "flag &amp; cache off" in raw and "&amp;amp;" not in raw, "sent escaped once, not twice"
    assert "flag & cache off" in message_text(card), "and read as typed"


def test_a_deploy_url_that_hides_markup_is_refused_and_nothing_is_posted(slack_app):
    """Slack escapes what the user typed; decoded, this `url=` would close the link and post a live
    @channel. It is not a URL: the command is answered with a message naming the field."""
    app = slack_app
    before = app.counts()
    answer = ephemeral_answer(app.slack.command("/deploy", "injsvc v1 url=https://ci.example/run&gt;*X*&lt;!channel&gt;"))
    assert "url" in message_text(answer) and "link" in message_text(answer)
    assert app.counts() == before, "nothing stored"
    assert app.fake.posts(ALERTS) == [] and app.fake.escaping == []
    raw = json.dumps(answer)
    assert "<!channel>" not in raw


def test_a_deploy_card_links_only_a_checked_url_and_keeps_slack_mentions_of_its_author(slack_app):
    app = slack_app
    app.slack.command("/deploy", "checkout 1.2 url=https://ci.example/run/7?x=1&amp;y=2 thanks &lt;@U2&gt; <@U3> <!channel>")
    (deploy,) = app.all(Deploy)
    assert deploy.url == "https://ci.example/run/7?x=1&y=2"
    card = json.dumps(app.fake.posts())
    assert "<https://ci.example/run/7?x=1&amp;y=2|pipeline>" in card
    assert "<!channel>" not in card, "@channel never goes out from a card"
