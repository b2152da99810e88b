"""Slack follows the same length rule per field as the API and the import (bot.core.inputs.LIMITS):
too long is answered with a message naming the field, and nothing is stored - never cut silently."""

from __future__ import annotations

from bot.slack.ids import Block
from bot.store.models import Incident
from tests.slack.conftest import ALERTS
from tests.slack.harness import ephemeral_answer, message_text


def test_a_5000_character_title_from_the_command_is_refused_naming_the_field(slack_app):
    app = slack_app
    before = app.counts()
    answer = message_text(ephemeral_answer(app.slack.command("/incident", "declare sev2 checkout " + "t" * 5000, channel=ALERTS)))
    assert "title" in answer and "300" in answer, answer
    assert app.counts() == before and app.fake.posts(ALERTS) == []


def test_a_5000_character_title_from_the_modal_is_refused_on_the_title_field(slack_app):
    app = slack_app
    app.slack.command("/incident", "", channel=ALERTS)
    r = app.slack.submit(app.fake.last_view(), {Block.TITLE: "t" * 5000, Block.SERVICE: "checkout"})
    errors = r.http.json()["errors"]
    assert set(errors) == {Block.TITLE} and "300" in errors[Block.TITLE]
    assert app.all(Incident) == []


def test_long_updates_and_notes_are_refused_naming_the_field(slack_app):
    app = slack_app
    app.slack.command("/incident", "declare sev2 checkout Down", channel=ALERTS)
    events = app.counts()["incident_event"]
    answer = message_text(ephemeral_answer(app.slack.command("/incident", "update INC-1 " + "u" * 2500)))
    assert "update" in answer and "2000" in answer, answer
    answer = message_text(ephemeral_answer(app.slack.command("/incident", "resolve INC-1 " + "n" * 2500)))
    assert "note" in answer and "2000" in answer, answer
    answer = message_text(ephemeral_answer(app.slack.command("/deploy", "checkout 1.0 " + "n" * 2500)))
    assert "note" in answer and "2000" in answer, answer
    assert app.counts()["incident_event"] == events and app.all(Incident)[0].resolved_at is None
