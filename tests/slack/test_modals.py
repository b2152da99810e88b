"""The declare modal (``/incident`` with no text) and the Post update modal, over real HTTP."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import parse_qs

import pytest

from bot.services.lookup import get_or_create_service
from bot.slack.ids import Action, Block, View
from bot.store.db import session_scope
from bot.store.models import Deploy, Incident, IncidentEvent
from tests.conftest import NOW
from tests.slack.conftest import ALERTS
from tests.slack.harness import button_labels, message_text


@pytest.fixture
def slack_app(make_slack_app):
    """An empty catalogue: the form asks for a service name (the picker appears once there are services)."""
    return make_slack_app(services=())


def known(app, *names):
    """Services in the catalogue, so that /deploy and /incident naming them do not ask first."""
    with session_scope(app.engine) as session:
        for name in names:
            get_or_create_service(session, name, now=NOW)


def open_declare_modal(app, channel="C1"):
    body = app.slack.command_body("/incident", "", channel=channel)
    trigger = parse_qs(body.decode())["trigger_id"][0]
    r = app.slack.post(body)
    assert r.status == 200 and r.elapsed < 3
    (call,) = app.fake.calls_of("views.open")
    assert call.params["trigger_id"] == trigger, "the modal opens with the command's trigger_id"
    return app.fake.last_view()


def block_ids(view) -> list[str]:
    return [b.get("block_id") for b in view["blocks"]]


def test_incident_without_text_opens_the_declare_modal(slack_app):
    view = open_declare_modal(slack_app)
    assert view["type"] == "modal" and view["callback_id"] == View.DECLARE
    assert view["private_metadata"] == "C1"
    assert block_ids(view)[:4] == [Block.TITLE, Block.SERVICE, Block.SEVERITY, Block.STARTED]
    assert slack_app.fake.responses() == [], "the modal is the answer"
    assert slack_app.all(Incident) == []


def test_submitting_without_a_title_shows_inline_errors_and_stores_nothing(slack_app):
    view = open_declare_modal(slack_app)
    before = slack_app.counts()
    r = slack_app.slack.submit(view, {Block.TITLE: None, Block.SERVICE: "checkout"})
    assert r.http.status == 200
    body = r.http.json()
    assert body["response_action"] == "errors"
    assert set(body["errors"]) == {Block.TITLE}
    assert all(0 < len(msg) <= 150 for msg in body["errors"].values())
    assert slack_app.counts() == before
    assert slack_app.fake.posts() == []


def test_bad_service_and_started_are_inline_errors(slack_app):
    view = open_declare_modal(slack_app)
    r = slack_app.slack.submit(view, {Block.TITLE: "Down", Block.SERVICE: "Not a service!", Block.STARTED: "yesterday-ish"})
    errors = r.http.json()["errors"]
    assert set(errors) == {Block.SERVICE, Block.STARTED}
    r = slack_app.slack.submit(view, {Block.TITLE: "Down", Block.SERVICE: "checkout", Block.STARTED: "2099-01-01T00:00Z"})
    assert set(r.http.json()["errors"]) == {Block.STARTED}
    assert slack_app.all(Incident) == []


def test_a_valid_submission_declares_and_posts_the_card(slack_app):
    app = slack_app
    view = open_declare_modal(app)
    r = app.slack.submit(view, {Block.TITLE: "Checkout 5xx", Block.SERVICE: "Checkout", Block.SEVERITY: "sev1", Block.STARTED: "15m"},
                         user="U7")
    assert r.http.status == 200
    assert not r.http.body.strip() or r.http.json().get("response_action") is None
    (incident,) = app.all(Incident)
    assert (incident.title, incident.severity, incident.declared_by) == ("Checkout 5xx", "sev1", "U7")
    assert incident.started_at == NOW - timedelta(minutes=15)
    assert [p["channel"] for p in app.fake.posts()] == [ALERTS, "C1"]
    card = app.fake.top_level(ALERTS)[0]
    assert "INC-1" in message_text(card) and button_labels(card) == [
        "Acknowledge", "Mitigated", "Resolve", "Post update", "I'm the lead", "Cancel",
    ]


def test_severity_defaults_to_the_initial_option(slack_app):
    view = open_declare_modal(slack_app)
    slack_app.slack.submit(view, {Block.TITLE: "Slow", Block.SERVICE: "search"})
    (incident,) = slack_app.all(Incident)
    assert incident.severity == "sev2" and incident.started_at == NOW


def test_picking_a_service_reloads_the_form_with_its_deploys_and_the_suspect_can_be_rolled_back(slack_app):
    app, slack, clock, fake = slack_app, slack_app.slack, slack_app.clock, slack_app.fake
    known(app, "checkout", "payments")
    slack.command("/deploy", "checkout 1.0")
    clock.advance(hours=1)
    slack.command("/deploy", "checkout 1.1")
    slack.command("/deploy", "checkout 1.2-rc env=staging")
    slack.command("/deploy", "payments 7.0")
    clock.advance(minutes=5)

    view = open_declare_modal(app)
    service = next(b for b in view["blocks"] if b["block_id"] == Block.SERVICE)
    assert service["element"]["action_id"] == Action.DECLARE_SERVICE and service.get("dispatch_action") is True
    assert [o["value"] for o in service["element"]["options"]] == ["checkout", "payments"]
    assert Block.SUSPECT not in block_ids(view)

    r = slack.select(view, Block.SERVICE, "checkout", values={Block.TITLE: "Checkout 5xx", Block.STARTED: "10m"})
    assert r.http.status == 200
    (update,) = fake.calls_of("views.update")
    assert update.params["view_id"] == view["id"] and update.params.get("hash") == view["hash"]
    reloaded = fake.last_view()
    suspect = next(b for b in reloaded["blocks"] if b["block_id"] == Block.SUSPECT)
    options = suspect["element"]["options"]
    assert [o["value"] for o in options] == ["2", "1"], "production deploys of checkout, newest first"
    assert options[0]["text"]["text"].startswith("D-2 1.1")
    title = next(b for b in reloaded["blocks"] if b["block_id"] == Block.TITLE)
    assert title["element"].get("initial_value") == "Checkout 5xx", "what was typed is kept"
    service = next(b for b in reloaded["blocks"] if b["block_id"] == Block.SERVICE)
    assert service["element"]["initial_option"]["value"] == "checkout"

    slack.submit(reloaded, {Block.TITLE: "Checkout 5xx", Block.SUSPECT: "2"})
    (incident,) = app.all(Incident)
    assert incident.suspect_deploy_id == 2 and incident.caused_by_id is None
    assert incident.started_at == NOW + timedelta(hours=1, minutes=5) - timedelta(minutes=10)
    card = fake.top_level(ALERTS)[0]
    assert button_labels(card) == ["Acknowledge", "Mitigated", "Resolve", "Roll back D-2", "Post update", "I'm the lead", "Cancel"]
    assert "Suspected deploy" in message_text(card)
    d2 = app.all(Deploy)[1]
    assert not d2.change_failure, "a suspect is not a change failure until confirmed"

    slack.press(card, "Roll back D-2")
    deploys = app.all(Deploy)
    assert len(deploys) == 5
    rollback = deploys[-1]
    assert rollback.rollback_of_id == 2 and rollback.version == "1.0" and rollback.environment == "production"
    (incident,) = app.all(Incident)
    assert incident.caused_by_id == 2, "rolling back confirms the suspect as the cause"
    assert app.all(Deploy)[1].change_failure


def test_picking_a_service_without_deploys_says_so(slack_app):
    app = slack_app
    known(app, "checkout")
    app.slack.command("/deploy", "checkout 1.0 env=staging")
    view = open_declare_modal(app)
    app.slack.select(view, Block.SERVICE, "checkout")
    reloaded = app.fake.last_view()
    assert Block.SUSPECT not in block_ids(reloaded)
    assert "No recent deploys" in message_text(reloaded)


def test_post_update_button_opens_a_modal_and_its_submission_adds_a_thread_line(slack_app):
    app, slack, fake = slack_app, slack_app.slack, slack_app.fake
    known(app, "checkout")
    slack.command("/incident", "declare sev2 checkout Checkout 5xx")
    card = fake.top_level(ALERTS)[0]
    local = fake.top_level("C1")[0]

    r = slack.press(card, "Post update", user="U4")
    (opened,) = fake.calls_of("views.open")
    assert opened.params["trigger_id"] == r.payload["trigger_id"]
    view = fake.last_view()
    assert view["callback_id"] == View.UPDATE and view["private_metadata"] == "1"
    assert len(view["title"]["text"]) <= 24

    empty = slack.submit(view, {Block.UPDATE_TEXT: None}, user="U4")
    assert empty.http.json()["response_action"] == "errors" and Block.UPDATE_TEXT in empty.http.json()["errors"]
    assert [e.kind for e in app.all(IncidentEvent)] == ["declared"]

    done = slack.submit(view, {Block.UPDATE_TEXT: "Rolled back the flag; error rate falling"}, user="U4")
    assert done.http.status == 200 and not done.http.body.strip(b"{} ")
    for channel, parent in ((ALERTS, card), ("C1", local)):
        (line,) = fake.thread(channel, parent["ts"])
        assert "Rolled back the flag; error rate falling" in line["text"] and "<@U4>" in line["text"]
    update = app.all(IncidentEvent)[-1]
    assert (update.kind, update.actor, update.text) == ("update", "U4", "Rolled back the flag; error rate falling")


def test_a_service_not_in_the_list_can_be_typed_into_the_form(slack_app):
    app, slack = slack_app, slack_app.slack
    known(app, "checkout")
    slack.command("/deploy", "checkout 1.0")
    view = open_declare_modal(app)
    assert block_ids(view)[:3] == [Block.TITLE, Block.SERVICE, Block.NEW_SERVICE]

    r = slack.submit(view, {Block.TITLE: "Queue stuck"})
    assert r.http.json()["response_action"] == "errors" and set(r.http.json()["errors"]) == {Block.SERVICE}
    r = slack.submit(view, {Block.TITLE: "Queue stuck", Block.SERVICE: "checkout", Block.NEW_SERVICE: "inventory"})
    assert set(r.http.json()["errors"]) == {Block.NEW_SERVICE}
    r = slack.submit(view, {Block.TITLE: "Queue stuck", Block.NEW_SERVICE: "Bad Name!"})
    assert set(r.http.json()["errors"]) == {Block.NEW_SERVICE}
    assert app.all(Incident) == []

    slack.submit(view, {Block.TITLE: "Queue stuck", Block.NEW_SERVICE: "Inventory"})
    (incident,) = app.all(Incident)
    assert incident.title == "Queue stuck"
    assert "Inventory" in message_text(app.fake.top_level(ALERTS)[0])
