"""The catalogue over real HTTP: a typo asks first and stores nothing; the pick records once;
rename and merge (admins) keep every record behind a confirm dialog."""

from __future__ import annotations

from datetime import timedelta

from bot.services import digests
from bot.services.teams import set_team
from bot.store.db import session_scope
from bot.store.models import Deploy, DigestSubscription, Incident, IncidentEvent, LeadSample, Service
from tests.conftest import NOW
from tests.dbutil import metrics
from tests.slack.conftest import ALERTS
from tests.slack.harness import button_labels, buttons, message_text


def on_screen(reply: dict) -> dict:
    """An ephemeral reply as a message the driver can press buttons on."""
    return dict(reply, channel="C1", ts="1700000000.000100")


def test_a_typo_asks_first_stores_nothing_and_use_records_the_original_command_once(slack_app):
    app, slack, fake = slack_app, slack_app.slack, slack_app.fake
    before = app.counts()
    r = slack.command("/deploy", "chekout 1.4.2 commit=9fceb02 committed=3h rolled the cart fix", user="U1", channel="C1")
    question = r.reply()
    assert question["response_type"] == "ephemeral"
    text = message_text(question)
    assert "`chekout` is not a known service — did you mean `checkout`?" in text
    assert button_labels(question)[0] == "Use checkout" and button_labels(question)[-1] == "Create chekout"
    assert app.counts() == before, "nothing is stored until the user picks"
    assert fake.posts() == []

    app.clock.advance(minutes=4)  # the pick comes a little later: the deploy keeps the command's time
    picked = slack.press(on_screen(question), "Use checkout")
    (deploy,) = app.all(Deploy)
    service = app.all(Service, Service.id == deploy.service_id)[0]
    assert service.name == "checkout" and deploy.version == "1.4.2" and deploy.note == "rolled the cart fix"
    assert deploy.deployed_at == NOW and deploy.created_by == "U1"
    assert [s.name for s in app.all(Service)] == ["checkout", "payments", "search", "billing"], "no chekout service"
    assert len(fake.posts("C1")) == 1, "the deploy card, in the channel the command was typed in"
    said = [message_text(m) for m in picked.replies()]
    assert any("Recorded D-1: `checkout` 1.4.2" in s for s in said), said
    assert any(m.get("replace_original") for m in picked.replies()), "the question is replaced: its buttons are gone"

    slack.press(on_screen(question), "Use checkout")  # a double click
    assert len(app.all(Deploy)) == 1 and len(fake.posts("C1")) == 1


def test_create_makes_the_service_as_typed(slack_app):
    app, slack = slack_app, slack_app.slack
    question = slack.command("/deploy", "Inventory-API 2.0").reply()
    assert "`Inventory-API` is not a known service" in message_text(question)
    slack.press(on_screen(question), "Create Inventory-API")
    (deploy,) = app.all(Deploy)
    assert app.all(Service, Service.id == deploy.service_id)[0].name == "Inventory-API"
    # A name known under another spelling is that service: no question.
    r = slack.command("/deploy", "INVENTORY-api 2.1")
    assert "Recorded D-2: `Inventory-API`" in r.reply()["text"]


def test_declaring_on_a_typo_asks_and_use_declares_on_the_known_service(slack_app):
    app, slack, fake = slack_app, slack_app.slack, slack_app.fake
    question = slack.command("/incident", "declare sev2 chekout Checkout 5xx started=10m", channel="C1").reply()
    assert "did you mean `checkout`?" in message_text(question)
    assert app.all(Incident) == [] and fake.posts() == []
    slack.press(on_screen(question), "Use checkout")
    (incident,) = app.all(Incident)
    assert incident.title == "Checkout 5xx" and incident.started_at == NOW - timedelta(minutes=10)
    assert app.all(Service, Service.id == incident.service_id)[0].name == "checkout"
    assert [p["channel"] for p in fake.posts()] == [ALERTS, "C1"]


def test_a_typo_with_no_close_name_still_asks_before_creating(slack_app):
    question = slack_app.slack.command("/deploy", "zzz-new 1.0").reply()
    assert button_labels(question) == ["Create zzz-new"]
    assert slack_app.all(Deploy) == []


# --- rename and merge ---------------------------------------------------------------------------

def _split_history(app):
    """checkout and its typo chekout, each with deploys, a lead sample, an incident, a digest."""
    slack = app.slack
    slack.command("/deploy", "checkout 1.0 commit=aaaa111 committed=2h")
    slack.press(on_screen(slack.command("/deploy", "chekout 1.1 commit=bbbb222 committed=1h").reply()), "Create chekout")
    slack.command("/deploy", "chekout 1.2")
    slack.command("/incident", "declare sev2 chekout Cart 5xx cause=D-2", channel="C1")
    with session_scope(app.engine) as session:
        set_team(session, team="payments", services=["chekout"], now=NOW)
        digests.add_subscription(session, channel="C1", service="chekout", now=NOW)


def test_merge_is_for_admins_confirms_first_and_keeps_every_record(make_slack_app):
    app = make_slack_app(admins=("UADMIN",))
    slack, fake = app.slack, app.fake
    _split_history(app)
    end = NOW + timedelta(days=1)
    apart = [metrics(app.engine, service=s, end=end, days=30) for s in ("checkout", "chekout")]
    before = app.counts()

    refused = slack.command("/dora", "service merge chekout checkout", user="U2").reply()
    assert "Only the admins" in message_text(refused)
    question = slack.command("/dora", "service merge chekout checkout", user="UADMIN").reply()
    ((_, button),) = buttons(question)
    assert button["confirm"]["confirm"]["text"] == "Merge", "the merge runs after Slack's confirm dialog"
    assert "2 deploys and 1 incident of `chekout` move to `checkout`" in message_text(question)
    assert app.counts() == before, "asking changes nothing"

    assert "Only the admins" in message_text(slack.press(on_screen(question), "Merge", user="U2").reply())
    assert app.all(Service, Service.name == "chekout"), "a non-admin's click changes nothing"
    done = slack.press(on_screen(question), "Merge", user="UADMIN")
    assert any("merged `chekout` into `checkout`" in message_text(m) for m in done.replies())

    assert [s.name for s in app.all(Service)] == ["checkout", "payments", "search", "billing"]
    checkout = app.all(Service, Service.name == "checkout")[0]
    assert {d.service_id for d in app.all(Deploy)} == {checkout.id} and len(app.all(Deploy)) == 3
    assert {i.service_id for i in app.all(Incident)} == {checkout.id}
    assert sorted(s.sha for s in app.all(LeadSample, order=LeadSample.sha)) == ["aaaa111", "bbbb222"]
    assert [d.service for d in app.all(DigestSubscription)] == ["checkout"], "the digest follows the service"
    assert checkout.team_id is not None, "the team membership is kept"
    merged = metrics(app.engine, service="checkout", end=end, days=30)
    for key, field in (("deployment_frequency", "deploys"), ("lead_time", "samples"), ("change_failure_rate", "failed"),
                       ("time_to_restore", "open_incidents")):
        assert merged[key][field] == apart[0][key][field] + apart[1][key][field], key

    # The open incident's card gets a line in its thread (through the outbox).
    (card,) = fake.top_level(ALERTS)
    lines = [m["text"] for m in fake.thread(ALERTS, card["ts"])]
    assert any("merged into `checkout`" in line for line in lines), lines
    assert [e.kind for e in app.all(IncidentEvent)][-1] == "service"
    assert "checkout" in message_text(fake.message(ALERTS, card["ts"])), "the card shows the new name"

    slack.press(on_screen(question), "Merge", user="UADMIN")  # a second click: chekout is gone
    assert len(app.all(Deploy)) == 3


def test_rename_keeps_the_records_and_refuses_a_name_another_service_has(make_slack_app):
    app = make_slack_app(admins=("UADMIN",))
    slack = app.slack
    _split_history(app)
    before = {m: len(app.all(m, order=m.deploy_id if m is LeadSample else None))
              for m in (Deploy, Incident, LeadSample, DigestSubscription)}
    taken = slack.command("/dora", "service rename chekout checkout", user="UADMIN").reply()
    assert "/dora service merge chekout checkout" in message_text(taken) and not buttons(taken)
    question = slack.command("/dora", "service rename chekout cart", user="UADMIN").reply()
    assert buttons(question)[0][1]["confirm"]["confirm"]["text"] == "Rename"
    slack.press(on_screen(question), "Rename", user="UADMIN")
    assert {m: len(app.all(m, order=m.deploy_id if m is LeadSample else None)) for m in before} == before
    assert "cart" in [s.name for s in app.all(Service)] and "chekout" not in [s.name for s in app.all(Service)]
    assert [d.service for d in app.all(DigestSubscription)] == ["cart"]
    assert metrics(app.engine, service="cart", end=NOW + timedelta(days=1))["deployment_frequency"]["deploys"] == 2
