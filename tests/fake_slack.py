"""A fake Slack Web API for tests: a real HTTP server on 127.0.0.1 (ephemeral port, daemon thread).

It records every call (HTTP verb, method, parsed params, headers incl. ``Authorization``) and
answers like Slack for the methods dora-bot uses: ``chat.postMessage``, ``chat.update``,
``chat.postEphemeral``, ``views.open``/``update``/``publish``, ``conversations.list`` (paginated)
and ``join``, ``auth.test``, and the file upload of ``files_upload_v2``
(``files.getUploadURLExternal``, the upload URL, ``files.completeUploadExternal``). It also serves
``response_url`` POSTs at ``/response/<id>``.

It enforces Slack's documented Block Kit limits (https://docs.slack.dev/reference/block-kit/blocks,
.../block-elements, .../composition-objects, .../surfaces/modals, chat.postMessage's text limit):
a violation is answered with ``ok: false`` and a Slack-like error (``invalid_blocks``,
``msg_too_long``, ``invalid_arguments``) and is kept in ``violations`` so a test can assert that
none happened. A message with blocks but no ``text`` is accepted (Slack only warns) but counted as
a violation too.

``fail_next(method, times, status=429)`` makes the next calls of a method fail with a 429
(``Retry-After``) or a 5xx, to test retries; ``fail_next("response_url", ...)`` does it to replies.
``set_down(True)`` answers every Web API call 503 (an outage, ``auth.test`` included);
``answer_late(method, seconds)`` does the call and then holds its answer (a client that gave up
first never learns the message was posted).

Messages keep their ``metadata`` (https://docs.slack.dev/messaging/message-metadata: an object
with a string ``event_type`` and an object ``event_payload``; anything else is
``invalid_metadata_format``). ``conversations.history`` (newest first, ``oldest``/``latest``,
``limit`` at most 999, a ``cursor``) and ``conversations.replies`` (the parent then its replies,
oldest first, ``limit`` at most 1000) return it only with ``include_all_metadata=true``, as
Slack does (https://docs.slack.dev/reference/methods/conversations.history,
https://docs.slack.dev/reference/methods/conversations.replies). A finished file upload appears in
its channel's history as a message with ``files``.
"""

from __future__ import annotations

import itertools
import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

MESSAGE_METHODS = {"chat.postMessage", "chat.update", "chat.postEphemeral"}
VIEW_METHODS = {"views.open", "views.update", "views.publish", "views.push"}
JSON_FIELDS = {"blocks", "attachments", "view", "metadata"}

# Slack's limits (characters unless said otherwise).
MAX_MESSAGE_BLOCKS = 50
MAX_VIEW_BLOCKS = 100
MAX_MESSAGE_TEXT = 40000
SECTION_TEXT = 3000
SECTION_FIELDS = 10
SECTION_FIELD_TEXT = 2000
HEADER_TEXT = 150
BUTTON_TEXT = 75
BUTTON_VALUE = 2000
BUTTON_URL = 3000
ID_LEN = 255  # action_id, block_id, callback_id
CONTEXT_ELEMENTS = 10
ACTIONS_ELEMENTS = 25
SELECT_OPTIONS = 100
OPTION_TEXT = 75
OPTION_VALUE = 150
PLACEHOLDER_TEXT = 150
INPUT_LABEL = 2000
INPUT_HINT = 2000
INPUT_MAX_LENGTH = 3000
VIEW_TITLE = 24
# The confirmation dialog object (https://docs.slack.dev/reference/block-kit/composition-objects/confirmation-dialog-object):
# title 100, text 300, confirm and deny 30 characters; style primary or danger.
CONFIRM_TITLE = 100
CONFIRM_TEXT = 300
CONFIRM_BUTTON = 30
# conversations.create (https://docs.slack.dev/reference/methods/conversations.create): names are
# lowercase, without spaces or periods, at most 80 characters; letters, digits, hyphens, underscores.
CHANNEL_NAME_MAX = 80
_CHANNEL_NAME = re.compile(r"^[a-z0-9_-]+$")
PRIVATE_METADATA = 3000
HISTORY_LIMIT = 999  # conversations.history: "Maximum of 999"
REPLIES_LIMIT = 1000  # conversations.replies


# --- Block Kit validation -----------------------------------------------------------------

# In mrkdwn, "<" opens a control sequence (link, mention, date); user text must escape it as &lt;.
_BAD_LT = re.compile(r"<(?!(?:https?://|mailto:|@[UWB][A-Z0-9]|#[CGD][A-Z0-9]|!(?:here|channel|everyone|date\^|subteam\^))[^<>]*>)")


class _Checker:
    def __init__(self) -> None:
        self.errors: list[str] = []
        self.warnings: list[str] = []

    def err(self, message: str, pointer: str) -> None:
        self.errors.append(f"{message} [json-pointer:{pointer}]")

    def warn(self, message: str, pointer: str) -> None:
        self.warnings.append(f"{message} [json-pointer:{pointer}]")

    def text(self, obj: Any, pointer: str, *, limit: int, plain_only: bool = False, required: bool = True) -> None:
        if obj is None:
            if required:
                self.err("missing required field: text", pointer)
            return
        if not isinstance(obj, dict):
            self.err("must be a text object", pointer)
            return
        kind = obj.get("type")
        if kind not in ("plain_text", "mrkdwn"):
            self.err(f"unknown text type {kind!r}", pointer + "/type")
        elif plain_only and kind != "plain_text":
            self.err("must be plain_text", pointer + "/type")
        value = obj.get("text")
        if not isinstance(value, str) or not value:
            self.err("must be more than 0 characters", pointer + "/text")
        elif len(value) > limit:
            self.err(f"must be less than {limit + 1} characters", pointer + "/text")
        elif kind == "mrkdwn" and (m := _BAD_LT.search(value)):
            self.warn(f"unescaped '<' in mrkdwn near {value[m.start():m.start() + 30]!r} (escape user text as &lt; &gt; &amp;)",
                      pointer + "/text")

    def ident(self, value: Any, name: str, pointer: str, *, required: bool = False) -> None:
        if value is None:
            if required:
                self.err(f"missing required field: {name}", pointer)
            return
        if not isinstance(value, str) or not value:
            self.err(f"{name} must be a non-empty string", pointer + "/" + name)
        elif len(value) > ID_LEN:
            self.err(f"{name} must be less than {ID_LEN + 1} characters", pointer + "/" + name)

    def confirm(self, obj: Any, pointer: str) -> None:
        if not isinstance(obj, dict):
            self.err("must be a confirm object", pointer)
            return
        self.text(obj.get("title"), pointer + "/title", limit=CONFIRM_TITLE, plain_only=True)
        self.text(obj.get("text"), pointer + "/text", limit=CONFIRM_TEXT)
        self.text(obj.get("confirm"), pointer + "/confirm", limit=CONFIRM_BUTTON, plain_only=True)
        self.text(obj.get("deny"), pointer + "/deny", limit=CONFIRM_BUTTON, plain_only=True)
        if obj.get("style") not in (None, "primary", "danger"):
            self.err("style must be primary or danger", pointer + "/style")

    def option(self, opt: Any, pointer: str) -> None:
        if not isinstance(opt, dict):
            self.err("must be an option object", pointer)
            return
        self.text(opt.get("text"), pointer + "/text", limit=OPTION_TEXT, plain_only=True)
        value = opt.get("value")
        if not isinstance(value, str) or not value:
            self.err("option value must be a non-empty string", pointer + "/value")
        elif len(value) > OPTION_VALUE:
            self.err(f"must be less than {OPTION_VALUE + 1} characters", pointer + "/value")

    def element(self, el: Any, pointer: str, action_ids: set[str]) -> None:
        if not isinstance(el, dict):
            self.err("must be an element object", pointer)
            return
        kind = el.get("type")
        action_id = el.get("action_id")
        if action_id is not None:
            self.ident(action_id, "action_id", pointer)
            if action_id in action_ids:
                self.err(f"action_id {action_id!r} is not unique in its block", pointer + "/action_id")
            action_ids.add(action_id)
        if kind == "button":
            self.text(el.get("text"), pointer + "/text", limit=BUTTON_TEXT, plain_only=True)
            value = el.get("value")
            if value is not None and (not isinstance(value, str) or len(value) > BUTTON_VALUE):
                self.err(f"must be less than {BUTTON_VALUE + 1} characters", pointer + "/value")
            url = el.get("url")
            if url is not None and (not isinstance(url, str) or len(url) > BUTTON_URL):
                self.err(f"must be less than {BUTTON_URL + 1} characters", pointer + "/url")
            if el.get("style") not in (None, "primary", "danger"):
                self.err("style must be primary or danger", pointer + "/style")
            if el.get("confirm") is not None:
                self.confirm(el["confirm"], pointer + "/confirm")
        elif kind == "static_select":
            options = el.get("options")
            groups = el.get("option_groups")
            if options is None and groups is None:
                self.err("missing required field: options", pointer)
            all_options = []
            if options is not None:
                if not isinstance(options, list) or not options:
                    self.err("options must be a non-empty list", pointer + "/options")
                    options = []
                elif len(options) > SELECT_OPTIONS:
                    self.err(f"must be less than {SELECT_OPTIONS + 1} items", pointer + "/options")
                for i, opt in enumerate(options):
                    self.option(opt, f"{pointer}/options/{i}")
                all_options = [o for o in options if isinstance(o, dict)]
            if el.get("placeholder") is not None:
                self.text(el["placeholder"], pointer + "/placeholder", limit=PLACEHOLDER_TEXT, plain_only=True)
            initial = el.get("initial_option")
            if initial is not None:
                self.option(initial, pointer + "/initial_option")
                if isinstance(initial, dict) and all_options and not any(
                    o.get("value") == initial.get("value") and o.get("text") == initial.get("text") for o in all_options
                ):
                    self.err("initial_option must be one of options", pointer + "/initial_option")
        elif kind == "plain_text_input":
            max_length = el.get("max_length")
            if max_length is not None and (not isinstance(max_length, int) or not 1 <= max_length <= INPUT_MAX_LENGTH):
                self.err(f"max_length must be from 1 to {INPUT_MAX_LENGTH}", pointer + "/max_length")
            if el.get("placeholder") is not None:
                self.text(el["placeholder"], pointer + "/placeholder", limit=PLACEHOLDER_TEXT, plain_only=True)
            initial = el.get("initial_value")
            if initial is not None:
                limit = max_length if isinstance(max_length, int) else INPUT_MAX_LENGTH
                if not isinstance(initial, str) or len(initial) > limit:
                    self.err(f"initial_value must be at most {limit} characters", pointer + "/initial_value")
        elif kind == "image":
            if not el.get("image_url") and not el.get("slack_file"):
                self.err("missing required field: image_url", pointer)
            if not isinstance(el.get("alt_text"), str) or not el.get("alt_text"):
                self.err("missing required field: alt_text", pointer)
        elif kind in ("overflow", "datepicker", "timepicker", "checkboxes", "radio_buttons", "users_select",
                      "conversations_select", "channels_select", "multi_static_select", "external_select"):
            pass  # not used by dora-bot; accepted as is
        else:
            self.err(f"unknown element type {kind!r}", pointer + "/type")

    def blocks(self, blocks: Any, pointer: str, *, max_blocks: int) -> None:
        if not isinstance(blocks, list):
            self.err("blocks must be a list", pointer)
            return
        if len(blocks) > max_blocks:
            self.err(f"must be less than {max_blocks + 1} items", pointer)
        block_ids: set[str] = set()
        for i, block in enumerate(blocks):
            p = f"{pointer}/{i}"
            if not isinstance(block, dict):
                self.err("must be a block object", p)
                continue
            block_id = block.get("block_id")
            if block_id is not None:
                self.ident(block_id, "block_id", p)
                if block_id in block_ids:
                    self.err(f"block_id {block_id!r} is not unique", p + "/block_id")
                block_ids.add(block_id)
            kind = block.get("type")
            action_ids: set[str] = set()
            if kind == "section":
                has_text = block.get("text") is not None
                fields = block.get("fields")
                if not has_text and not fields:
                    self.err("section needs text or fields", p)
                if has_text:
                    self.text(block["text"], p + "/text", limit=SECTION_TEXT)
                if fields is not None:
                    if not isinstance(fields, list) or not fields:
                        self.err("fields must be a non-empty list", p + "/fields")
                    else:
                        if len(fields) > SECTION_FIELDS:
                            self.err(f"must be less than {SECTION_FIELDS + 1} items", p + "/fields")
                        for j, f in enumerate(fields):
                            self.text(f, f"{p}/fields/{j}", limit=SECTION_FIELD_TEXT)
                if block.get("accessory") is not None:
                    self.element(block["accessory"], p + "/accessory", action_ids)
            elif kind == "header":
                self.text(block.get("text"), p + "/text", limit=HEADER_TEXT, plain_only=True)
            elif kind == "context":
                elements = block.get("elements")
                if not isinstance(elements, list) or not elements:
                    self.err("elements must be a non-empty list", p + "/elements")
                    continue
                if len(elements) > CONTEXT_ELEMENTS:
                    self.err(f"must be less than {CONTEXT_ELEMENTS + 1} items", p + "/elements")
                for j, el in enumerate(elements):
                    if isinstance(el, dict) and el.get("type") == "image":
                        self.element(el, f"{p}/elements/{j}", set())
                    else:
                        self.text(el, f"{p}/elements/{j}", limit=SECTION_TEXT)
            elif kind == "actions":
                elements = block.get("elements")
                if not isinstance(elements, list) or not elements:
                    self.err("elements must be a non-empty list", p + "/elements")
                    continue
                if len(elements) > ACTIONS_ELEMENTS:
                    self.err(f"must be less than {ACTIONS_ELEMENTS + 1} items", p + "/elements")
                for j, el in enumerate(elements):
                    self.element(el, f"{p}/elements/{j}", action_ids)
            elif kind == "divider":
                pass
            elif kind == "input":
                self.text(block.get("label"), p + "/label", limit=INPUT_LABEL, plain_only=True)
                if block.get("hint") is not None:
                    self.text(block["hint"], p + "/hint", limit=INPUT_HINT, plain_only=True)
                if block.get("element") is None:
                    self.err("missing required field: element", p)
                else:
                    self.element(block["element"], p + "/element", action_ids)
            elif kind == "image":
                if not block.get("image_url") and not block.get("slack_file"):
                    self.err("missing required field: image_url", p)
                if not block.get("alt_text"):
                    self.err("missing required field: alt_text", p)
                elif len(block["alt_text"]) > 2000:
                    self.err("must be less than 2001 characters", p + "/alt_text")
            elif kind == "rich_text":
                pass
            else:
                self.err(f"unknown block type {kind!r}", p + "/type")


def _check_blocks(blocks: Any, surface: str) -> _Checker:
    checker = _Checker()
    checker.blocks(blocks, "/blocks", max_blocks=MAX_MESSAGE_BLOCKS if surface == "message" else MAX_VIEW_BLOCKS)
    return checker


def check_blocks(blocks: Any, *, surface: str = "message") -> list[str]:
    """Slack-like error strings for ``blocks`` on a surface (``message``, ``modal`` or ``home``)."""
    return _check_blocks(blocks, surface).errors


def text_warnings(text: Any) -> list[str]:
    """A message's top-level ``text`` is mrkdwn too: the same escaping rule."""
    if isinstance(text, str) and (m := _BAD_LT.search(text)):
        return [f"unescaped '<' in text near {text[m.start():m.start() + 30]!r} (escape user text as &lt; &gt; &amp;) [json-pointer:/text]"]
    return []


def block_warnings(blocks: Any, *, surface: str = "message") -> list[str]:
    """What Slack accepts but renders wrongly (unescaped ``<`` in mrkdwn)."""
    if not isinstance(blocks, list):
        return []
    return _check_blocks(blocks, surface).warnings


def check_view(view: Any) -> list[str]:
    """Slack-like error strings for a modal or home view."""
    return _view_checker(view).errors


def _view_checker(view: Any) -> _Checker:
    checker = _Checker()
    if not isinstance(view, dict):
        checker.err("view must be an object", "/view")
        return checker
    kind = view.get("type")
    if kind not in ("modal", "home"):
        checker.err(f"unknown view type {kind!r}", "/view/type")
    if kind == "modal":
        checker.text(view.get("title"), "/view/title", limit=VIEW_TITLE, plain_only=True)
        has_input = any(isinstance(b, dict) and b.get("type") == "input" for b in view.get("blocks") or [])
        if view.get("submit") is not None:
            checker.text(view["submit"], "/view/submit", limit=VIEW_TITLE, plain_only=True)
        elif has_input:
            checker.err("a modal with input blocks needs submit", "/view/submit")
        if view.get("close") is not None:
            checker.text(view["close"], "/view/close", limit=VIEW_TITLE, plain_only=True)
    checker.ident(view.get("callback_id"), "callback_id", "/view")
    metadata = view.get("private_metadata")
    if metadata is not None and (not isinstance(metadata, str) or len(metadata) > PRIVATE_METADATA):
        checker.err(f"must be less than {PRIVATE_METADATA + 1} characters", "/view/private_metadata")
    checker.blocks(view.get("blocks"), "/view/blocks", max_blocks=MAX_VIEW_BLOCKS)
    return checker


def check_message(params: dict) -> tuple[str | None, list[str], list[str]]:
    """(error code or None, Slack error details, soft violations) for a message's params."""
    text = params.get("text")
    blocks = params.get("blocks")
    soft: list[str] = []
    if text is not None and not isinstance(text, str):
        return "invalid_arguments", ["text must be a string"], soft
    if isinstance(text, str) and len(text) > MAX_MESSAGE_TEXT:
        return "msg_too_long", [f"text is {len(text)} characters, at most {MAX_MESSAGE_TEXT}"], soft
    if blocks:
        checker = _check_blocks(blocks, "message")
        if checker.errors:
            return "invalid_blocks", checker.errors, soft
        if not (isinstance(text, str) and text.strip()):
            soft.append("missing text: a message with blocks should also have a non-empty `text` (notifications, screen readers)")
    elif not (isinstance(text, str) and text.strip()) and not params.get("attachments"):
        return "no_text", ["a message needs text or blocks"], soft
    return None, [], soft


def _copy(value: Any) -> Any:
    """A snapshot: what a client saw at that moment, unaffected by later edits."""
    return json.loads(json.dumps(value))


def fill_ids(blocks: Any) -> Any:
    """What Slack stores: every block gets a ``block_id`` and every interactive element an ``action_id``."""
    if not isinstance(blocks, list):
        return blocks
    out = json.loads(json.dumps(blocks))
    for i, block in enumerate(out):
        if not isinstance(block, dict):
            continue
        block.setdefault("block_id", f"b{i}x{abs(hash(json.dumps(block, sort_keys=True))) % 10**5:05d}")
        elements = list(block.get("elements") or []) if block.get("type") == "actions" else []
        elements += [block[k] for k in ("accessory", "element") if isinstance(block.get(k), dict)]
        for j, el in enumerate(elements):
            if isinstance(el, dict) and el.get("type") not in ("mrkdwn", "plain_text", "image"):
                el.setdefault("action_id", f"a{i}x{j}")
    return out


# --- the server ---------------------------------------------------------------------------

@dataclass
class Call:
    """One request the fake received."""

    method: str  # "chat.postMessage", or "response_url" for a response_url POST
    params: dict
    headers: dict[str, str]
    http_method: str = "POST"
    path: str = ""
    status: int = 200
    response: Any = None
    at: float = field(default_factory=time.monotonic)

    @property
    def ok(self) -> bool:
        return self.status == 200 and (not isinstance(self.response, dict) or self.response.get("ok", True) is True)

    @property
    def authorization(self) -> str | None:
        return self.headers.get("authorization")

    def __repr__(self) -> str:
        return f"<Call {self.method} {self.status} {json.dumps(self.params, default=str)[:300]}>"


@dataclass
class Failure:
    status: int
    retry_after: int | None
    error: str | None


class FakeSlack:
    """The fake's state. ``url`` is ``http://127.0.0.1:<port>``; the Web API is under ``/api/``."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)
        self.token = "xoxb-test"
        self.team_id = "T0TEST"
        self.bot_user_id = "U0BOT"
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.url = ""
        self.reset()

    # --- lifecycle -----------------------------------------------------------------------
    def start(self) -> FakeSlack:
        fake = self

        class Handler(_Handler):
            slack = fake

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True, name="fake-slack")
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(timeout=5)
            self._server = None

    @property
    def api_url(self) -> str:
        return self.url + "/api/"

    def reset(self) -> None:
        """Forget every call, message, view and failure (between tests)."""
        with self.lock:
            self.calls: list[Call] = []
            self.violations: list[str] = []
            # mrkdwn with a "<" that is not a link/mention/date: Slack accepts it but renders it as a
            # control sequence (https://docs.slack.dev/messaging/formatting-message-text#escaping).
            self.escaping: list[str] = []
            self.messages: dict[tuple[str, str], dict] = {}  # (channel, ts) -> message
            self.ephemerals: list[dict] = []
            self.views: dict[str, dict] = {}
            self.published: dict[str, dict] = {}  # user -> home view
            self.files: dict[str, dict] = {}  # file id -> {name, length, data, title, channel}
            self.channels: list[dict] = [
                {"id": "C0ALERTS", "name": "alerts", "is_member": True},
                {"id": "C1", "name": "general", "is_member": True},
            ]
            # User groups (usergroups.list / usergroups.users.list): {"id", "handle", "name", "users"}
            self.usergroups: list[dict] = []
            self.page_size: int | None = None  # conversations.list page size (None: the `limit` asked for)
            self.not_in_channel: set[str] = set()  # chat.postMessage answers not_in_channel until joined
            self.token = "xoxb-test"
            self._failures: dict[str, list[Failure]] = {}
            self.down = False
            self._late: dict[str, list[float]] = {}
            self._ts = itertools.count(1)
            self._ids = itertools.count(1)
            self._response_ids = itertools.count(1)
            self._ts_base = int(time.time())

    # --- configuration -------------------------------------------------------------------
    def fail_next(self, method: str, times: int = 1, *, status: int = 429, retry_after: int | None = 1, error: str | None = None) -> None:
        """The next ``times`` calls of ``method`` fail: 429 with Retry-After, or a 5xx."""
        with self.lock:
            self._failures.setdefault(method, []).extend(
                Failure(status=status, retry_after=retry_after if status == 429 else None, error=error) for _ in range(times)
            )

    def set_down(self, down: bool = True) -> None:
        """Slack unreachable (every Web API call answers 503), or back."""
        with self.lock:
            self.down = down

    def answer_late(self, method: str, seconds: float, times: int = 1) -> None:
        """The next ``times`` calls of ``method`` take effect, but are answered ``seconds`` late."""
        with self.lock:
            self._late.setdefault(method, []).extend([seconds] * times)

    def late_delay(self, method: str) -> float:
        with self.lock:
            delays = self._late.get(method)
            return delays.pop(0) if delays else 0.0

    def set_channels(self, channels: list[dict | tuple[str, str]]) -> None:
        with self.lock:
            self.channels = [c if isinstance(c, dict) else {"id": c[0], "name": c[1], "is_member": True} for c in channels]

    def set_usergroups(self, groups: list[dict]) -> None:
        with self.lock:
            self.usergroups = [dict(g) for g in groups]

    def new_response_url(self) -> str:
        with self.lock:
            return f"{self.url}/response/{next(self._response_ids)}"

    # --- queries -------------------------------------------------------------------------
    def calls_of(self, method: str, *, ok: bool | None = True) -> list[Call]:
        with self.lock:
            return [c for c in self.calls if c.method == method and (ok is None or c.ok == ok)]

    def api_calls(self) -> list[Call]:
        with self.lock:
            return [c for c in self.calls if c.method not in ("response_url", "file_upload")]

    def posts(self, channel: str | None = None, *, thread: bool | None = None) -> list[dict]:
        """Params of successful chat.postMessage calls (optionally in ``channel``, in a thread or not)."""
        out = []
        for c in self.calls_of("chat.postMessage"):
            p = c.params
            if channel is not None and c.response.get("channel") != channel:
                continue
            if thread is not None and bool(p.get("thread_ts")) != thread:
                continue
            out.append(dict(p, ts=c.response["ts"], channel=c.response["channel"]))
        return out

    def updates(self, channel: str | None = None) -> list[dict]:
        return [c.params for c in self.calls_of("chat.update") if channel is None or c.params.get("channel") == channel]

    def responses(self) -> list[dict]:
        """Bodies POSTed to response_urls, in order."""
        return [dict(c.params, _path=c.path) for c in self.calls_of("response_url")]

    def top_level(self, channel: str) -> list[dict]:
        """Current state of the channel's top-level messages (after chat.update), oldest first."""
        with self.lock:
            msgs = [_copy(m) for (ch, _), m in self.messages.items() if ch == channel and not m.get("thread_ts")]
        return sorted(msgs, key=lambda m: m["ts"])

    def message(self, channel: str, ts: str) -> dict:
        with self.lock:
            return _copy(self.messages[(channel, ts)])

    def thread(self, channel: str, ts: str) -> list[dict]:
        with self.lock:
            msgs = [_copy(m) for (ch, _), m in self.messages.items() if ch == channel and m.get("thread_ts") == ts]
        return sorted(msgs, key=lambda m: m["ts"])

    def last_view(self) -> dict:
        with self.lock:
            opened = [c for c in self.calls if c.method in ("views.open", "views.update") and c.ok]
            return json.loads(json.dumps(opened[-1].response["view"]))

    def wait_for(self, predicate: Callable[[], Any], timeout: float = 5.0, message: str = "") -> Any:
        """Poll ``predicate`` (re-checked on every call the fake receives) until it is truthy."""
        deadline = time.monotonic() + timeout
        with self.changed:
            while True:
                result = predicate()
                if result:
                    return result
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    calls = "\n  ".join(repr(c) for c in self.calls[-15:])
                    raise AssertionError(f"timed out waiting for {message or predicate}; last calls:\n  {calls}")
                self.changed.wait(min(remaining, 0.05))

    def wait_calls(self, method: str, count: int = 1, timeout: float = 5.0) -> list[Call]:
        self.wait_for(lambda: len(self.calls_of(method)) >= count, timeout, f"{count} x {method}")
        return self.calls_of(method)

    def wait_responses(self, count: int = 1, timeout: float = 5.0) -> list[dict]:
        self.wait_for(lambda: len(self.responses()) >= count, timeout, f"{count} response_url posts")
        return self.responses()

    # --- request handling ----------------------------------------------------------------
    def _next_ts(self) -> str:
        n = next(self._ts)
        return f"{self._ts_base + n // 1_000_000}.{n % 1_000_000:06d}"

    def _record(self, call: Call) -> None:
        with self.changed:
            self.calls.append(call)
            self.changed.notify_all()

    def _violation(self, where: str, details: list[str]) -> None:
        for d in details:
            self.violations.append(f"{where}: {d}")

    def handle_api(self, method: str, params: dict, headers: dict[str, str]) -> tuple[int, dict, dict]:
        """(HTTP status, JSON body, extra headers) for one Web API call."""
        with self.lock:
            if self.down:
                return 503, {"ok": False, "error": "service_unavailable"}, {}
            failures = self._failures.get(method)
            if failures:
                f = failures.pop(0)
                extra = {"Retry-After": str(f.retry_after)} if f.retry_after is not None else {}
                if f.status == 429:
                    return 429, {"ok": False, "error": f.error or "ratelimited"}, extra
                return f.status, {"ok": False, "error": f.error or "fatal_error"}, extra
            auth = headers.get("authorization") or ""
            token = auth[len("Bearer "):] if auth.startswith("Bearer ") else params.get("token")
            if not token:
                return 200, {"ok": False, "error": "not_authed"}, {}
            if token != self.token:
                return 200, {"ok": False, "error": "invalid_auth"}, {}
            handler = getattr(self, "_api_" + method.replace(".", "_"), None)
            if handler is None:
                return 200, {"ok": False, "error": "unknown_method"}, {}
            return 200, handler(params), {}

    def _message_errors(self, method: str, params: dict) -> dict | None:
        self.escaping.extend(f"{method}: {w}" for w in block_warnings(params.get("blocks") or []) + text_warnings(params.get("text")))
        error, details, soft = check_message(params)
        if soft:
            self._violation(method, soft)
        if error:
            self._violation(method, [f"{error}: {d}" for d in details])
            return {"ok": False, "error": error, "errors": details, "response_metadata": {"messages": [f"[ERROR] {d}" for d in details]}}
        return None

    def _api_auth_test(self, params: dict) -> dict:
        return {"ok": True, "url": "https://test.slack.com/", "team": "Test", "user": "dora", "team_id": self.team_id,
                "user_id": self.bot_user_id, "bot_id": "B0BOT"}

    def _api_chat_postMessage(self, params: dict) -> dict:
        channel = params.get("channel")
        if not channel:
            return {"ok": False, "error": "channel_not_found"}
        if channel in self.not_in_channel:
            return {"ok": False, "error": "not_in_channel"}
        if (err := self._message_errors("chat.postMessage", params)) is not None:
            return err
        thread_ts = params.get("thread_ts")
        if thread_ts and (channel, thread_ts) not in self.messages:
            return {"ok": False, "error": "thread_not_found"}
        metadata = params.get("metadata")
        if metadata is not None and not (
            isinstance(metadata, dict) and isinstance(metadata.get("event_type"), str) and metadata["event_type"]
            and isinstance(metadata.get("event_payload"), dict)
        ):
            self._violation("chat.postMessage", [f"invalid metadata {metadata!r}"])
            return {"ok": False, "error": "invalid_metadata_format"}
        ts = self._next_ts()
        message = {"type": "message", "user": self.bot_user_id, "bot_id": "B0BOT", "ts": ts, "text": params.get("text") or "",
                   "blocks": fill_ids(params.get("blocks") or []), "channel": channel}
        if metadata is not None:
            message["metadata"] = _copy(metadata)
        if thread_ts:
            message["thread_ts"] = thread_ts
        self.messages[(channel, ts)] = message
        return {"ok": True, "channel": channel, "ts": ts, "message": {k: v for k, v in message.items() if k != "channel"}}

    def _api_chat_update(self, params: dict) -> dict:
        channel, ts = params.get("channel"), params.get("ts")
        key = (channel, ts)
        if key not in self.messages:
            return {"ok": False, "error": "message_not_found"}
        if params.get("text") is None and params.get("blocks") is None:
            return {"ok": False, "error": "no_text"}
        if (err := self._message_errors("chat.update", params)) is not None:
            return err
        message = self.messages[key]
        if params.get("text") is not None:
            message["text"] = params["text"]
        if params.get("blocks") is not None:
            message["blocks"] = fill_ids(params["blocks"])
        message["edited"] = {"user": self.bot_user_id, "ts": self._next_ts()}
        return {"ok": True, "channel": channel, "ts": ts, "text": message["text"],
                "message": {k: v for k, v in message.items() if k != "channel"}}

    def _api_chat_postEphemeral(self, params: dict) -> dict:
        if not params.get("channel"):
            return {"ok": False, "error": "channel_not_found"}
        if not params.get("user"):
            return {"ok": False, "error": "user_not_in_channel"}
        if (err := self._message_errors("chat.postEphemeral", params)) is not None:
            return err
        self.ephemerals.append(params)
        return {"ok": True, "message_ts": self._next_ts()}

    def _view_errors(self, method: str, view: Any) -> dict | None:
        checker = _view_checker(view)
        self.escaping.extend(f"{method}: {w}" for w in checker.warnings)
        errors = checker.errors
        if errors:
            self._violation(method, errors)
            return {"ok": False, "error": "invalid_arguments", "response_metadata": {"messages": [f"[ERROR] {e}" for e in errors]}}
        return None

    def _store_view(self, view: dict, *, view_id: str | None = None) -> dict:
        view_id = view_id or f"V{next(self._ids):08d}"
        stored = json.loads(json.dumps(view))
        stored["blocks"] = fill_ids(stored.get("blocks") or [])
        stored.update(
            id=view_id, team_id=self.team_id, hash=f"{time.time():.6f}.{next(self._ids)}",
            state={"values": {}}, app_id="A0TEST", bot_id="B0BOT", root_view_id=view_id, previous_view_id=None,
        )
        stored.setdefault("private_metadata", "")
        stored.setdefault("callback_id", "")
        stored.setdefault("external_id", "")
        self.views[view_id] = stored
        return stored

    def _api_views_open(self, params: dict) -> dict:
        if not params.get("trigger_id"):
            return {"ok": False, "error": "invalid_arguments", "response_metadata": {"messages": ["[ERROR] missing trigger_id"]}}
        view = params.get("view")
        if (err := self._view_errors("views.open", view)) is not None:
            return err
        return {"ok": True, "view": self._store_view(view)}

    def _api_views_push(self, params: dict) -> dict:
        return self._api_views_open(params)

    def _api_views_update(self, params: dict) -> dict:
        view_id = params.get("view_id")
        if view_id not in self.views:
            return {"ok": False, "error": "not_found"}
        if params.get("hash") and params["hash"] != self.views[view_id]["hash"]:
            return {"ok": False, "error": "hash_conflict"}
        view = params.get("view")
        if (err := self._view_errors("views.update", view)) is not None:
            return err
        return {"ok": True, "view": self._store_view(view, view_id=view_id)}

    def _api_views_publish(self, params: dict) -> dict:
        user = params.get("user_id")
        if not user:
            return {"ok": False, "error": "invalid_arguments"}
        view = params.get("view")
        if (err := self._view_errors("views.publish", view)) is not None:
            return err
        if isinstance(view, dict) and view.get("type") != "home":
            return {"ok": False, "error": "invalid_arguments"}
        stored = self._store_view(view)
        self.published[user] = stored
        return {"ok": True, "view": stored}

    def _api_conversations_list(self, params: dict) -> dict:
        try:
            limit = int(params.get("limit") or 100)
        except ValueError:
            return {"ok": False, "error": "invalid_limit"}
        size = min(limit, self.page_size or limit)
        cursor = params.get("cursor") or ""
        start = int(cursor.removeprefix("dGVhbTpD")) if cursor else 0
        page = self.channels[start:start + size]
        nxt = f"dGVhbTpD{start + size}" if start + size < len(self.channels) else ""
        return {"ok": True, "channels": [dict(c, is_channel=True, is_archived=False) for c in page],
                "response_metadata": {"next_cursor": nxt}}

    def _api_usergroups_list(self, params: dict) -> dict:
        # https://docs.slack.dev/reference/methods/usergroups.list: users only with include_users
        groups = []
        for g in self.usergroups:
            shown = {"id": g["id"], "team_id": self.team_id, "handle": g["handle"], "name": g["name"], "is_usergroup": True}
            if self._flag(params.get("include_users")):
                shown["users"] = list(g.get("users") or [])
            groups.append(shown)
        return {"ok": True, "usergroups": groups}

    def _api_usergroups_users_list(self, params: dict) -> dict:
        for g in self.usergroups:
            if g["id"] == params.get("usergroup"):
                return {"ok": True, "users": list(g.get("users") or [])}
        return {"ok": False, "error": "no_such_subteam"}

    @staticmethod
    def _flag(value: Any) -> bool:
        return value is True or str(value).lower() in ("true", "1")

    def _shown(self, message: dict, params: dict) -> dict:
        shown = {k: v for k, v in _copy(message).items() if k != "channel"}
        if not self._flag(params.get("include_all_metadata")):
            shown.pop("metadata", None)
        return shown

    def _page(self, messages: list[dict], params: dict, *, limit_max: int) -> dict:
        try:
            limit = int(params.get("limit") or 100)
        except ValueError:
            return {"ok": False, "error": "invalid_limit"}
        if not 1 <= limit <= limit_max:
            return {"ok": False, "error": "invalid_limit"}
        cursor = params.get("cursor") or ""
        start = int(cursor.removeprefix("bmV4dF90czox")) if cursor else 0
        page = messages[start:start + limit]
        more = start + limit < len(messages)
        return {"ok": True, "messages": [self._shown(m, params) for m in page], "has_more": more,
                "response_metadata": {"next_cursor": f"bmV4dF90czox{start + limit}" if more else ""}}

    def _readable(self, channel: Any) -> dict | None:
        if not channel:
            return {"ok": False, "error": "channel_not_found"}
        if channel in self.not_in_channel:
            return {"ok": False, "error": "not_in_channel"}
        return None

    def _api_conversations_history(self, params: dict) -> dict:
        channel = params.get("channel")
        if (err := self._readable(channel)) is not None:
            return err
        oldest = float(params.get("oldest") or 0)
        latest = float(params["latest"]) if params.get("latest") else float("inf")
        top = [m for (ch, _), m in self.messages.items() if ch == channel and not m.get("thread_ts") and oldest < float(m["ts"]) < latest]
        return self._page(sorted(top, key=lambda m: float(m["ts"]), reverse=True), params, limit_max=HISTORY_LIMIT)

    def _api_conversations_replies(self, params: dict) -> dict:
        channel, ts = params.get("channel"), params.get("ts")
        if (err := self._readable(channel)) is not None:
            return err
        if (channel, ts) not in self.messages:
            return {"ok": False, "error": "thread_not_found"}
        thread = [m for (ch, _), m in self.messages.items() if ch == channel and (m["ts"] == ts or m.get("thread_ts") == ts)]
        return self._page(sorted(thread, key=lambda m: float(m["ts"])), params, limit_max=REPLIES_LIMIT)

    def _api_conversations_join(self, params: dict) -> dict:
        channel = params.get("channel")
        if not any(c["id"] == channel for c in self.channels) and channel not in self.not_in_channel:
            return {"ok": False, "error": "channel_not_found"}
        self.not_in_channel.discard(channel)
        return {"ok": True, "channel": {"id": channel}}

    def _api_conversations_create(self, params: dict) -> dict:
        name = params.get("name")
        if not isinstance(name, str) or not name:
            return {"ok": False, "error": "invalid_name_required"}
        if len(name) > CHANNEL_NAME_MAX:
            self._violation("conversations.create", [f"channel name {name!r} is longer than {CHANNEL_NAME_MAX}"])
            return {"ok": False, "error": "invalid_name_maxlength"}
        if not _CHANNEL_NAME.match(name):
            self._violation("conversations.create", [f"channel name {name!r} has characters Slack refuses"])
            return {"ok": False, "error": "invalid_name_specials" if name.lower() == name else "invalid_name"}
        if any(c["name"] == name for c in self.channels):
            return {"ok": False, "error": "name_taken"}
        channel = {"id": f"C{next(self._ids):08d}X", "name": name, "is_member": True, "creator": self.bot_user_id,
                   "created": int(time.time()), "members": [self.bot_user_id]}
        self.channels.append(channel)
        return {"ok": True, "channel": dict(channel, is_channel=True, is_archived=False)}

    def _api_conversations_invite(self, params: dict) -> dict:
        channel = next((c for c in self.channels if c["id"] == params.get("channel")), None)
        if channel is None:
            return {"ok": False, "error": "channel_not_found"}
        users = [u for u in str(params.get("users") or "").split(",") if u]
        if not users:
            return {"ok": False, "error": "no_user"}
        if self.bot_user_id in users:
            return {"ok": False, "error": "cant_invite_self"}
        members = channel.setdefault("members", [])
        new = [u for u in users if u not in members]
        if not new:
            return {"ok": False, "error": "already_in_channel"}
        members.extend(new)
        return {"ok": True, "channel": {"id": channel["id"], "name": channel["name"]}}

    def _api_chat_getPermalink(self, params: dict) -> dict:
        channel, ts = params.get("channel"), params.get("message_ts")
        if (channel, ts) not in self.messages and not any(c["id"] == channel for c in self.channels):
            return {"ok": False, "error": "channel_not_found"}
        return {"ok": True, "channel": channel, "permalink": f"https://dora-tests.slack.com/archives/{channel}/p{str(ts).replace('.', '')}"}

    def channel_named(self, name: str) -> dict | None:
        with self.lock:
            return next((_copy(c) for c in self.channels if c["name"] == name), None)

    def _api_files_getUploadURLExternal(self, params: dict) -> dict:
        try:
            length = int(params.get("length") or 0)
        except ValueError:
            length = 0
        if not params.get("filename") or length <= 0:
            return {"ok": False, "error": "invalid_arguments"}
        file_id = f"F{next(self._ids):08d}"
        self.files[file_id] = {"id": file_id, "name": params["filename"], "length": length, "data": None}
        return {"ok": True, "upload_url": f"{self.url}/upload/{file_id}", "file_id": file_id}

    def _api_files_completeUploadExternal(self, params: dict) -> dict:
        files = params.get("files")
        if isinstance(files, str):
            files = json.loads(files)
        out = []
        for f in files or []:
            stored = self.files.get(f.get("id"))
            if stored is None or stored["data"] is None:
                return {"ok": False, "error": "file_not_found"}
            stored.update(title=f.get("title"), channel=params.get("channel_id"), thread_ts=params.get("thread_ts"),
                          initial_comment=params.get("initial_comment"))
            out.append({"id": stored["id"], "name": stored["name"], "title": stored["title"]})
            if stored["channel"]:  # shared: a message with the file in the channel's history (or the thread)
                thread_ts = stored.get("thread_ts")
                if thread_ts and (stored["channel"], thread_ts) not in self.messages:
                    return {"ok": False, "error": "thread_not_found"}
                ts = self._next_ts()
                self.messages[(stored["channel"], ts)] = {
                    "type": "message", "subtype": "file_share", "user": self.bot_user_id, "ts": ts, "channel": stored["channel"],
                    "text": stored.get("initial_comment") or "",
                    "files": [{"id": stored["id"], "name": stored["name"], "title": stored["title"]}],
                }
                if thread_ts:
                    self.messages[(stored["channel"], ts)]["thread_ts"] = thread_ts
        return {"ok": True, "files": out}

    def handle_upload(self, file_id: str, data: bytes) -> tuple[int, str]:
        with self.lock:
            stored = self.files.get(file_id)
            if stored is None:
                return 404, "not found"
            stored["data"] = data
        return 200, f"OK - {len(data)}"

    def handle_response_url(self, body: Any) -> tuple[int, str, dict]:
        with self.lock:
            failures = self._failures.get("response_url")
            if failures:  # fail_next("response_url", ...): Slack down, or the URL expired (404)
                f = failures.pop(0)
                return f.status, f.error or ("rate_limited" if f.status == 429 else "service_unavailable"), (
                    {"Retry-After": str(f.retry_after)} if f.retry_after is not None else {}
                )
        status, text = self._check_response_body(body)
        return status, text, {}

    def _check_response_body(self, body: Any) -> tuple[int, str]:
        if not isinstance(body, dict):
            self._violation("response_url", ["body is not a JSON object"])
            return 400, "invalid_payload"
        self.escaping.extend(f"response_url: {w}" for w in block_warnings(body.get("blocks") or []) + text_warnings(body.get("text")))
        error, details, soft = check_message(body)
        if soft:
            self._violation("response_url", soft)
        if error:
            self._violation("response_url", [f"{error}: {d}" for d in details])
            return 400, error
        return 200, "ok"


class _Handler(BaseHTTPRequestHandler):
    slack: FakeSlack
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):
        pass

    def _headers(self) -> dict[str, str]:
        return {k.lower(): v for k, v in self.headers.items()}

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send(self, status: int, body: bytes, content_type: str, extra: dict | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    @staticmethod
    def _params(raw: bytes, content_type: str, query: str) -> dict:
        params: dict[str, Any] = {k: v[-1] for k, v in parse_qs(query, keep_blank_values=True).items()}
        ctype = content_type.split(";")[0].strip().lower()
        if ctype == "application/json" and raw:
            params.update(json.loads(raw))
        elif raw:
            params.update({k: v[-1] for k, v in parse_qs(raw.decode("utf-8"), keep_blank_values=True).items()})
            for key in JSON_FIELDS & params.keys():
                if isinstance(params[key], str) and params[key][:1] in ("[", "{"):
                    params[key] = json.loads(params[key])
        return params

    def _handle(self) -> None:
        slack = self.slack
        url = urlparse(self.path)
        headers = self._headers()
        raw = self._body()
        if url.path.startswith("/api/"):
            method = url.path[len("/api/"):]
            try:
                params = self._params(raw, headers.get("content-type", ""), url.query)
            except (ValueError, UnicodeDecodeError):
                self._send(200, b'{"ok": false, "error": "invalid_json"}', "application/json")
                return
            status, body, extra = slack.handle_api(method, params, headers)
            slack._record(Call(method=method, params=params, headers=headers, http_method=self.command, path=url.path, status=status,
                               response=body))
            delay = slack.late_delay(method)
            if delay:
                time.sleep(delay)  # done, but the answer comes after the client may have given up
            try:
                self._send(status, json.dumps(body).encode(), "application/json; charset=utf-8", extra)
            except (BrokenPipeError, ConnectionResetError):
                pass
        elif url.path.startswith("/response/") and self.command == "POST":
            try:
                body = json.loads(raw or b"null")
            except ValueError:
                body = None
            status, text, extra = slack.handle_response_url(body)
            slack._record(Call(method="response_url", params=body if isinstance(body, dict) else {"_raw": raw.decode("utf-8", "replace")},
                               headers=headers, http_method="POST", path=url.path, status=status, response=text))
            self._send(status, text.encode(), "text/plain", extra)
        elif url.path.startswith("/upload/") and self.command == "POST":
            status, text = slack.handle_upload(url.path[len("/upload/"):], raw)
            slack._record(Call(method="file_upload", params={"bytes": len(raw)}, headers=headers, http_method="POST", path=url.path,
                               status=status, response=text))
            self._send(status, text.encode(), "text/plain")
        else:
            self._send(404, b"not found", "text/plain")

    do_GET = _handle
    do_POST = _handle


# --- pytest fixtures (exposed to every test by tests/conftest.py) ---------------------------

try:
    import pytest
except ImportError:  # pragma: no cover - the fake also works without pytest
    pytest = None

if pytest is not None:

    @pytest.fixture(scope="session")
    def fake_slack_server():
        """One fake Slack server for the whole session (cheap to keep, reset per test)."""
        server = FakeSlack().start()
        yield server
        server.stop()

    @pytest.fixture
    def fake_slack(fake_slack_server):
        """The fake Slack Web API, empty: no calls, no messages, no failures, default channels."""
        fake_slack_server.reset()
        yield fake_slack_server
        fake_slack_server.reset()
