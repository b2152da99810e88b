"""At DEBUG, everything a slash command logs (Bolt, slack_sdk, ours) leaves out the command's
``response_url``: it is a capability to post into the conversation for 30 minutes."""

from __future__ import annotations

import io
import logging

import pytest

from bot.logs import configure, redact
from tests.slack.harness import ephemeral_answer, sqlite_only


@pytest.fixture
def debug_log():
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    buf = io.StringIO()
    handler = configure(level="DEBUG", fmt="text", secrets=(), stream=buf)
    try:
        yield buf
    finally:
        root.removeHandler(handler)
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])


@sqlite_only
def test_debug_logs_of_a_command_never_hold_its_response_url(slack_app, debug_log):
    interaction = slack_app.slack.command("/deploy", "checkout 1.0")  # confirmed through the response_url
    ephemeral_answer(interaction)
    slack_app.slack.settle()
    text = debug_log.getvalue()
    path = interaction.response_url.split("/", 3)[3]
    assert "[redacted]" in text and text.count("\n") > 3, text[:2000]
    assert path not in text and path.replace("/", "%2F") not in text, [line for line in text.splitlines() if path in line][:3]


@pytest.mark.parametrize("line", [
    "Sending a request - url: https://hooks.slack.com/commands/T0/1234/AbCdEf, body: {}",
    '{"response_url": "https:\\/\\/hooks.slack.com\\/actions\\/T0\\/1\\/sEcReT"}',
    "body: token=sEcReT&team_id=T1&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FsEcReT&x=1",
    "{'response_url': 'https://hooks.slack-gov.com/actions/sEcReT', 'token': 'sEcReT'}",
])
def test_response_urls_and_verification_tokens_are_redacted_wherever_they_appear(line):
    out = redact(line)
    assert "sEcReT" not in out and "AbCdEf" not in out and "[redacted]" in out, out
