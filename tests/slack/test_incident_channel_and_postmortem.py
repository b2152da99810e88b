"""``/incident channel`` (and ``DORA_INCIDENT_CHANNELS``) and ``/incident postmortem`` over real HTTP:
the channel created through the outbox with Slack's name rules, a clash handled, the lead and the
declarer invited, the card in both places acting on one incident, exactly once across retries; the
postmortem draft as a file in the card's thread and from the API."""

from __future__ import annotations

import http.client
import json

import pytest

from bot.services.lifecycle import channel_name
from bot.store.models import DeployCommit, Incident, IncidentEvent, OutboxMessage, SlackMessage
from tests.fake_slack import fill_ids
from tests.slack.conftest import ALERTS
from tests.slack.harness import button_labels, message_text, sqlite_only

TOKEN = "ingest-token-for-postmortem-tests-0123"



@pytest.fixture(autouse=True)
def _policy_back_to_defaults(engine):
    """These tests turn paging or channels on for the (shared) test database: off again afterwards."""
    from bot.services import lifecycle

    yield
    lifecycle.uninstall(engine)

def alert_card(app) -> dict:
    (card,) = [m for m in app.fake.top_level(ALERTS) if m["text"].startswith("INC-")]
    return card


def retry(app, seconds: float) -> int:
    """The next round once ``seconds`` have passed; what it queues the app's own worker may send: waited for."""
    app.clock.advance(seconds=seconds)
    sent = app.outbox_worker().deliver_due()
    app.slack.settle()
    return sent


def test_channel_names_follow_slacks_rules():
    assert channel_name(7, "Checkout 5xx!") == "inc-7-checkout-5xx"
    assert channel_name(7, "Zahlungsdienst fällt aus: Café.Größe") == "inc-7-zahlungsdienst-fallt-aus-cafe-groe"
    long = channel_name(123, "word " * 40)
    assert len(long) <= 80 and long.startswith("inc-123-word-") and not long.endswith("-")
    assert len(channel_name(123, "word " * 40, suffix=12)) <= 80 and channel_name(123, "word " * 40, suffix=12).endswith("-12")
    assert channel_name(8, "🔥🔥") == "inc-8" and channel_name(8, "🔥", suffix=2) == "inc-8-2"


def test_incident_channel_is_created_with_the_card_and_a_link_in_the_thread(slack_app):
    app, fake = slack_app, slack_app.fake
    app.slack.command("/incident", "declare sev2 checkout Checkout 5xx", user="U1", channel=ALERTS)
    app.slack.command("/incident", "lead INC-1 <@U2>", user="U1", channel=ALERTS)
    r = app.slack.command("/incident", "channel INC-1", user="U1", channel=ALERTS)
    assert "Creating #inc-1-checkout-5xx for INC-1" in r.reply()["text"]
    (created,) = fake.calls_of("conversations.create")
    assert created.params["name"] == "inc-1-checkout-5xx"
    channel = fake.channel_named("inc-1-checkout-5xx")
    assert set(channel["members"]) == {"U0BOT", "U1", "U2"}, "the lead and the declarer are invited"
    (incident,) = app.all(Incident)
    assert incident.channel_id == channel["id"] and incident.channel_name == "inc-1-checkout-5xx"
    assert "Incident channel" in message_text(alert_card(app))
    line = fake.thread(ALERTS, alert_card(app)["ts"])[-1]["text"]
    assert line == f":hash: Incident channel created: <#{channel['id']}>"
    (inc_card,) = fake.top_level(channel["id"])
    assert "INC-1" in message_text(inc_card) and button_labels(inc_card)[0] == "Acknowledge"

    # a button on the channel's card acts on the same incident and edits both copies
    app.slack.press(inc_card, "Acknowledge", user="U2")
    assert app.all(Incident)[0].state == "acknowledged"
    for card in (alert_card(app), fake.top_level(channel["id"])[0]):
        assert button_labels(card)[0] == "Mitigated"
    assert len(fake.thread(channel["id"], inc_card["ts"])) == 1 and len(fake.thread(ALERTS, alert_card(app)["ts"])) == 3

    app.slack.command("/incident", "lead INC-1 <@U7>", user="U2", channel=channel["id"])
    assert "U7" in fake.channel_named("inc-1-checkout-5xx")["members"], "a new lead joins the channel"
    assert len(fake.calls_of("conversations.create")) == 1 and len(fake.top_level(channel["id"])) == 1
    again = app.slack.command("/incident", "channel INC-1", channel=ALERTS)
    assert "already has its channel" in again.reply()["text"] and len(fake.calls_of("conversations.create")) == 1


@sqlite_only
def test_a_name_clash_gets_a_suffix_and_a_channel_of_an_earlier_try_is_reused(slack_app):
    app, fake = slack_app, slack_app.fake
    fake.set_channels([(ALERTS, "alerts"), ("C1", "general"), {"id": "C0THEIRS", "name": "inc-1-checkout-5xx", "creator": "U9"},
                       {"id": "C0MINE", "name": "inc-2-search-slow", "creator": "U0BOT", "members": ["U0BOT"]}])
    app.slack.command("/incident", "declare sev2 checkout Checkout 5xx", user="U1", channel=ALERTS)
    app.slack.command("/incident", "declare sev3 search Search slow", user="U1", channel=ALERTS)
    app.slack.command("/incident", "channel INC-1", channel=ALERTS)
    app.slack.command("/incident", "channel INC-2", channel=ALERTS)
    first, second = app.all(Incident)
    assert first.channel_name == "inc-1-checkout-5xx-2" and first.channel_id not in ("C0THEIRS", None)
    assert second.channel_id == "C0MINE", "the bot's own channel for this incident (an earlier try made it) is used"
    assert [c.params["name"] for c in fake.calls_of("conversations.create", ok=None)] == [
        "inc-1-checkout-5xx", "inc-1-checkout-5xx-2", "inc-2-search-slow"]


@sqlite_only
def test_channel_creation_is_exactly_once_across_retries(slack_app):
    app, fake = slack_app, slack_app.fake
    app.slack.command("/incident", "declare sev2 checkout Checkout 5xx", user="U1", channel=ALERTS)
    fake.fail_next("conversations.invite", 1, status=503)
    app.slack.command("/incident", "channel INC-1", user="U1", channel=ALERTS)
    (incident,) = app.all(Incident)
    assert incident.channel_id is not None, "recorded as soon as it was created"
    assert retry(app, 60) >= 1
    assert len(fake.calls_of("conversations.create", ok=None)) == 1
    assert [c.status for c in fake.calls_of("conversations.invite", ok=None)] == [503, 200]
    assert len(fake.top_level(incident.channel_id)) == 1
    assert len([e for e in app.all(IncidentEvent) if e.kind == "channel"]) == 1
    assert len(fake.thread(ALERTS, alert_card(app)["ts"])) == 1
    assert {m.status for m in app.all(OutboxMessage)} == {"sent"}
    assert len(app.all(SlackMessage)) == 2


def test_dora_incident_channels_creates_one_on_declaration_at_or_above_the_severity(make_slack_app):
    app = make_slack_app(incident_channels="sev1")
    app.slack.command("/incident", "declare sev2 checkout Checkout slow", channel=ALERTS)
    app.slack.command("/incident", "declare sev1 payments Payments down", channel=ALERTS)
    low, high = app.all(Incident)
    assert low.channel_id is None and high.channel_name == "inc-2-payments-down" and high.channel_id is not None
    assert [c.params["name"] for c in app.fake.calls_of("conversations.create")] == ["inc-2-payments-down"]
    assert len(app.fake.top_level(high.channel_id)) == 1


def _get(app, path: str, token: str | None = TOKEN) -> tuple[int, str, str]:
    conn = http.client.HTTPConnection("127.0.0.1", app.server.port, timeout=30)
    try:
        conn.request("GET", path, headers={"Authorization": f"Bearer {token}"} if token else {})
        resp = conn.getresponse()
        return resp.status, resp.getheader("content-type") or "", resp.read().decode()
    finally:
        conn.close()


def test_postmortem_draft_goes_to_the_cards_thread_and_the_api(make_slack_app):
    app = make_slack_app(ingest_tokens=(TOKEN,))
    clock, fake = app.clock, app.fake
    app.slack.command("/deploy", "checkout 1.4 commit=abcdef1234567890 committed=3h", user="U1", channel="C1")
    clock.advance(minutes=10)
    app.slack.command("/incident", "declare sev2 checkout Checkout 5xx cause=D-1", user="U1", channel=ALERTS)
    app.slack.press(alert_card(app), "I'm the lead", user="U2")
    clock.advance(minutes=5)
    app.slack.press(alert_card(app), "Acknowledge", user="U2")
    app.slack.command("/incident", "severity INC-1 sev1", user="U2", channel=ALERTS)
    app.slack.command("/incident", "note INC-1 rolled back the | config", user="U3", channel=ALERTS)
    app.slack.command("/incident", "followup INC-1 add a canary", user="U2", channel=ALERTS)
    app.slack.command("/incident", "followup INC-1 alert on 5xx", user="U2", channel=ALERTS)
    clock.advance(minutes=15)
    app.slack.press(alert_card(app), "Mitigated", user="U2")
    clock.advance(minutes=30)
    app.slack.press(alert_card(app), "Resolve", user="U2")
    listing = app.slack.command("/incident", "followups", user="U2").reply()
    app.slack.press(dict(listing, channel="C1", ts="1.1", blocks=fill_ids(listing["blocks"])), "Done", user="U2")

    r = app.slack.command("/incident", "postmortem INC-1", user="U2", channel=ALERTS)
    reply = message_text(r.reply())
    assert "INC-1 Checkout 5xx · SEV1 · lead <@U2>" in reply and "time to restore 20m" in reply
    assert "Causing deploy: D-1 1.4 (1 commit)" in reply and "follow-ups: 2 (1 open)" in reply
    (upload,) = fake.calls_of("files.completeUploadExternal")
    assert upload.params["channel_id"] == ALERTS and upload.params["thread_ts"] == alert_card(app)["ts"]
    (stored,) = fake.files.values()
    assert stored["name"].startswith("INC-1-postmortem-") and stored["name"].endswith(".md")
    assert any(m.get("files") for m in fake.thread(ALERTS, alert_card(app)["ts"])), "the file is in the card's thread"
    draft = stored["data"].decode()

    for expected in (
        "# Postmortem (draft): INC-1 Checkout 5xx",
        "- **Severity:** SEV1", "- **Lead:** @U2", "- **Declared by:** @U1",
        "| Started | 2026-11-25 12:10:00 UTC |", "| Detected (declared) | 2026-11-25 12:10:00 UTC |",
        "| Acknowledged | 2026-11-25 12:15:00 UTC |", "| Mitigated | 2026-11-25 12:30:00 UTC |",
        "| Resolved | 2026-11-25 13:00:00 UTC |",
        "- **Time to restore:** 20m", "- **Failed deployment recovery time:** 30m",
        "D-1 `1.4` to production at 2026-11-25 12:00:00 UTC (success)",
        "| `abcdef123456` | 2026-11-25 09:00:00 UTC | 3h |",
        "@U2 · severity: sev2 -> sev1", "@U3 · note: rolled back the \\| config", "@U2 · mitigated",
        "- [x] F-1 add a canary (@U2): done 2026-11-25 13:00:00 UTC by @U2", "- [ ] F-2 alert on 5xx (@U2): open",
    ):
        assert expected in draft, f"{expected!r} not in the draft:\n{draft}"
    timeline = [line for line in draft.splitlines() if line.startswith("- 2026")]
    assert [line.split(" · ")[2].split(":")[0] for line in timeline][:4] == ["declared", "linked the cause", "lead", "acknowledged"]

    status, ctype, body = _get(app, "/api/v1/incidents/INC-1/postmortem")
    assert status == 200 and ctype.startswith("text/markdown") and body.startswith("# Postmortem (draft): INC-1")
    assert "| `abcdef123456` |" in body
    assert _get(app, "/api/v1/incidents/INC-1/postmortem", token=None)[0] == 401
    assert _get(app, "/api/v1/incidents/INC-9/postmortem")[0] == 404
    assert len(app.all(DeployCommit)) == 1
    status, _, doc = _get(app, "/api/v1/openapi.json")
    assert "text/markdown" in json.dumps(json.loads(doc)["paths"]["/api/v1/incidents/{id}/postmortem"])


@sqlite_only
def test_a_failed_postmortem_upload_is_retried_and_shared_once(slack_app):
    app, fake = slack_app, slack_app.fake
    app.slack.command("/incident", "declare sev2 checkout Checkout 5xx", channel=ALERTS)
    fake.fail_next("files.completeUploadExternal", 1, status=503)
    app.slack.command("/incident", "postmortem INC-1", channel=ALERTS)
    assert [m for m in fake.thread(ALERTS, alert_card(app)["ts"]) if m.get("files")] == []
    retry(app, 60)
    shared = [m for m in fake.thread(ALERTS, alert_card(app)["ts"]) if m.get("files")]
    assert len(shared) == 1 and shared[0]["files"][0]["name"].startswith("INC-1-postmortem-")
    assert retry(app, 3600) == 0 and len(fake.calls_of("files.completeUploadExternal")) == 1


def test_fake_slack_enforces_slacks_channel_name_rules(fake_slack):
    from slack_sdk import WebClient
    from slack_sdk.errors import SlackApiError

    client = WebClient(token="xoxb-test", base_url=fake_slack.api_url)
    for name, error in (("Inc-1-Checkout", "invalid_name"), ("inc-1 checkout", "invalid_name_specials"),
                        ("inc-1.checkout", "invalid_name_specials"), ("x" * 81, "invalid_name_maxlength"), ("general", "name_taken")):
        with pytest.raises(SlackApiError) as err:
            client.conversations_create(name=name)
        assert err.value.response["error"] == error, name
    assert client.conversations_create(name="x" * 80)["channel"]["name"] == "x" * 80
    fake_slack.violations.clear()  # the refused names above were on purpose
