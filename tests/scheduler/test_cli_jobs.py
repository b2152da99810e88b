"""`dora-bot jobs list` / `dora-bot jobs run ID` as real processes, against the fake Slack.

Each run is a new process on the same SQLite file (real clock): a due digest is posted once,
however many times the job is run.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sqlmodel import select

from bot.services import digests
from bot.store.db import make_engine, session_scope
from bot.store.models import DigestDelivery, OutboxMessage
from tests.scheduler.conftest import DIGEST_CHANNEL
from tests.scheduler.procs import cli_env, run

UTC = timezone.utc
PNG = b"\x89PNG\r\n\x1a\n"


def add_due_subscription(db_url: str) -> int:
    """Weekly, Monday 09:00 Berlin, created 8 days ago: its current period is due right now."""
    engine = make_engine(db_url)
    try:
        with session_scope(engine) as s:
            return digests.add_subscription(
                s, channel=DIGEST_CHANNEL, timezone="Europe/Berlin", now=datetime.now(UTC) - timedelta(days=8)
            ).id
    finally:
        engine.dispose()


def test_jobs_run_twice_in_two_processes_posts_one_digest(db_file, slack, tmp_path):
    sub = add_due_subscription(db_file)
    env = cli_env(db_file, slack)

    first = run(["jobs", "run", "digests.send_due"], env, tmp_path)
    assert first.returncode == 0, first.stderr
    assert "digests.send_due: 1 queued" in first.stdout
    assert "delivered to Slack" in first.stdout

    second = run(["jobs", "run", "digests.send_due"], env, tmp_path)
    assert second.returncode == 0, second.stderr
    assert "digests.send_due: 0 queued" in second.stdout

    posts = [p for p in slack.posts(DIGEST_CHANNEL) if "DORA digest" in p["text"]]
    assert len(posts) == 1, posts
    assert all(c.headers.get("authorization") == "Bearer xoxb-test" for c in slack.api_calls() if c.method != "upload")
    engine = make_engine(db_file)
    try:
        with session_scope(engine, write=False) as s:
            assert [d.subscription_id for d in s.exec(select(DigestDelivery)).all()] == [sub]
    finally:
        engine.dispose()


def test_jobs_run_delivers_the_digest_chart_too(db_file, slack, tmp_path):
    """`jobs run` runs "the same code path as the scheduler": the digest is its message and its chart.

    The chart is queued (as ``digest.chart``) while the digest text is being sent, and
    ``jobs run`` calls ``deliver_due()`` once, so the chart stays in the outbox until some
    ``serve`` process delivers it.
    """
    add_due_subscription(db_file)
    result = run(["jobs", "run", "digests.send_due"], env=cli_env(db_file, slack), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert len([p for p in slack.posts(DIGEST_CHANNEL) if "DORA digest" in p["text"]]) == 1
    engine = make_engine(db_file)
    try:
        with session_scope(engine, write=False) as s:
            left = [(m.kind, m.status) for m in s.exec(select(OutboxMessage)).all() if m.status != "sent"]
    finally:
        engine.dispose()
    assert left == [], f"left in the outbox after `jobs run`: {left}"
    (chart,) = slack.shared_files(DIGEST_CHANNEL)
    assert chart["data"].startswith(PNG)


def test_jobs_run_without_a_slack_token_queues_and_says_so(db_file, tmp_path):
    add_due_subscription(db_file)
    result = run(["jobs", "run", "digests.send_due"], env=cli_env(db_file), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "1 queued" in result.stdout and "SLACK_BOT_TOKEN" in result.stdout


def test_jobs_list_names_both_jobs(db_file, tmp_path):
    result = run(["jobs", "list"], env=cli_env(db_file), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    for job in ("digests.send_due", "reminders.send_due"):
        (line,) = [ln for ln in lines if ln.startswith(job)]
        assert "every 60s" in line
    assert result.stderr == ""


def test_jobs_run_unknown_job_fails_with_a_clear_message(db_file, tmp_path):
    result = run(["jobs", "run", "nope"], env=cli_env(db_file), cwd=tmp_path)
    assert result.returncode != 0
    assert result.stdout == ""
    assert result.stderr.strip() == "dora-bot: no job `nope`; `dora-bot jobs list` shows them"


def test_jobs_run_on_an_out_of_date_database_says_to_upgrade(tmp_path):
    result = run(["jobs", "run", "digests.send_due"], env=cli_env(f"sqlite:///{tmp_path / 'empty.db'}"), cwd=tmp_path)
    assert result.returncode != 0
    assert "dora-bot db upgrade" in result.stderr
    assert "Traceback" not in result.stderr
