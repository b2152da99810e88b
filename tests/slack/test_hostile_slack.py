"""Hostile input to ``/slack/events`` over real HTTP (issue 11): the one body-size gate, junk bodies,
and numbers and times in commands - a 4xx or an ephemeral message, never a 500 or a stored row."""

from __future__ import annotations

import socket
import time

import pytest

from tests.slack.conftest import ALERTS
from tests.slack.harness import ephemeral_answer, message_text, sqlite_only


def first_answer(port: int, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(data)
        return s.recv(65536)


@sqlite_only
def test_a_declared_150_mb_body_is_413_before_any_of_it_is_read(slack_app):
    before = slack_app.counts()
    head = (b"POST /slack/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
            b"X-Slack-Request-Timestamp: 1\r\nX-Slack-Signature: v0=00\r\nContent-Length: 150000000\r\n\r\n")
    answer = first_answer(slack_app.server.port, head)  # not one byte of the body was sent
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert slack_app.counts() == before


@sqlite_only
def test_a_chunked_body_over_1_mb_is_cut_off_with_413(slack_app):
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", slack_app.server.port, timeout=30)
    conn.request("POST", "/slack/events", body=iter([b"command=%2Fdeploy&text=", *(b"x" * 65536 for _ in range(40))]),
                 encode_chunked=True, headers={"Content-Type": "application/x-www-form-urlencoded", "Transfer-Encoding": "chunked",
                                               "X-Slack-Request-Timestamp": str(int(time.time())), "X-Slack-Signature": "v0=00"})
    resp = conn.getresponse()
    resp.read()
    conn.close()
    assert resp.status == 413


JUNK = {
    "json that is not json": (b"{not json", "application/json"),
    "a form payload that is not json": (b"payload=%7Bnot", "application/x-www-form-urlencoded"),
    "not UTF-8": (b"\xff\xfe\xfd", "application/x-www-form-urlencoded"),
    "empty": (b"", "application/json"),
    "a JSON array": (b"[1, 2, 3]", "application/json"),
}


@sqlite_only
@pytest.mark.parametrize("case", JUNK)
def test_unsigned_junk_is_401(slack_app, case):
    before = slack_app.counts()
    body, ctype = JUNK[case]
    assert slack_app.slack.post(body, content_type=ctype, sign=False).status == 401
    assert slack_app.slack.post(body, content_type=ctype, signature="v0=" + "0" * 64).status == 401
    assert slack_app.slack.post(body, content_type=ctype, signature="v0=\u00e9").status == 401
    assert slack_app.counts() == before


@sqlite_only
@pytest.mark.parametrize("case", JUNK)
def test_signed_junk_is_a_client_error(slack_app, case):
    before = slack_app.counts()
    body, ctype = JUNK[case]
    r = slack_app.slack.post(body, content_type=ctype)
    assert 400 <= r.status < 500 or (r.status == 200 and case in ("empty", "a JSON array")), r
    assert slack_app.counts() == before


@sqlite_only
@pytest.mark.parametrize("command,text,usage", [
    ("/deploy", "list limit=²", "limit"),
    ("/deploy", "list limit=99999999999999999999999", "limit"),
    ("/dora", "days=²", "days"),
    ("/dora", "days=٣", "days"),
    ("/dora", "explain lt days=²", "days"),
    ("/dora", "digest remove ²", "digest"),
    ("/dora", "digest send 99999999999999999999999", "digest"),
])
def test_numbers_that_are_not_plain_digits_in_range_get_an_ephemeral_message(slack_app, command, text, usage):
    before = slack_app.counts()
    answer = message_text(ephemeral_answer(slack_app.slack.command(command, text)))
    assert usage in answer, answer
    assert slack_app.counts() == before


@pytest.mark.parametrize("when", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "9999999w", "0999-01-01"])
def test_times_outside_the_range_in_commands_get_an_ephemeral_message(slack_app, when):
    before = slack_app.counts()
    answer = message_text(ephemeral_answer(
        slack_app.slack.command("/incident", f"declare sev2 checkout Down started={when}", channel=ALERTS)
    ))
    assert "started" in answer or when in answer, answer
    answer = message_text(ephemeral_answer(slack_app.slack.command("/deploy", f"checkout 1.0 commit=abcdef1 committed={when}")))
    assert "committed" in answer or when in answer, answer
    assert slack_app.counts() == before


@sqlite_only
def test_references_beyond_any_stored_number_are_answered_not_crashed(slack_app):
    before = slack_app.counts()
    for text in ("update INC-99999999999999999999999 hello", "resolve 99999999999999999999999"):
        answer = message_text(ephemeral_answer(slack_app.slack.command("/incident", text)))
        assert "INC" in answer or "incident" in answer.lower(), answer
    assert slack_app.counts() == before


@sqlite_only
def test_slacks_unsigned_ssl_check_is_still_answered_and_runs_nothing(slack_app):
    before = slack_app.counts()
    r = slack_app.slack.post(b"ssl_check=1&token=x", sign=False)
    assert r.status == 200, r
    assert slack_app.counts() == before and slack_app.fake.calls == []
