"""`dora-bot serve` on SIGTERM: finish the outbox batch in hand, then stop (no message left half-sent).

`serve` documents: "SIGTERM stops accepting requests, finishes those in flight and the outbox
batch in hand, and releases the scheduler lock". A message whose send is interrupted stays
``sending`` until its lease (2 min) runs out and is then sent again: Slack would show it twice.
"""

from __future__ import annotations

import signal
import time
from datetime import datetime, timezone

from sqlmodel import select

from bot.core.inputs import IncidentInput
from bot.services import outbox
from bot.services.incidents import declare_incident
from bot.store.db import make_engine, session_scope
from bot.store.models import OutboxMessage
from tests.scheduler.conftest import ALERTS
from tests.scheduler.procs import Replica, cli_env, wait_until
from tests.slack.harness import SIGNING_SECRET

UTC = timezone.utc


def test_sigterm_while_a_message_is_being_sent_finishes_it_and_exits_cleanly(db_file, slack, tmp_path):
    engine = make_engine(db_file)
    try:
        now = datetime.now(UTC)
        with session_scope(engine) as s:  # an incident whose card waits in the outbox
            outcome = declare_incident(
                s, data=IncidentInput(service="checkout", started_at=now, severity="sev2", title="hello from the outbox"), now=now
            )
            outbox.announce_incident(s, outcome.incident.id, now=now, default_alert_channel=ALERTS)
    finally:
        engine.dispose()
    slack.delay_next("chat.postMessage", 3.0)  # Slack is slow to answer this one

    env = cli_env(db_file, slack, SLACK_SIGNING_SECRET=SIGNING_SECRET, RUN_SCHEDULER="false", LOG_LEVEL="INFO")
    replica = Replica("serve", env, tmp_path)
    try:
        wait_until(lambda: replica.get("/healthz")[0] == 200 or not replica.alive(), 40, "serve to start")
        assert replica.alive(), replica.output()
        # The worker's first round has picked the message up and is waiting for Slack's answer.
        wait_until(lambda: _status(db_file) == "sending", 10, "the message to be in flight")
        time.sleep(0.5)
        replica.proc.send_signal(signal.SIGTERM)
        replica.proc.wait(30)
    finally:
        replica.stop()
    # Slack did get it (the fake answers after its delay, even if the caller is gone) ...
    posted = slack.wait_for(lambda: [p for p in slack.posts(ALERTS) if "hello from the outbox" in p["text"]], 10, "the post")
    assert len(posted) == 1
    assert _status(db_file) == "sent", (
        f"... but the outbox still says {_status(db_file)!r}: it will be sent again when the lease runs out.\n"
        f"exit code {replica.proc.returncode}\n{replica.output()}"
    )
    assert replica.proc.returncode == 0, replica.output()


def _status(db_url: str) -> str | None:
    engine = make_engine(db_url)
    try:
        with session_scope(engine, write=False) as s:
            m = s.exec(select(OutboxMessage)).first()
            return m.status if m else None
    finally:
        engine.dispose()
