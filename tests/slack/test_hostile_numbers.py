"""Numbers too big for a row id or a date, typed into Slack commands over signed HTTP: each gets an
ephemeral answer that names what was wrong (not "Something went wrong"), nothing is stored, and
nothing is logged as an error (the autouse ``_no_unexpected_errors`` check)."""

from __future__ import annotations

import pytest

from tests.slack.conftest import ALERTS
from tests.slack.harness import ephemeral_answer, message_text

HUGE = "99999999999999999999"  # more than a 64-bit row id


@pytest.mark.parametrize(("command", "text", "says"), [
    ("/incident", f"ack INC-{HUGE}", f"`INC-{HUGE}`"),
    ("/incident", f"show INC-{HUGE}", f"`INC-{HUGE}`"),
    ("/incident", f"mitigate INC-{HUGE}", f"`INC-{HUGE}`"),
    ("/incident", f"severity INC-{HUGE} sev1", f"`INC-{HUGE}`"),
    ("/incident", f"note INC-{HUGE} hello", f"`INC-{HUGE}`"),
    ("/incident", f"followup INC-{HUGE} fix it", f"`INC-{HUGE}`"),
    ("/incident", f"channel INC-{HUGE}", f"`INC-{HUGE}`"),
    ("/incident", f"postmortem INC-{HUGE}", f"`INC-{HUGE}`"),
    ("/incident", f"cause INC-1 D-{HUGE}", f"D-{HUGE}"),
    ("/incident", f"declare sev2 checkout Slow cause=D-{HUGE}", f"D-{HUGE}"),
    ("/deploy", f"fail D-{HUGE}", f"`D-{HUGE}`"),
    ("/deploy", f"checkout 2.0 fixes=INC-{HUGE}", f"INC-{HUGE}"),
    ("/dora", f"digest remove {HUGE}", f"`{HUGE}`"),
    ("/dora", f"watch remove {HUGE}", f"`{HUGE}`"),
    ("/incident", "declare sev2 checkout Slow started=99999999999h", "99999999999h"),
    ("/incident", "declare sev2 checkout Slow started=9999-12-31T23:59-12:00", "9999-12-31T23:59-12:00"),
    ("/deploy", "freeze checkout until=99999999999h", "until=99999999999h"),
    ("/deploy", "freeze checkout until=9999-12-31T23:59-12:00", "until=9999-12-31T23:59-12:00"),
])
def test_a_number_too_big_is_named_and_nothing_is_stored(slack_app, command, text, says):
    app = slack_app
    app.slack.command("/deploy", "checkout 1.0", channel="C1")
    app.slack.command("/incident", "declare sev2 checkout Checkout 5xx", channel=ALERTS)
    before = app.counts()
    answer = ephemeral_answer(app.slack.command(command, text, channel="C1"))
    shown = message_text(answer)
    assert "went wrong" not in shown, shown
    assert says in shown, shown
    assert app.counts() == before
