"""`dora-bot shell` driven from stdin, as a script would: the real Bolt app, no Slack."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def shell(tmp_path: Path, script: str, *, returncode: int = 0) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "DORA_", "DATABASE_URL"))}
    env["DATABASE_URL"] = f"sqlite:///{tmp_path / 'shell.db'}"
    out = subprocess.run(
        [sys.executable, "-m", "bot.cli", "shell"], input=script, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120,
    )
    assert out.returncode == returncode, out.stderr
    return out.stdout


def known_services(tmp_path: Path, *names: str) -> None:
    """The shell's database with these services in the catalogue (a new name is asked about first)."""
    from datetime import UTC, datetime

    from bot.services.lookup import get_or_create_service
    from bot.store.db import make_engine, session_scope, upgrade

    engine = make_engine(f"sqlite:///{tmp_path / 'shell.db'}")
    upgrade(engine)
    with session_scope(engine) as session:
        for name in names:
            get_or_create_service(session, name, now=datetime.now(UTC))
    engine.dispose()


def test_a_scripted_session_records_declares_presses_buttons_and_shows_the_keys(tmp_path):
    known_services(tmp_path, "checkout")
    out = shell(tmp_path, "\n".join([
        "/deploy checkout 1.4.2 commit=9fceb02 committed=3h",
        "/incident declare sev2 checkout Checkout 5xx cause=D-1",
        "1",  # Acknowledge, on the card in the alert channel
        "/incident resolve INC-1 cache flushed",
        "/dora checkout days=7",
        "",
    ]))
    assert "Recorded D-1: `checkout` 1.4.2 to production." in out
    assert "INC-1 CHECKOUT 5XX" in out and "[1] Acknowledge" in out
    assert "Acknowledged by @U0SHELL" in out
    assert "Resolved" in out and "Time to restore" in out
    assert "DORA FIVE KEYS: CHECKOUT" in out and "Change lead time: 3h" in out


def test_the_declare_form_is_filled_at_prompts_and_bad_answers_are_asked_again(tmp_path):
    known_services(tmp_path, "payments")
    out = shell(tmp_path, "\n".join([
        "/deploy payments 7.0",
        "/incident",
        "Ledger lagging",  # title
        "9",               # not one of the services: asked again
        "payments",        # picked by name: the form reloads with its deploys (and asks for no typed name)
        "",                # severity: the default
        "",                # started: now
        "1",               # suspected deploy: D-1
        "",
    ]))
    assert "[modal] Declare an incident" in out
    assert "(not a choice" in out
    assert "INC-1 LEDGER LAGGING" in out and "Service `payments`" in out
    assert "Roll back D-1" in out


def test_input_that_ends_inside_a_form_says_so_stores_nothing_and_fails(tmp_path):
    out = shell(tmp_path, "/incident\nLedger lagging\n", returncode=1)
    assert "input ended while a form was open: it was not submitted" in out
    assert "Aborted" not in out
    later = shell(tmp_path, "/incident list\n")
    assert "No open incidents" in later


def test_the_lifecycle_in_the_shell_buttons_confirm_prompts_shortcut_follow_ups_and_channel(tmp_path):
    known_services(tmp_path, "checkout")
    out = shell(tmp_path, "\n".join([
        "/incident declare sev2 checkout Checkout 5xx",
        "5",  # I'm the lead (alert channel's card)
        "3", "n",  # Resolve asks first: no
        "3", "",   # ...and an empty answer is no too
        "/incident followup INC-1 add a canary",
        "/incident followups",
        "7",  # Done: a new button, the next number (the card's keep 1-6)
        "timeline root cause: the <cfg> flag",  # the message shortcut on a message posted here
        "1",  # the incident, in the form
        "/incident postmortem INC-1",
        "/incident channel INC-1",  # a third copy of the card: its buttons keep their numbers, 6 is Cancel
        "6", "y",  # confirmed: the reason form
        "false alarm",
        "",
    ]))
    assert "[5] I'm the lead" in out and "Lead @U0SHELL" in out and "set the lead: @U0SHELL" in out
    assert out.count("[confirm] Resolve INC-1?") == 2 and out.count("(not done)") == 2 and "State Resolved" not in out
    assert "[7] Done" in out and "F-1 done." in out and "finished a follow-up: F-1 add a canary" in out
    assert "[modal] Add to timeline" in out and "added to the timeline: root cause: the <cfg> flag" in out
    assert "[#inc-1-checkout-5xx created]" in out and "[#inc-1-checkout-5xx]" in out
    assert "(file) Postmortem draft: INC-1 Checkout 5xx: saved as " in out
    assert "[confirm] Cancel INC-1?" in out and "[modal] Cancel INC-1" in out
    assert "Cancelled by @U0SHELL: false alarm" in out and "State Cancelled" in out
