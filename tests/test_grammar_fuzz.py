"""Property-based tests of the slash-command grammar (issue 11): whatever a user types - or Slack
escapes for them - parsing gives a command or a ``UsageError`` with a message, never another exception."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.core import grammar as g
from bot.core.errors import DoraError

WORDS = st.sampled_from([
    "list", "rollback", "help", "declare", "ack", "resolve", "update", "cause", "mitigate", "cancel", "severity", "snooze",
    "digest", "add", "remove", "send", "explain", "alerts", "sev1", "sev9", "checkout", "Checkout API", "node:9100", "D-1", "INC-1",
    "#2", "D-99999999999999999999", "inc-٣", "1.0", "limit=²", "limit=50", "limit=0", "days=²", "days=٣", "days=3660", "days=3661",
    "days=99999999999999999999", "env=prod", "env=<!channel>", "url=https://ci.example/run&gt;*X*&lt;!channel&gt;", "url=<https://x.example|x>",
    "commit=9fceb02", "committed=0001-01-01T00:00:00+01:00", "committed=9999999w", "started=9999-12-31T23:59:59-01:00",
    "started=15m", "started=3h ago", "cause=D-1", "fixes=INC-1", "to=D-1", "day=mon", "time=25:99", "time=09:00", "tz=Mars/Olympus",
    "tz=Europe/Berlin", "service=x", "<#C123|general>", "<@U123>", "<!channel>", "&lt;!here&gt;", "&amp;", "x" * 3000, "\x00", "\ud800",
    "=", "==", "a=", "=b", "lt", "df", "cfr", "ttr", "rework",
])
TEXT = st.one_of(st.lists(st.one_of(WORDS, st.text(max_size=12)), max_size=8).map(" ".join), st.text(max_size=200))
PARSERS = (g.parse_deploy_command, g.parse_incident_command, g.parse_dora_command)


@settings(max_examples=600, deadline=None, database=None, derandomize=True)
@given(which=st.sampled_from(PARSERS), text=TEXT)
def test_any_text_parses_or_is_a_usage_error_with_a_message(which, text):
    try:
        which(text)
    except DoraError as exc:
        assert exc.message.strip()
        if isinstance(exc, g.UsageError):
            assert exc.usage is None or exc.usage.strip()
