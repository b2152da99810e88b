"""The hygiene nudges over real, signed HTTP against the fake Slack: the cause question under a
resolved incident's card, its buttons and the metrics after each answer; the commit hint."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from bot.scheduler import jobs
from bot.services.metrics import build_metrics
from bot.store.db import session_scope
from bot.store.models import Incident, IncidentEvent, Nudge
from tests.conftest import NOW, PRODUCTION
from tests.dbutil import load
from tests.slack.conftest import ALERTS
from tests.slack.harness import button_labels, ephemeral_answer, message_text

QUESTION = "Was it caused by a deploy?"


@pytest.fixture
def bound_jobs():
    """Restore whatever runtime the scheduler's jobs were bound to before the test."""
    before = jobs._runtime
    yield
    jobs._runtime = before


def metrics(app, service="checkout"):
    with session_scope(app.engine, write=False) as session:
        return build_metrics(session, service=service, days=30, end=app.clock.now + timedelta(seconds=1),
                             timezone_name="UTC", production_environments=PRODUCTION)


def history(app, n: int = 7) -> None:
    """checkout's production deploys D-1..D-n, an hour apart, the last one 10 minutes ago; one staging deploy."""
    records = [
        {"type": "deploy", "id": f"d{i}", "service": "checkout", "environment": "production", "version": f"1.{i}",
         "deployed_at": (NOW - timedelta(minutes=10) - timedelta(hours=n - i)).isoformat(), "status": "success"}
        for i in range(1, n + 1)
    ]
    records.append({"type": "deploy", "id": "s1", "service": "checkout", "environment": "staging", "version": "2.0",
                    "deployed_at": (NOW - timedelta(minutes=5)).isoformat(), "status": "success"})
    assert load(app.engine, records, now=NOW).committed


def alert_card(app, number: int = 1) -> dict:
    return [m for m in app.fake.top_level(ALERTS) if m["text"].startswith(f"INC-{number} ")][0]


def thread(app, number: int = 1) -> list[dict]:
    return app.fake.thread(ALERTS, alert_card(app, number)["ts"])


def questions(app, number: int = 1) -> list[dict]:
    """The cause question (or, once answered, the same message showing the answer)."""
    return [m for m in thread(app, number) if QUESTION in m["text"] or m["text"].startswith(f"INC-{number}: ")]


def declare_and_resolve(app, title: str = "Checkout 5xx", extra: str = "") -> None:
    app.slack.command("/incident", f"declare sev2 checkout {title} {extra}".strip(), channel=ALERTS)
    app.clock.advance(minutes=30)
    app.slack.command("/incident", f"resolve INC-{len(app.all(Incident))}", channel=ALERTS, user="U1")


def test_a_resolved_incident_with_no_cause_gets_one_question_and_caused_by_links_it(slack_app):
    app = slack_app
    history(app)
    declare_and_resolve(app)
    (question,) = questions(app)
    body = message_text(question)
    assert "INC-1 was resolved with no known cause" in body and "`checkout`" in body
    # The service's last five production deploys before the incident started, newest first.
    assert button_labels(question) == [f"Caused by D-{i}" for i in (7, 6, 5, 4, 3)] + ["Not caused by a deploy"]
    assert "D-8" not in body, "a staging deploy is no candidate"
    before = metrics(app)["change_failure_rate"]
    assert (before["failed"], before["unlinked_incidents"], before["not_change_incidents"]) == (0, 1, 0)

    app.clock.advance(minutes=3)
    r = app.slack.press(question, "Caused by D-6", user="U2")
    assert r.http.status == 200 and r.replies() == []
    (incident,) = app.all(Incident)
    assert incident.caused_by_id == 6 and not incident.not_caused_by_change
    after = metrics(app)["change_failure_rate"]
    assert (after["failed"], after["deploys"], after["unlinked_incidents"]) == (1, 7, 0)
    assert metrics(app)["failed_deployment_recovery_time"]["incidents"] == 1
    card = message_text(alert_card(app))
    assert "Caused by" in card and "D-6" in card, "the card is refreshed with the cause"
    assert any("linked the cause" in m["text"] and "D-6" in m["text"] for m in thread(app)), "a timeline line"

    (answered,) = questions(app)  # the same message, edited in place
    assert answered["ts"] == question["ts"]
    text = message_text(answered)
    assert "caused by D-6" in text and "1.6" in text and "<@U2>" in text and QUESTION not in text
    assert button_labels(answered) == []

    # A second click on the old copy of the question changes nothing and says who answered.
    events_before = len(app.all(IncidentEvent))
    again = app.slack.press(question, "Caused by D-3", user="U3")
    answer = ephemeral_answer(again)
    assert "already answered" in answer["text"] and "<@U2>" in answer["text"] and "D-6" in answer["text"]
    assert app.all(Incident)[0].caused_by_id == 6
    assert len(app.all(IncidentEvent)) == events_before
    assert metrics(app)["change_failure_rate"]["failed"] == 1
    assert len(questions(app)) == 1 and button_labels(questions(app)[0]) == []
    assert app.fake.escaping == [], "\n".join(app.fake.escaping)
    # What a `ttr` watch links to: the recovery from the causing deploy is shown.
    explained = message_text(ephemeral_answer(app.slack.command("/dora", "explain ttr checkout")))
    assert "failed deployment recovery time" in explained and "over the 1 with a known cause" in explained
    assert "INC-1" in explained and "(from D-6:" in explained


def test_not_caused_by_a_deploy_records_the_incident_as_known_unlinked(slack_app):
    app = slack_app
    history(app, n=2)
    declare_and_resolve(app)
    (question,) = questions(app)
    app.slack.press(question, "Not caused by a deploy", user="U2")
    (incident,) = app.all(Incident)
    assert incident.not_caused_by_change and incident.caused_by_id is None
    cfr = metrics(app)["change_failure_rate"]
    assert (cfr["failed"], cfr["unlinked_incidents"], cfr["not_change_incidents"]) == (0, 0, 1)
    (answered,) = questions(app)
    text = message_text(answered)
    assert "not caused by a deploy" in text and "<@U2>" in text and button_labels(answered) == []
    assert "not a deploy" in message_text(alert_card(app)), "the card says so"
    assert any("not caused by a deploy" in m["text"] and "<@U2>" in m["text"] for m in thread(app) if m["ts"] != question["ts"])

    again = app.slack.press(question, "Caused by D-2", user="U3")
    assert "already answered" in ephemeral_answer(again)["text"]
    incident = app.all(Incident)[0]
    assert incident.caused_by_id is None and incident.not_caused_by_change
    assert metrics(app)["change_failure_rate"]["failed"] == 0


def test_a_cause_linked_another_way_answers_the_question_too(slack_app):
    app = slack_app
    history(app, n=3)
    declare_and_resolve(app)
    (question,) = questions(app)
    app.slack.command("/incident", "cause INC-1 D-2", user="U5", channel=ALERTS)
    (answered,) = questions(app)
    assert "caused by D-2" in message_text(answered) and "<@U5>" in message_text(answered)
    assert button_labels(answered) == []
    late = app.slack.press(question, "Not caused by a deploy", user="U2")
    assert "already answered" in ephemeral_answer(late)["text"]
    incident = app.all(Incident)[0]
    assert incident.caused_by_id == 2 and not incident.not_caused_by_change
    assert metrics(app)["change_failure_rate"]["failed"] == 1


def test_no_question_when_the_cause_is_known_and_none_twice(slack_app):
    app = slack_app
    history(app, n=2)
    declare_and_resolve(app, extra="cause=D-2")
    assert questions(app) == [] and app.all(Nudge) == []
    # A service with no deploy before the incident: only "Not caused by a deploy".
    app.slack.command("/incident", "declare sev3 search Slow search", channel=ALERTS)
    app.slack.command("/incident", "resolve INC-2", channel=ALERTS)
    (question,) = questions(app, 2)
    assert button_labels(question) == ["Not caused by a deploy"]
    assert "No production deploy of `search` before the incident started" in message_text(question)
    # Resolving again changes nothing, so no second question.
    app.slack.command("/incident", "resolve INC-2", channel=ALERTS)
    assert len(questions(app, 2)) == 1 and len(app.all(Nudge)) == 1


def test_a_forged_button_value_gets_a_clear_answer_and_changes_nothing(slack_app):
    app = slack_app
    history(app, n=2)
    declare_and_resolve(app)
    (question,) = questions(app)
    forged = json.loads(json.dumps(question))
    for block in forged["blocks"]:
        for el in block.get("elements") or []:
            if el.get("type") == "button" and el["text"]["text"] == "Caused by D-2":
                el["value"] = "1:abc"
    r = app.slack.press(forged, "Caused by D-2", user="U2")
    assert r.http.status == 200
    assert "not one of mine" in ephemeral_answer(r)["text"]
    assert app.all(Incident)[0].caused_by_id is None
    assert app.all(Nudge)[0].answer is None


# --- the commit hint ---------------------------------------------------------------------------

def hints(app, channel: str = "C1") -> list[dict]:
    return [m for m in app.fake.posts(channel, thread=True) if "recorded with no commits" in m["text"]]


def hint_job(app) -> int:
    """The scheduler's job, as the leader runs it every 5 minutes; the app's worker sends what it queued."""
    jobs.bind(app.rt)
    queued = jobs.send_commit_hints()
    app.slack.settle()
    return queued


def test_a_production_deploy_with_no_commits_gets_one_hint_a_week_per_service(slack_app, bound_jobs):
    app, slack, clock = slack_app, slack_app.slack, slack_app.clock
    slack.command("/deploy", "checkout 1.0")
    clock.advance(minutes=1)
    slack.command("/deploy", "checkout 1.1")
    clock.advance(minutes=4)
    assert hint_job(app) == 1
    (hint,) = hints(app)
    card = [m for m in app.fake.top_level("C1") if "D-2" in m["text"]][0]
    assert hint["thread_ts"] == card["ts"], "in the thread of the latest such deploy's card"
    body = message_text(hint)
    assert "D-2 was recorded with no commits" in body and "commit=<sha>" in body and "docs/ingest.md" in body
    assert hint_job(app) == 0, "the job runs again: nothing more"

    clock.advance(days=1)
    slack.command("/deploy", "checkout 1.2")
    slack.command("/deploy", "checkout 1.3 env=staging")
    slack.command("/deploy", "payments 3.0 commit=abc1234")
    assert hint_job(app) == 0, "at most once a week per service; deploys with commits need none"

    slack.command("/deploy", "payments 3.1")
    assert hint_job(app) == 1 and "D-6" in hints(app)[-1]["text"], "another service gets its own"

    clock.advance(days=6, minutes=1)  # more than 7 days after the first hint
    slack.command("/deploy", "checkout 1.4")
    assert hint_job(app) == 1 and "D-7" in hints(app)[-1]["text"]
    assert len(hints(app)) == 3
    assert app.fake.escaping == [], "\n".join(app.fake.escaping)
    clock.advance(hours=2)
    assert hint_job(app) == 0


def test_an_old_deploy_or_one_without_a_card_gets_no_hint(slack_app, bound_jobs):
    app = slack_app
    load(app.engine, [{"type": "deploy", "id": "api-1", "service": "checkout", "environment": "production", "version": "1.0",
                       "deployed_at": NOW.isoformat(), "status": "success"}], now=NOW)  # no card anywhere
    assert hint_job(app) == 0
    app.slack.command("/deploy", "search 1.0")
    app.clock.advance(hours=1, minutes=1)  # the job did not run for over an hour
    assert hint_job(app) == 0 and hints(app) == []
