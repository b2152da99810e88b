"""The fake Slack Web API itself: it answers like Slack and enforces Slack's Block Kit limits.

These tests use the real ``slack_sdk`` clients, so the fake is checked against what the bot sends.
"""

from __future__ import annotations

import json
import time
import urllib.request

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.webhook import WebhookClient

from bot.config import Settings
from bot.slack.client import make_web_client
from tests.fake_slack import check_blocks, check_view


def client(fake, token="xoxb-test", **kw) -> WebClient:
    return WebClient(token=token, base_url=fake.api_url, **kw)


def section(text="hi"):
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def button(text="Go", action_id="go", value="1"):
    return {"type": "button", "text": {"type": "plain_text", "text": text}, "action_id": action_id, "value": value}


def select(options, action_id="pick"):
    return {"type": "static_select", "action_id": action_id, "options": options}


def option(text, value):
    return {"text": {"type": "plain_text", "text": text}, "value": value}


def modal(title="Title", blocks=None, **kw):
    return {"type": "modal", "title": {"type": "plain_text", "text": title}, "blocks": blocks or [section()], **kw}


def test_post_update_and_thread(fake_slack):
    c = client(fake_slack)
    first = c.chat_postMessage(channel="C1", text="hello", blocks=[section("hello")])
    second = c.chat_postMessage(channel="C1", text="again")
    assert first["ok"] and first["channel"] == "C1" and first["message"]["text"] == "hello"
    assert float(second["ts"]) > float(first["ts"]), "ts are unique and increasing"
    c.chat_update(channel="C1", ts=first["ts"], text="edited", blocks=[section("edited")])
    assert fake_slack.message("C1", first["ts"])["text"] == "edited"
    reply = c.chat_postMessage(channel="C1", thread_ts=first["ts"], text="in thread")
    assert [m["ts"] for m in fake_slack.thread("C1", first["ts"])] == [reply["ts"]]
    assert [m["text"] for m in fake_slack.top_level("C1")] == ["edited", "again"]
    with pytest.raises(SlackApiError) as err:
        c.chat_update(channel="C1", ts="1.000000", text="x")
    assert err.value.response["error"] == "message_not_found"
    with pytest.raises(SlackApiError) as err:
        c.chat_postMessage(channel="C1", thread_ts="9.9", text="x")
    assert err.value.response["error"] == "thread_not_found"
    assert fake_slack.violations == []


def test_calls_are_recorded_with_params_and_authorization(fake_slack):
    c = client(fake_slack)
    c.chat_postMessage(channel="C1", text="json body", blocks=[section()])  # sent as JSON
    c.conversations_join(channel="C1")  # sent form-encoded
    c.api_call("chat.postMessage", params={"channel": "C1", "text": "form", "blocks": json.dumps([section("form")])})
    post, join, form = fake_slack.calls
    assert post.method == "chat.postMessage" and post.params["blocks"] == [section()]
    assert post.headers["content-type"].startswith("application/json")
    assert post.authorization == "Bearer xoxb-test"
    assert join.params == {"channel": "C1"} and join.headers["content-type"] == "application/x-www-form-urlencoded"
    assert form.params["blocks"] == [section("form")], "a form-encoded blocks field is parsed"


def test_bad_or_missing_token(fake_slack):
    with pytest.raises(SlackApiError) as err:
        client(fake_slack, token="xoxb-wrong").auth_test()
    assert err.value.response["error"] == "invalid_auth"
    with pytest.raises(SlackApiError) as err:
        WebClient(base_url=fake_slack.api_url).auth_test()
    assert err.value.response["error"] == "not_authed"
    assert client(fake_slack).auth_test()["user_id"] == "U0BOT"


def test_ephemeral_and_views(fake_slack):
    c = client(fake_slack)
    assert c.chat_postEphemeral(channel="C1", user="U1", text="psst")["ok"]
    opened = c.views_open(trigger_id="1.2.3", view=modal(callback_id="cb"))["view"]
    assert opened["id"] and opened["hash"] and opened["state"] == {"values": {}}
    updated = c.views_update(view_id=opened["id"], hash=opened["hash"], view=modal("Other"))["view"]
    assert updated["id"] == opened["id"] and updated["hash"] != opened["hash"]
    with pytest.raises(SlackApiError) as err:
        c.views_update(view_id=opened["id"], hash=opened["hash"], view=modal())
    assert err.value.response["error"] == "hash_conflict"
    with pytest.raises(SlackApiError):
        c.views_open(trigger_id="", view=modal())
    home = c.views_publish(user_id="U1", view={"type": "home", "blocks": [section()]})
    assert home["ok"] and fake_slack.published["U1"]["type"] == "home"
    assert fake_slack.violations == []


def test_conversations_list_paginates(fake_slack):
    fake_slack.set_channels([(f"C{i}", f"chan-{i}") for i in range(5)])
    fake_slack.page_size = 2
    c = client(fake_slack)
    names, cursor, pages = [], None, 0
    while True:
        resp = c.conversations_list(limit=200, cursor=cursor)
        pages += 1
        names += [ch["name"] for ch in resp["channels"]]
        cursor = resp["response_metadata"]["next_cursor"]
        if not cursor:
            break
    assert names == [f"chan-{i}" for i in range(5)] and pages == 3
    assert c.conversations_join(channel="C3")["channel"]["id"] == "C3"


def test_not_in_channel_until_joined(fake_slack):
    fake_slack.not_in_channel.add("C1")
    c = client(fake_slack)
    with pytest.raises(SlackApiError) as err:
        c.chat_postMessage(channel="C1", text="x")
    assert err.value.response["error"] == "not_in_channel"
    c.conversations_join(channel="C1")
    assert c.chat_postMessage(channel="C1", text="x")["ok"]


def test_response_urls_are_recorded(fake_slack):
    url = fake_slack.new_response_url()
    resp = WebhookClient(url).send(text="done", response_type="ephemeral", blocks=[section("done")])
    assert resp.status_code == 200 and resp.body == "ok"
    (reply,) = fake_slack.responses()
    assert reply["text"] == "done" and reply["response_type"] == "ephemeral" and reply["_path"] == url[len(fake_slack.url):]
    bad = WebhookClient(url).send(text="x", blocks=[section("x" * 3001)])
    assert bad.status_code == 400 and bad.body == "invalid_blocks"
    assert fake_slack.violations


def test_429_then_success_is_retried_by_the_bot_client(fake_slack):
    fake_slack.fail_next("chat.postMessage", 1, status=429, retry_after=1)
    c = make_web_client(Settings(slack_bot_token="xoxb-test", slack_api_url=fake_slack.api_url))
    started = time.monotonic()
    assert c.chat_postMessage(channel="C1", text="x")["ok"]
    assert time.monotonic() - started >= 1
    assert [x.status for x in fake_slack.calls_of("chat.postMessage", ok=None)] == [429, 200]


def test_503_and_retry_after_header(fake_slack):
    fake_slack.fail_next("auth.test", 1, status=503)
    fake_slack.fail_next("auth.test", 1, status=429, retry_after=7)
    c = client(fake_slack)  # no retry handlers: see the raw answers
    with pytest.raises(SlackApiError) as err:
        c.auth_test()
    assert err.value.response.status_code == 503
    with pytest.raises(SlackApiError) as err:
        c.auth_test()
    assert err.value.response.status_code == 429 and err.value.response.headers["Retry-After"] == "7"
    assert c.auth_test()["ok"]


def test_wait_for_sees_calls_from_other_threads(fake_slack):
    import threading

    threading.Timer(0.2, lambda: client(fake_slack).chat_postMessage(channel="C1", text="late")).start()
    fake_slack.wait_calls("chat.postMessage", 1, timeout=5)
    with pytest.raises(AssertionError):
        fake_slack.wait_calls("chat.postMessage", 2, timeout=0.2)


def test_unknown_paths_and_methods(fake_slack):
    with pytest.raises(SlackApiError) as err:
        client(fake_slack).api_call("no.such")
    assert err.value.response["error"] == "unknown_method"
    with pytest.raises(urllib.error.HTTPError):
        urllib.request.urlopen(fake_slack.url + "/elsewhere")


def test_reset_forgets_everything(fake_slack):
    client(fake_slack).chat_postMessage(channel="C1", text="x")
    fake_slack.fail_next("auth.test", 3)
    fake_slack.reset()
    assert fake_slack.calls == [] and fake_slack.messages == {} and fake_slack.violations == []
    assert client(fake_slack).auth_test()["ok"]


# --- Block Kit limits ---------------------------------------------------------------------

LIMIT_CASES = {
    "51 blocks": [section()] * 51,
    "section text 3001": [section("x" * 3001)],
    "empty section text": [section("")],
    "11 fields": [{"type": "section", "fields": [{"type": "mrkdwn", "text": "f"}] * 11}],
    "field 2001": [{"type": "section", "fields": [{"type": "mrkdwn", "text": "f" * 2001}]}],
    "header 151": [{"type": "header", "text": {"type": "plain_text", "text": "h" * 151}}],
    "mrkdwn header": [{"type": "header", "text": {"type": "mrkdwn", "text": "h"}}],
    "button text 76": [{"type": "actions", "elements": [button("b" * 76)]}],
    "button value 2001": [{"type": "actions", "elements": [button(value="v" * 2001)]}],
    "action_id 256": [{"type": "actions", "elements": [button(action_id="a" * 256)]}],
    "duplicate action_id": [{"type": "actions", "elements": [button(), button()]}],
    "block_id 256": [dict(section(), block_id="b" * 256)],
    "duplicate block_id": [dict(section(), block_id="b"), dict(section(), block_id="b")],
    "11 context elements": [{"type": "context", "elements": [{"type": "mrkdwn", "text": "c"}] * 11}],
    "26 actions elements": [{"type": "actions", "elements": [button(action_id=f"a{i}") for i in range(26)]}],
    "101 options": [{"type": "actions", "elements": [select([option(f"o{i}", str(i)) for i in range(101)])]}],
    "option text 76": [{"type": "actions", "elements": [select([option("o" * 76, "1")])]}],
    "option value 151": [{"type": "actions", "elements": [select([option("o", "v" * 151)])]}],
    "unknown block": [{"type": "table"}],
}


@pytest.mark.parametrize("case", sorted(LIMIT_CASES))
def test_block_kit_limits_are_enforced(fake_slack, case):
    with pytest.raises(SlackApiError) as err:
        client(fake_slack).chat_postMessage(channel="C1", text="t", blocks=LIMIT_CASES[case])
    assert err.value.response["error"] == "invalid_blocks"
    assert "json-pointer" in err.value.response["errors"][0]
    assert fake_slack.violations and fake_slack.posts() == []


def test_limits_at_the_edge_are_accepted():
    blocks = [section("x" * 3000)] * 49 + [{"type": "actions", "elements": [button("b" * 75, "a" * 255, "v" * 2000)]}]
    assert check_blocks(blocks) == []
    assert check_blocks([section()] * 100, surface="modal") == []
    assert check_blocks([section()] * 101, surface="home")
    assert check_blocks([{"type": "header", "text": {"type": "plain_text", "text": "h" * 150}}]) == []


@pytest.mark.filterwarnings("ignore:The top-level `text` argument is missing:UserWarning")
def test_message_text_limits(fake_slack):
    c = client(fake_slack)
    with pytest.raises(SlackApiError) as err:
        c.chat_postMessage(channel="C1", text="x" * 40001)
    assert err.value.response["error"] == "msg_too_long"
    with pytest.raises(SlackApiError) as err:
        c.chat_postMessage(channel="C1", text="")
    assert err.value.response["error"] == "no_text"
    fake_slack.violations.clear()
    assert c.chat_postMessage(channel="C1", blocks=[section()])["ok"], "Slack accepts it, with a warning"
    assert any("missing text" in v for v in fake_slack.violations)


@pytest.mark.parametrize(
    "view, where",
    [
        (modal("t" * 25), "/view/title"),
        (modal(submit={"type": "plain_text", "text": "s" * 25}), "/view/submit"),
        (modal(close={"type": "plain_text", "text": "c" * 25}), "/view/close"),
        (modal(blocks=[section()] * 101), "/view/blocks"),
        (modal(blocks=[{"type": "input", "label": {"type": "plain_text", "text": "L"},
                        "element": {"type": "plain_text_input", "action_id": "v"}}]), "/view/submit"),
        (modal(private_metadata="m" * 3001), "/view/private_metadata"),
        (modal(blocks=[{"type": "input", "label": {"type": "plain_text", "text": "L"},
                        "element": {"type": "plain_text_input", "action_id": "v", "max_length": 3001}}],
               submit={"type": "plain_text", "text": "OK"}), "max_length"),
        (modal(blocks=[{"type": "actions", "elements": [dict(select([option("a", "1")]), initial_option=option("b", "2"))]}]),
         "initial_option"),
    ],
)
def test_view_limits(fake_slack, view, where):
    assert any(where in e for e in check_view(view)), check_view(view)
    with pytest.raises(SlackApiError) as err:
        client(fake_slack).views_open(trigger_id="1.2", view=view)
    assert err.value.response["error"] == "invalid_arguments"


def test_ids_are_filled_in_like_slack_does(fake_slack):
    resp = client(fake_slack).chat_postMessage(channel="C1", text="t", blocks=[
        section(), {"type": "actions", "elements": [{"type": "button", "text": {"type": "plain_text", "text": "B"}}]},
    ])
    blocks = fake_slack.message("C1", resp["ts"])["blocks"]
    assert all(b.get("block_id") for b in blocks)
    assert blocks[1]["elements"][0]["action_id"]


def test_unescaped_angle_brackets_in_mrkdwn_are_recorded(fake_slack):
    c = client(fake_slack)
    c.chat_postMessage(channel="C1", text="ok <@U1> <#C1|general> <https://x.example|x> <!here> <!date^1^{date}|d> a &lt;b&gt;",
                       blocks=[section("<@U1> <https://x.example> <!subteam^S1> <mailto:a@b.example|mail> 1 &lt; 2 &amp; 3")])
    assert fake_slack.escaping == []
    c.chat_postMessage(channel="C1", text="p99 <200ms", blocks=[section("usage: `/deploy <service>`")])
    assert len(fake_slack.escaping) == 2
    assert any("/text" in w for w in fake_slack.escaping) and any("/blocks/0/text/text" in w for w in fake_slack.escaping)
    assert fake_slack.violations == [], "accepted by Slack: not a Block Kit violation"
