"""Several people (or one impatient double click) pressing the same button at once: one state change.

On SQLite writes are serialized; on PostgreSQL (READ COMMITTED) the check-then-write in the
services needs a row lock (``SELECT ... FOR UPDATE`` of the incident) or a unique constraint, or
concurrent presses each see the old state.
"""

from __future__ import annotations

import threading

from bot.store.models import Deploy, IncidentEvent
from tests.slack.conftest import ALERTS

PRESSES = 10


def press_together(app, card, label, users):
    barrier = threading.Barrier(len(users))
    results = []

    def go(user):
        barrier.wait()
        results.append(app.slack.press(card, label, user=user, settle=False))

    threads = [threading.Thread(target=go, args=(u,)) for u in users]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    app.slack.settle()
    return results


def test_simultaneous_acknowledge_presses_change_the_state_once(slack_app):
    app = slack_app
    app.slack.command("/incident", "declare sev1 checkout Down", channel=ALERTS)
    card = app.fake.top_level(ALERTS)[0]
    results = press_together(app, card, "Acknowledge", [f"U{i}" for i in range(PRESSES)])
    assert all(r.http.status == 200 for r in results)
    acks = [e for e in app.all(IncidentEvent) if e.kind == "acknowledged"]
    assert len(acks) == 1, f"{len(acks)} acknowledged events for one incident"
    assert len(app.fake.thread(ALERTS, card["ts"])) == 1, "one thread line"
    explained = [r for r in results if r.replies()]
    assert len(explained) == PRESSES - 1, "everyone else is told it was already acknowledged"


def test_simultaneous_roll_back_presses_record_one_rollback(slack_app):
    app = slack_app
    app.slack.command("/deploy", "checkout 1.0")
    app.clock.advance(hours=1)
    app.slack.command("/deploy", "checkout 1.1")
    app.slack.command("/incident", "declare sev1 checkout Down cause=D-2", channel=ALERTS)
    card = app.fake.top_level(ALERTS)[0]
    results = press_together(app, card, "Roll back", [f"U{i}" for i in range(PRESSES)])
    rollbacks = [d for d in app.all(Deploy) if d.rollback_of_id == 2]
    assert len(rollbacks) == 1, f"{len(rollbacks)} rollback deploys of D-2; replies: {[r.replies() for r in results]}"
    assert len([e for e in app.all(IncidentEvent) if e.kind == "rollback"]) == 1
