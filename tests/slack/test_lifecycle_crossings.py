"""Where the lifecycle meets the other features, over real signed HTTP against the fake Slack and
a fake PagerDuty Events API: a severity raise that crosses ``DORA_INCIDENT_CHANNELS`` opens the
incident's channel (as a declaration at that severity does), and an incident that came from a
PagerDuty webhook is never paged back to PagerDuty (its responders are already paged)."""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json

import pytest

from tests.fake_pagerduty import FakePagerDuty
from tests.ingest.test_pagerduty_webhook import event
from tests.slack.conftest import ALERTS

KEY = "R0UT1NGKEY0123456789ABCDEFGHIJKL"  # 32 characters, as PagerDuty's integration keys
SECRET = "pagerduty-webhook-secret-crossings"


@pytest.fixture(autouse=True)
def _policy_back_to_defaults(engine):
    from bot.services import lifecycle

    yield
    lifecycle.uninstall(engine)


@pytest.fixture
def pagerduty():
    fake = FakePagerDuty().start()
    yield fake
    fake.stop()


def created_channels(app) -> list[str]:
    return [c.params["name"] for c in app.fake.calls_of("conversations.create")]


def test_a_severity_raise_across_the_channel_level_opens_the_incident_channel_once(make_slack_app):
    app = make_slack_app(incident_channels="sev2")
    app.slack.command("/incident", "declare sev3 checkout Checkout slow", channel=ALERTS)
    assert created_channels(app) == []
    app.slack.command("/incident", "severity INC-1 sev2", channel=ALERTS)
    assert created_channels(app) == ["inc-1-checkout-slow"]
    app.slack.command("/incident", "severity INC-1 sev1", channel=ALERTS)
    app.slack.command("/incident", "severity INC-1 sev3", channel=ALERTS)
    app.slack.command("/incident", "severity INC-1 sev2", channel=ALERTS)
    assert created_channels(app) == ["inc-1-checkout-slow"], "one channel, however often the severity moves"


def test_a_raise_below_the_channel_level_or_of_a_mitigated_incident_opens_none(make_slack_app):
    app = make_slack_app(incident_channels="sev1")
    app.slack.command("/incident", "declare sev4 checkout Checkout slow", channel=ALERTS)
    app.slack.command("/incident", "severity INC-1 sev2", channel=ALERTS)
    app.slack.command("/incident", "declare sev3 search Search slow", channel=ALERTS)
    app.slack.command("/incident", "mitigate INC-2", channel=ALERTS)
    app.slack.command("/incident", "severity INC-2 sev1", channel=ALERTS)
    assert created_channels(app) == []


def post_pagerduty(app, payload: dict) -> tuple[int, dict]:
    body = json.dumps(payload).encode()
    sig = "v1=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    conn = http.client.HTTPConnection("127.0.0.1", app.server.port, timeout=30)
    try:
        conn.request("POST", "/webhooks/pagerduty", body=body, headers={"Content-Type": "application/json", "X-PagerDuty-Signature": sig})
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read())
    finally:
        conn.close()


def test_an_incident_from_a_pagerduty_webhook_is_not_paged_back_to_pagerduty(make_slack_app, pagerduty):
    app = make_slack_app(pagerduty_routing_key=KEY, pagerduty_events_url=pagerduty.url, pagerduty_webhook_secret=SECRET)
    status, body = post_pagerduty(app, event("incident.triggered", pd_id="PX1", priority="P1"))
    assert status == 200 and body["incident"] == "INC-1", body
    app.slack.settle()
    app.slack.command("/incident", "severity INC-1 sev2", channel=ALERTS)
    app.slack.command("/incident", "severity INC-1 sev1", channel=ALERTS)
    app.slack.command("/incident", "resolve INC-1", channel=ALERTS)
    assert pagerduty.calls == [], "PagerDuty already pages this incident's responders: no second alert"

    # An incident declared in Slack is still paged, and PagerDuty's webhook for that page is the same incident.
    app.slack.command("/incident", "declare sev1 checkout Checkout down", channel=ALERTS)
    pagerduty.wait_for(lambda: len(pagerduty.accepted()) == 1)
    assert pagerduty.accepted()[0]["dedup_key"] == "dora-bot-INC-2"
    status, body = post_pagerduty(app, event("incident.acknowledged", pd_id="PX2", incident_key="dora-bot-INC-2"))
    assert status == 200 and body["incident"] == "INC-2", body


def test_a_severity_raise_after_mitigation_pages_nobody(make_slack_app, pagerduty):
    """Impact is over once mitigated: correcting the severity upward then (for the record) must not
    wake anyone; an incident raised before mitigation is paged as usual."""
    app = make_slack_app(pagerduty_routing_key=KEY, pagerduty_events_url=pagerduty.url)
    app.slack.command("/incident", "declare sev3 checkout Checkout slow", channel=ALERTS)
    app.slack.command("/incident", "mitigate INC-1", channel=ALERTS)
    app.slack.command("/incident", "severity INC-1 sev1", channel=ALERTS)
    app.slack.command("/incident", "declare sev3 search Search slow", channel=ALERTS)
    app.slack.command("/incident", "severity INC-2 sev1", channel=ALERTS)
    pagerduty.wait_for(lambda: len(pagerduty.accepted()) == 1)
    app.slack.command("/incident", "resolve INC-1", channel=ALERTS)
    app.slack.settle()
    assert [(e["event_action"], e["dedup_key"]) for e in pagerduty.accepted()] == [("trigger", "dora-bot-INC-2")]
