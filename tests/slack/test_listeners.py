"""Listener unit tests: the module-level listeners called directly, with a fake ``ack``/``respond``,
a fake messenger and a plain dict for Bolt's context (what the dependency middleware puts there).

No HTTP and no Slack: the listener's change and the outbox messages it queued are read back from
the database; the error handler is called the way Bolt calls it.
"""

from __future__ import annotations

import json

import pytest
from slack_bolt import BoltResponse

from bot.config import Settings
from bot.core import grammar as g
from bot.runtime import Runtime
from bot.services.lookup import get_or_create_service
from bot.services.requests import AlreadyHandled
from bot.slack.ids import Block
from bot.slack.listeners import deploy_command, incidents
from bot.slack.listeners.common import FieldErrors
from bot.slack.listeners.errors import handle_error
from bot.store.db import session_scope
from bot.store.models import Deploy, Incident, OutboxMessage
from tests.conftest import NOW, PRODUCTION
from tests.slack.harness import Clock


class Recorder:
    """A fake ``ack`` or ``respond``: remembers what it was called with."""

    def __init__(self):
        self.calls: list[dict] = []
        self.response = None

    def __call__(self, text: str = "", **kwargs):
        self.calls.append({"text": text, **kwargs})
        self.response = BoltResponse(status=200)


class FakeMessenger:
    def __init__(self):
        self.opened: list[tuple[str, dict]] = []

    def open_view(self, trigger_id, view):
        self.opened.append((trigger_id, view))

    def channel_id_for_name(self, name):
        return {"ops": "C0OPS"}.get(name)


@pytest.fixture
def context(engine):
    settings = Settings(database_url=engine.url.render_as_string(hide_password=False), alert_channel="C0ALERTS",
                        production_environments=PRODUCTION, run_scheduler=False)
    rt = Runtime(settings=settings, engine=engine, clock=Clock(NOW))
    rt.prepare(migrate=False)
    with session_scope(engine) as s:  # a known service: /deploy naming an unknown one asks first
        get_or_create_service(s, "checkout", now=NOW)
    return {"rt": rt, "messenger": FakeMessenger()}


def rows(engine, model):
    with session_scope(engine, write=False) as s:
        from sqlmodel import select

        out = list(s.exec(select(model)).all())
        for r in out:
            s.expunge(r)
        return out


def command(text: str, name: str = "/deploy") -> dict:
    return {"command": name, "text": text, "user_id": "U1", "channel_id": "C1", "trigger_id": "1.2.3"}


def test_deploy_acks_records_queues_the_card_and_answers(context, engine):
    ack, respond = Recorder(), Recorder()
    deploy_command.deploy_command(ack=ack, command=command("checkout 1.2.3"), respond=respond, context=context)
    assert ack.calls == [{"text": ""}]
    (deploy,) = rows(engine, Deploy)
    assert deploy.version == "1.2.3" and deploy.created_by == "U1"
    (message,) = rows(engine, OutboxMessage)
    assert (message.kind, json.loads(message.payload)) == ("card.post", {"object": "deploy", "id": deploy.id, "channel": "C1"})
    (answer,) = respond.calls
    assert "Recorded D-1" in answer["text"] and answer["response_type"] == "ephemeral"


def test_a_command_that_does_not_parse_raises_before_the_ack(context):
    ack, respond = Recorder(), Recorder()
    with pytest.raises(g.UsageError):
        deploy_command.deploy_command(ack=ack, command=command("checkout"), respond=respond, context=context)
    assert ack.calls == [] and respond.calls == []


def test_the_same_request_key_acts_once(context, engine):
    context["request_key"] = "sig:replayed"
    deploy_command.deploy_command(ack=Recorder(), command=command("checkout 1.0"), respond=Recorder(), context=context)
    with pytest.raises(AlreadyHandled):
        deploy_command.deploy_command(ack=Recorder(), command=command("checkout 1.0"), respond=Recorder(), context=context)
    assert len(rows(engine, Deploy)) == 1


def test_declare_queues_the_card_in_the_alert_and_the_declaring_channel(context, engine):
    respond = Recorder()
    incidents.incident_command(ack=Recorder(), command=command("declare sev2 checkout Checkout 5xx", "/incident"), respond=respond,
                               context=context)
    (incident,) = rows(engine, Incident)
    channels = [json.loads(m.payload)["channel"] for m in rows(engine, OutboxMessage)]
    assert channels == ["C0ALERTS", "C1"]
    assert f"Declared INC-{incident.id}" in respond.calls[0]["text"]


def test_the_form_opens_through_the_messenger(context):
    incidents.incident_command(ack=Recorder(), command=command("", "/incident"), respond=Recorder(), context=context)
    ((trigger, view),) = context["messenger"].opened
    assert trigger == "1.2.3" and view["type"] == "modal"


def test_acknowledge_pressed_queues_the_refresh_and_the_event_line(context, engine):
    incidents.incident_command(ack=Recorder(), command=command("declare sev2 checkout Down", "/incident"), respond=Recorder(),
                               context=context)
    body = {"user": {"id": "U2"}, "actions": [{"value": "1"}]}
    respond = Recorder()
    incidents.acknowledge_pressed(ack=Recorder(), body=body, respond=respond, context=context)
    assert rows(engine, Incident)[0].acknowledged_by == "U2"
    kinds = [m.kind for m in rows(engine, OutboxMessage)]
    assert kinds[-2:] == ["card.refresh", "thread.post"]
    assert respond.calls == [], "the card and its thread say it; no extra reply"
    # A second press changes nothing: the user is told, the card is refreshed, no new line.
    incidents.acknowledge_pressed(ack=Recorder(), body=body, respond=respond, context=context)
    assert "already acknowledged" in respond.calls[0]["text"]
    assert [m.kind for m in rows(engine, OutboxMessage)][-1] == "card.refresh"


def test_the_declare_form_raises_field_errors_before_its_ack(context):
    view = {"state": {"values": {}}, "private_metadata": ""}
    ack = Recorder()
    with pytest.raises(FieldErrors) as raised:
        incidents.declare_submitted(ack=ack, body={"user": {"id": "U1"}}, view=view, context=context)
    assert set(raised.value.errors) == {Block.TITLE, Block.SERVICE} and ack.calls == []


# --- the one error handler ------------------------------------------------------------------

def test_before_the_ack_a_usage_error_is_the_ack_s_ephemeral_answer():
    response = BoltResponse(status=500)
    handle_error(g.UsageError("`/deploy` needs a version", command="deploy"), {"command": "/deploy"}, response)
    body = json.loads(response.body)
    assert response.status == 200 and body["response_type"] == "ephemeral"
    assert "needs a version" in body["text"]
    assert [b["type"] for b in body["blocks"]] == ["section", "context"], "the message, then the command's usage"


def test_before_the_ack_a_form_s_errors_go_under_its_fields():
    response = BoltResponse(status=500)
    handle_error(FieldErrors({Block.TITLE: "Say what is happening."}), {"type": "view_submission", "view": {"blocks": []}}, response)
    assert json.loads(response.body) == {"response_action": "errors", "errors": {Block.TITLE: "Say what is happening."}}


@pytest.mark.allow_errors
def test_after_the_ack_an_unknown_error_is_logged_with_an_id_the_user_is_given(caplog):
    respond = Recorder()
    respond.response_url = "https://hooks.slack.com/commands/T0/1/x"
    handle_error(RuntimeError("boom"), {"command": "/deploy"}, None, respond)
    (answer,) = respond.calls
    (record,) = [r for r in caplog.records if r.name == "bot.slack" and "unexpected error" in r.getMessage()]
    error_id = record.getMessage().split()[2]
    assert error_id in answer["text"] and answer["response_type"] == "ephemeral"


def test_a_replay_is_answered_with_nothing():
    response = BoltResponse(status=500)
    handle_error(AlreadyHandled(), {"command": "/deploy"}, response)
    assert (response.status, response.body) == (200, "")
