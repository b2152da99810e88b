"""``/deploy`` over real HTTP: record, bad input, help, list, fail, rollback, open-incident warning."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.store.models import Deploy, DeployCommit
from tests.conftest import NOW
from tests.slack.harness import (
    assert_usage_error,
    ephemeral_answer,
    message_text,
    sqlite_only,
)

USAGE = "/deploy <service> <version>"


def test_deploy_records_replies_ephemerally_and_posts_a_card(slack_app):
    app, slack, fake = slack_app, slack_app.slack, slack_app.fake
    r = slack.command("/deploy", "checkout 1.2.3 commit=abc1234 committed=2h url=https://ci.example/run/1 hotfix for the cart",
                      user="U1", channel="C1")

    assert r.http.status == 200
    assert r.http.elapsed < 3, "Slack needs the ack within 3 seconds"
    reply = r.reply()
    assert reply["response_type"] == "ephemeral"
    assert "D-1" in reply["text"] and "checkout" in reply["text"] and "1.2.3" in reply["text"]

    cards = fake.posts("C1")
    assert len(cards) == 1
    card = message_text(cards[0])
    assert "D-1" in card and "checkout" in card and "1.2.3" in card and "production" in card
    assert "<@U1>" in card and "1 commit" in card and "https://ci.example/run/1" in card and "hotfix for the cart" in card
    assert cards[0]["text"], "every message has a plain text"
    assert fake.posts("C0ALERTS") == [], "deploys are not alerts"

    (deploy,) = app.all(Deploy)
    assert (deploy.version, deploy.environment, deploy.status, deploy.source, deploy.created_by) == (
        "1.2.3", "production", "success", "slack", "U1"
    )
    assert deploy.deployed_at == NOW
    assert deploy.url == "https://ci.example/run/1" and deploy.note == "hotfix for the cart"
    (commit,) = app.all(DeployCommit)
    assert commit.sha == "abc1234" and commit.committed_at == NOW - timedelta(hours=2)


@sqlite_only
def test_every_web_api_call_carries_the_bot_token(slack_app):
    slack_app.slack.command("/deploy", "checkout 1.0")
    calls = slack_app.fake.api_calls()
    assert calls
    assert {c.authorization for c in calls} == {"Bearer xoxb-test"}


def test_deploy_to_another_environment(slack_app):
    r = slack_app.slack.command("/deploy", "checkout 1.0 env=staging")
    assert "staging" in r.reply()["text"]
    (deploy,) = slack_app.all(Deploy)
    assert deploy.environment == "staging"


@sqlite_only
@pytest.mark.parametrize(
    "text, says",
    [
        ("checkout", "version"),  # missing version
        ("checkout 1.2.3 env=Bad!Env", "environment"),
        ("checkout 1.2.3 env=", "env="),
        ("checkout 1.2.3 commit=abc1234 committed=yesterdayish", "not a time"),
        ("checkout 1.2.3 committed=2h", "commit="),
        ("checkout 1.2.3 commit=xyz!", "sha"),
        ("checkout 1.2.3 url=ftp://example.com/x", "url"),
        ("Check/Out?? 1.2.3", "service"),
        ("checkout 1.2.3 env=staging env=prod", "twice"),
    ],
)
def test_bad_deploy_input_gets_usage_and_stores_nothing(slack_app, text, says):
    before = slack_app.counts()
    r = slack_app.slack.command("/deploy", text)
    assert r.http.status == 200
    assert_usage_error(r, USAGE, says=says)
    assert slack_app.counts() == before
    assert slack_app.fake.posts() == []


@sqlite_only
@pytest.mark.parametrize(
    "text",
    [
        "checkout 1.2.3 enviroment=staging",  # a typo of env=: must not become a silent note
        "checkout envv=staging 1.2.3",  # an unknown option where the version goes
    ],
)
def test_unknown_option_gets_usage_and_stores_nothing(slack_app, text):
    before = slack_app.counts()
    r = slack_app.slack.command("/deploy", text)
    assert_usage_error(r, USAGE, says="unknown option")
    assert slack_app.counts() == before
    assert slack_app.fake.posts() == []


@sqlite_only
@pytest.mark.parametrize("text", ["help", "", "--help"])
def test_deploy_help_lists_every_form(slack_app, text):
    r = slack_app.slack.command("/deploy", text)
    answer = ephemeral_answer(r)
    assert answer.get("response_type", "ephemeral") == "ephemeral"
    body = message_text(answer)
    for form in ("/deploy <service> <version>", "/deploy list", "/deploy fail <D-n>", "/deploy rollback <service>"):
        assert form in body
    assert slack_app.fake.posts() == []


def test_deploy_list(slack_app):
    slack, clock = slack_app.slack, slack_app.clock
    slack.command("/deploy", "checkout 1.0")
    clock.advance(minutes=10)
    slack.command("/deploy", "payments 2.0")
    clock.advance(minutes=10)
    slack.command("/deploy", "checkout 1.1-rc env=staging")

    body = message_text(slack.command("/deploy", "list").reply())
    assert body.index("D-3") < body.index("D-2") < body.index("D-1"), "newest first"

    only = message_text(slack.command("/deploy", "list checkout").reply())
    assert "D-1" in only and "D-3" in only and "D-2" not in only

    staging = message_text(slack.command("/deploy", "list env=staging").reply())
    assert "D-3" in staging and "D-1" not in staging

    one = message_text(slack.command("/deploy", "list limit=1").reply())
    assert "D-3" in one and "D-2" not in one

    none = slack.command("/deploy", "list nosuchservice").reply()
    assert "No deploys" in message_text(none)

    assert_usage_error(slack.command("/deploy", "list limit=0"), "/deploy list", says="limit")
    assert_usage_error(slack.command("/deploy", "list checkout payments"), "/deploy list")


def test_deploy_fail_marks_a_change_failure_once(slack_app):
    slack = slack_app.slack
    slack.command("/deploy", "checkout 1.0")
    r = slack.command("/deploy", "fail D-1 broke the cart", user="U2")
    reply = r.reply()
    assert reply["response_type"] == "in_channel"
    assert "D-1" in reply["text"] and "<@U2>" in reply["text"] and "broke the cart" in reply["text"]
    (deploy,) = slack_app.all(Deploy)
    assert deploy.marked_failed and deploy.change_failure and deploy.failure_reason == "broke the cart"

    again = slack.command("/deploy", "fail 1").reply()
    assert again["response_type"] == "ephemeral" and "already" in again["text"]
    (deploy,) = slack_app.all(Deploy)
    assert deploy.failure_reason == "broke the cart"

    missing = ephemeral_answer(slack.command("/deploy", "fail D-99"))
    assert "D-99" in message_text(missing)
    assert_usage_error(slack.command("/deploy", "fail"), "/deploy fail")
    assert_usage_error(slack.command("/deploy", "fail checkout"), "/deploy fail", says="not a deploy")


def test_deploy_rollback_reverts_the_latest_deploy_to_the_previous_good_version(slack_app):
    slack, clock, fake = slack_app.slack, slack_app.clock, slack_app.fake
    slack.command("/deploy", "checkout 1.0")
    clock.advance(hours=1)
    slack.command("/deploy", "checkout 1.1")
    clock.advance(minutes=5)

    r = slack.command("/deploy", "rollback checkout", user="U3")
    text = r.reply()["text"]
    assert "D-3" in text and "1.0" in text and "D-2" in text

    d1, d2, d3 = slack_app.all(Deploy)
    assert d3.version == "1.0" and d3.rollback_of_id == d2.id and d3.created_by == "U3" and d3.status == "success"
    assert d3.deployed_at == clock.now
    assert d2.change_failure, "a rolled back deploy is a change failure"
    assert not d1.change_failure

    cards = fake.posts("C1")
    assert len(cards) == 3
    card = message_text(cards[-1])
    assert "Rollback D-3" in card and "reverts D-2" in card


def test_deploy_rollback_to_a_named_version(slack_app):
    slack = slack_app.slack
    slack.command("/deploy", "checkout 1.0")
    slack.command("/deploy", "checkout 1.1")
    slack.command("/deploy", "rollback checkout to=1.0")
    _, _, rollback = slack_app.all(Deploy)
    assert rollback.version == "1.0" and rollback.rollback_of_id == 2


def test_deploy_rollback_errors_store_nothing(slack_app):
    slack = slack_app.slack
    slack.command("/deploy", "checkout 1.0")
    before = slack_app.counts()
    posts = len(slack_app.fake.posts())

    no_previous = message_text(ephemeral_answer(slack.command("/deploy", "rollback checkout")))
    assert "No earlier good version" in no_previous
    unknown = message_text(ephemeral_answer(slack.command("/deploy", "rollback nosuch")))
    assert "No service called `nosuch`" in unknown and "checkout" in unknown
    assert_usage_error(slack.command("/deploy", "rollback"), "/deploy rollback")
    assert_usage_error(slack.command("/deploy", "rollback checkout payments"), "/deploy rollback")

    assert slack_app.counts() == before
    assert len(slack_app.fake.posts()) == posts


def test_deploy_warns_when_the_service_has_an_open_incident(slack_app):
    slack, fake = slack_app.slack, slack_app.fake
    slack.command("/incident", "declare sev2 checkout Checkout 5xx")
    r = slack.command("/deploy", "checkout 1.2.4")
    text = r.reply()["text"]
    assert "D-1" in text and ":warning:" in text and "INC-1" in text

    assert len(slack_app.all(Deploy)) == 1, "still recorded"
    card = [p for p in fake.posts("C1") if p["text"].startswith("Deploy")][-1]
    body = message_text(card)
    assert "open incident" in body and "INC-1" in body

    # Another service's incident does not warn.
    other = slack.command("/deploy", "payments 3.0").reply()["text"]
    assert ":warning:" not in other
