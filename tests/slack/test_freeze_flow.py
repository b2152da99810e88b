"""The deploy gate end to end: ``/deploy freeze|unfreeze|freezes`` in Slack, and what CI hears from
``GET /api/v1/gate`` on the same server — through a freeze, its expiry, an unfreeze, an open sev1
and its mitigation; freezes in ``/deploy`` replies, on the deploy card and in App Home."""

from __future__ import annotations

import pytest

from bot.store.models import DeployFreeze
from tests.conftest import NOW
from tests.ingest.conftest import Client
from tests.slack.harness import ephemeral_answer, message_text, sqlite_only

TOKEN = "gate-test-token-0123456789abcdef"


@pytest.fixture
def app(make_slack_app):
    return make_slack_app(ingest_tokens=(TOKEN,))


def gate(app, service="checkout", environment=None):
    query = f"service={service}" + (f"&environment={environment}" if environment else "")
    r = Client(app.server.port, TOKEN).get(f"/api/v1/gate?{query}")
    assert r.status in (200, 423), r
    body = r.json()
    assert body["allowed"] is (r.status == 200)
    return r.status, body.get("reasons", [])


def test_a_freeze_closes_the_gate_until_it_is_lifted(app):
    app.slack.command("/deploy", "checkout 1.0")
    app.slack.command("/deploy", "payments 7")
    assert gate(app) == (200, [])

    r = app.slack.command("/deploy", "freeze checkout release week, ask #releases", user="U7")
    reply = r.reply()
    assert reply["response_type"] == "in_channel"
    assert "`checkout` is frozen until unfrozen" in reply["text"] and "<@U7>" in reply["text"] and "release week" in reply["text"]
    status, reasons = gate(app)
    assert status == 423 and reasons == ["checkout is frozen until unfrozen: release week, ask #releases"]
    assert gate(app, "payments")[0] == 200  # only checkout is frozen
    assert gate(app, "Checkout", environment="staging")[0] == 423  # the catalogue's name; every environment

    r = app.slack.command("/deploy", "unfreeze CHECKOUT", user="U8")
    assert r.reply()["response_type"] == "in_channel" and "lifted" in r.reply()["text"]
    assert gate(app) == (200, [])
    (row,) = app.all(DeployFreeze)
    assert (row.created_by, row.lifted_by, row.lifted_at) == ("U7", "U8", NOW)


def test_a_freeze_of_all_with_until_ends_by_itself(app):
    app.slack.command("/deploy", "checkout 1.0")
    r = app.slack.command("/deploy", "freeze all until=2h holiday")
    assert "*every service* is frozen until" in r.reply()["text"]
    for service in ("checkout", "never-seen-before"):
        status, reasons = gate(app, service)
        assert status == 423 and reasons == ["every service is frozen until 2026-11-25T14:00:00Z: holiday"]
    app.clock.advance(hours=1, minutes=59)
    assert gate(app)[0] == 423
    app.clock.advance(minutes=1)
    assert gate(app) == (200, [])
    assert "No deploy freeze holds" in app.slack.command("/deploy", "freezes").reply()["text"]


def test_an_open_sev1_closes_the_gate_until_it_is_mitigated(app):
    app.slack.command("/deploy", "checkout 1.0")
    app.slack.command("/incident", "declare sev2 checkout Slow cart")
    assert gate(app)[0] == 200  # below DORA_GATE_SEVERITY (sev1)
    app.slack.command("/incident", "declare sev1 checkout Checkout down")
    status, reasons = gate(app)
    assert status == 423 and reasons == ["INC-2 (sev1) is open and not mitigated on checkout: Checkout down"]
    assert gate(app, environment="staging")[0] == 200  # the incident is in production
    app.clock.advance(minutes=20)
    app.slack.command("/incident", "mitigate INC-2 rolled back")
    assert gate(app) == (200, [])


def test_the_gate_severity_is_a_setting(make_slack_app):
    app = make_slack_app(ingest_tokens=(TOKEN,), gate_severity="sev2")
    app.slack.command("/incident", "declare sev2 checkout Slow cart")
    assert gate(app)[0] == 423


def test_freezes_show_in_deploy_replies_on_the_card_and_in_app_home(app):
    app.slack.command("/deploy", "checkout 1.0", channel="C2")
    app.slack.command("/deploy", "freeze checkout until=1d *bold* <!channel>", user="U7")
    r = app.slack.command("/deploy", "checkout 2.0", channel="C1")
    text = r.reply()["text"]
    assert "Recorded D-2" in text and ":snowflake: `checkout` is frozen until" in text
    assert "<!channel>" not in text  # the reason is outside text: escaped
    app.slack.settle()
    card = message_text(app.fake.posts("C1")[-1])
    assert "Deployed during a freeze of `checkout`" in card and "<@U7>" in card
    assert "freeze" not in message_text(app.fake.posts("C2")[-1])  # D-1 was deployed before it

    listing = message_text(app.slack.command("/deploy", "freezes").reply())
    assert "`checkout` is frozen until" in listing
    app.slack.home_opened("U1")
    home = message_text(app.fake.published["U1"])
    assert "Deploy freezes" in home and "`checkout` is frozen" in home

    app.slack.command("/deploy", "unfreeze checkout")
    r = app.slack.command("/deploy", "checkout 2.1")
    assert "frozen" not in r.reply()["text"]


def test_a_second_freeze_of_the_same_target_replaces_the_first(app):
    app.slack.command("/deploy", "checkout 1.0")
    app.slack.command("/deploy", "freeze checkout until=1h first")
    app.slack.command("/deploy", "freeze checkout until=3h second")
    status, reasons = gate(app)
    assert status == 423 and len(reasons) == 1 and reasons[0].endswith(": second")
    app.clock.advance(hours=2)
    assert gate(app)[0] == 423


@sqlite_only
@pytest.mark.parametrize("text, says", [
    ("freeze", "service or `all`"),
    ("freeze checkout until=yesterdayish", "not a time"),
    ("freeze checkout until=2026-01-01T00:00Z", "not in the future"),
    ("freeze nosuchservice", "No service called"),
    ("unfreeze", "one service"),
    ("freezes checkout", "takes nothing more"),
])
def test_bad_freeze_commands_say_what_is_wrong_and_store_nothing(app, text, says):
    app.slack.command("/deploy", "checkout 1.0")
    r = app.slack.command("/deploy", text)
    answer = ephemeral_answer(r)
    assert says.lower() in message_text(answer).lower(), answer
    assert app.all(DeployFreeze) == []


def test_unfreeze_all_lifts_the_freeze_of_all_and_names_those_that_stay(app):
    app.slack.command("/deploy", "checkout 1.0")
    app.slack.command("/deploy", "freeze all")
    app.slack.command("/deploy", "freeze checkout own reasons")
    text = app.slack.command("/deploy", "unfreeze all").reply()["text"]
    assert "lifted the deploy freeze of every service" in text and "Still frozen on their own: `checkout`" in text
    assert gate(app, "payments")[0] == 200 and gate(app)[0] == 423


@sqlite_only
def test_unfreezing_what_is_not_frozen_says_so(app):
    app.slack.command("/deploy", "checkout 1.0")
    text = app.slack.command("/deploy", "unfreeze checkout").reply()["text"]
    assert "No freeze of `checkout` holds" in text
