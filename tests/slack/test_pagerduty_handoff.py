"""The PagerDuty Events API v2 hand-off, end to end: incidents declared and changed over real signed
Slack requests (and the ingest API), events sent by the outbox worker to a fake Events API on
127.0.0.1 with 429 and 503 faults: trigger and resolve exactly once, dedup key ``dora-bot-INC-<n>``."""

from __future__ import annotations

import http.client
import json
import logging
from datetime import timedelta

import pytest

from bot.store.models import Incident, OutboxMessage
from tests.fake_pagerduty import FakePagerDuty
from tests.slack.conftest import ALERTS
from tests.slack.harness import sqlite_only

KEY = "R0UT1NGKEY0123456789abcdefABCDEF"  # 32 characters, like an integration key
TOKEN = "ingest-token-for-pagerduty-tests-01"


@pytest.fixture
def pagerduty():
    fake = FakePagerDuty().start()
    yield fake
    fake.stop()


@pytest.fixture
def paged_app(make_slack_app, pagerduty):
    return make_slack_app(pagerduty_routing_key=KEY, pagerduty_events_url=pagerduty.url, ingest_tokens=(TOKEN,))



@pytest.fixture(autouse=True)
def _policy_back_to_defaults(engine):
    """These tests turn paging or channels on for the (shared) test database: off again afterwards."""
    from bot.services import lifecycle

    yield
    lifecycle.uninstall(engine)

def pd_rows(app) -> list[OutboxMessage]:
    return [m for m in app.all(OutboxMessage) if m.kind == "pagerduty.event"]


def retry(app, seconds: float) -> int:
    app.clock.advance(seconds=seconds)
    sent = app.outbox_worker().deliver_due()
    app.slack.settle()
    return sent


def test_trigger_at_the_severity_and_resolve_with_the_incident_exactly_once(paged_app, pagerduty):
    app = paged_app
    app.slack.command("/incident", "declare sev2 checkout Checkout 5xx", channel=ALERTS)
    app.slack.command("/incident", "declare sev3 search Search slow", channel=ALERTS)
    (trigger,) = pagerduty.accepted()
    assert trigger["routing_key"] == KEY and trigger["event_action"] == "trigger" and trigger["dedup_key"] == "dora-bot-INC-1"
    assert trigger["payload"]["summary"] == "[SEV2] INC-1 checkout: Checkout 5xx" and trigger["payload"]["severity"] == "error"
    assert trigger["payload"]["source"] == "dora-bot:checkout"

    app.slack.command("/incident", "ack INC-1", channel=ALERTS)
    app.slack.command("/incident", "severity INC-2 sev4", channel=ALERTS)
    assert len(pagerduty.accepted()) == 1, "an acknowledgement or a lower severity pages nobody"
    app.slack.command("/incident", "severity INC-2 sev1", channel=ALERTS)  # a raise to the paging severity
    assert [(e["event_action"], e["dedup_key"]) for e in pagerduty.accepted()][1:] == [("trigger", "dora-bot-INC-2")]
    assert pagerduty.accepted()[1]["payload"]["severity"] == "critical"
    app.slack.command("/incident", "severity INC-2 sev2", channel=ALERTS)
    app.slack.command("/incident", "severity INC-2 sev1", channel=ALERTS)
    assert len(pagerduty.accepted()) == 2, "paged once however often the severity moves"

    app.slack.command("/incident", "mitigate INC-1", channel=ALERTS)
    app.slack.command("/incident", "resolve INC-1 fixed", channel=ALERTS)
    app.slack.command("/incident", "cancel INC-2 false alarm", channel=ALERTS)
    assert [(e["event_action"], e["dedup_key"]) for e in pagerduty.accepted()] == [
        ("trigger", "dora-bot-INC-1"), ("trigger", "dora-bot-INC-2"), ("resolve", "dora-bot-INC-1"), ("resolve", "dora-bot-INC-2")]
    assert "payload" not in pagerduty.accepted()[2]
    assert [i.paged for i in app.all(Incident)] == ["resolved", "resolved"]
    assert {m.status for m in pd_rows(app)} == {"sent"} and len(pd_rows(app)) == 4
    assert retry(app, 3600) == 0 and len(pagerduty.calls) == 4, "nothing is sent twice"


@sqlite_only
def test_429_and_503_are_retried_with_backoff_and_deliver_once(paged_app, pagerduty):
    app = paged_app
    pagerduty.fail_next(1, status=429)
    pagerduty.fail_next(1, status=503)
    r = app.slack.command("/incident", "declare sev1 payments Payments down", channel=ALERTS)
    assert r.http.elapsed < 3 and "Declared INC-1" in r.reply()["text"], "the user does not wait for PagerDuty"
    assert pagerduty.statuses() == [429] and pagerduty.accepted() == []
    (row,) = pd_rows(app)
    assert row.status == "pending" and "429" in row.last_error and row.next_attempt_at == app.clock.now + timedelta(seconds=2)
    assert retry(app, 1) == 0, "not before its backoff"
    retry(app, 1)
    assert pagerduty.statuses() == [429, 503]
    app.slack.command("/incident", "resolve INC-1", channel=ALERTS)
    assert pagerduty.statuses() == [429, 503], "the resolve waits behind its trigger"
    retry(app, 4)
    assert pagerduty.statuses() == [429, 503, 202, 202]
    assert [e["event_action"] for e in pagerduty.accepted()] == ["trigger", "resolve"]
    assert {m.status for m in pd_rows(app)} == {"sent"}


@sqlite_only
def test_a_4xx_is_recorded_as_failed_and_logged_not_retried(make_slack_app, pagerduty, caplog):
    app = make_slack_app(pagerduty_routing_key="too-short", pagerduty_events_url=pagerduty.url)
    with caplog.at_level(logging.WARNING, logger="bot.slack.delivery"):
        app.slack.command("/incident", "declare sev1 payments Payments down", channel=ALERTS)
    (row,) = pd_rows(app)
    assert row.status == "dead" and "HTTP 400" in row.last_error and "routing_key" in row.last_error
    assert any("PagerDuty" in r.getMessage() and "400" in r.getMessage() for r in caplog.records)
    assert "too-short" not in row.last_error and all("too-short" not in r.getMessage() for r in caplog.records)
    assert retry(app, 3600) == 0 and pagerduty.statuses() == [400]


def test_min_severity_and_no_routing_key(make_slack_app, pagerduty):
    app = make_slack_app(pagerduty_routing_key=KEY, pagerduty_events_url=pagerduty.url, pagerduty_min_severity="sev1")
    app.slack.command("/incident", "declare sev2 checkout Checkout 5xx", channel=ALERTS)
    assert pagerduty.calls == [] and pd_rows(app) == []
    app.slack.command("/incident", "declare sev1 checkout Checkout down", channel=ALERTS)
    assert [e["dedup_key"] for e in pagerduty.accepted()] == ["dora-bot-INC-2"]


def test_without_a_routing_key_nothing_is_queued(make_slack_app, pagerduty):
    app = make_slack_app(pagerduty_events_url=pagerduty.url)
    app.slack.command("/incident", "declare sev1 checkout Checkout down", channel=ALERTS)
    app.slack.command("/incident", "resolve INC-1", channel=ALERTS)
    assert pd_rows(app) == [] and pagerduty.calls == [] and app.all(Incident)[0].paged is None


def test_an_incident_from_the_api_is_paged_and_resolved_too(paged_app, pagerduty):
    app = paged_app

    def call(method, path, body):
        conn = http.client.HTTPConnection("127.0.0.1", app.server.port, timeout=30)
        try:
            conn.request(method, path, body=json.dumps(body),
                         headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"})
            resp = conn.getresponse()
            return resp.status, json.loads(resp.read())
        finally:
            conn.close()

    status, body = call("POST", "/api/v1/incidents", {"id": "pd-1", "service": "checkout", "severity": "sev3", "title": "Slow",
                                                      "lead": "U0LEAD1"})
    assert status == 201 and body["lead"] == "U0LEAD1"
    app.slack.settle()
    assert pagerduty.calls == []
    assert call("PATCH", "/api/v1/incidents/pd-1", {"severity": "sev2"})[0] == 200
    app.slack.settle()
    pagerduty.wait_for(lambda: len(pagerduty.accepted()) == 1)
    assert call("PATCH", "/api/v1/incidents/pd-1", {"resolved_at": "now"})[0] == 200
    app.slack.settle()
    pagerduty.wait_for(lambda: len(pagerduty.accepted()) == 2)
    assert [e["event_action"] for e in pagerduty.accepted()] == ["trigger", "resolve"]
    bad = call("POST", "/api/v1/incidents", {"id": "pd-2", "service": "checkout", "lead": "ana"})
    assert bad[0] == 422 and [e["field"] for e in bad[1]["errors"]] == ["lead"]
