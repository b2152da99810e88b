"""Driving the real dora-bot Slack endpoint over HTTP, the way Slack does.

``SlackApp`` serves ``create_asgi_app(rt, create_app(rt))`` on a real uvicorn server (background
thread, 127.0.0.1, ephemeral port) with the Web API pointed at the fake Slack. ``SlackDriver``
builds Slack's requests (slash commands, ``block_actions``, ``view_submission``, events), signs
them with the v0 scheme (``v0=`` + HMAC-SHA256 of ``v0:{timestamp}:{raw body}``) and POSTs them to
``/slack/events``; buttons and modal inputs are taken from what the fake recorded, so a test
presses the real ``action_id``/``value`` of the last card.

Bolt acks first and runs the listener on its executor: the app is built with a counting executor
so ``settle()`` can wait until every listener has finished (and the fake's ``wait_for`` polls
for a given call).
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import itertools
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import pytest
from sqlmodel import select

from bot.store.db import session_scope
from tests.fake_slack import FakeSlack, block_warnings, check_message, text_warnings
from tests.live import Clock, LiveServer  # noqa: F401 (re-exported for the Slack tests)

SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5-dora-tests"

# For tests where the database makes no difference (parsing errors, help, signatures, retries):
# SQLite only, to keep the PostgreSQL run short.
sqlite_only = pytest.mark.parametrize("engine", ["sqlite"], indirect=True)
TEAM_ID = "T0TEST"
APP_ID = "A0TEST"


class TrackingExecutor(ThreadPoolExecutor):
    """A thread pool that knows when all its work is done (Bolt's listener executor)."""

    def __init__(self, max_workers: int = 16):
        super().__init__(max_workers=max_workers, thread_name_prefix="bolt-listener")
        self._pending = 0
        self._idle = threading.Condition()
        self.errors: list[BaseException] = []

    def submit(self, fn, /, *args, **kwargs):
        with self._idle:
            self._pending += 1

        def run():
            try:
                return fn(*args, **kwargs)
            except BaseException as exc:  # Bolt handles listener errors itself; this is a safety net
                self.errors.append(exc)
                raise
            finally:
                with self._idle:
                    self._pending -= 1
                    self._idle.notify_all()

        return super().submit(run)

    def wait_idle(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        with self._idle:
            while self._pending:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"{self._pending} Bolt listener(s) still running after {timeout}s")
                self._idle.wait(remaining)


class SwitchApp:
    """An ASGI app that forwards to whichever app the current test installed (one server per session)."""

    def __init__(self):
        self.target = None

    async def __call__(self, scope, receive, send):
        target = self.target
        if target is None:
            if scope["type"] != "http":
                return
            await send({"type": "http.response.start", "status": 503, "headers": [(b"content-type", b"text/plain")]})
            await send({"type": "http.response.body", "body": b"no app installed"})
            return
        await target(scope, receive, send)


@dataclass
class HttpResponse:
    status: int
    headers: dict[str, str]
    body: bytes
    elapsed: float = 0.0

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None

    def __repr__(self) -> str:
        return f"<HttpResponse {self.status} {self.body[:400]!r}>"


@dataclass
class Interaction:
    """One request sent to the app: its HTTP answer and the response_url Slack gave with it."""

    http: HttpResponse
    response_url: str | None
    fake: FakeSlack
    payload: dict | None = None

    def replies(self) -> list[dict]:
        """What the app POSTed to this request's response_url."""
        if self.response_url is None:
            return []
        path = self.response_url.split("127.0.0.1", 1)[1].split("/", 1)[1]
        return [r for r in self.fake.responses() if r["_path"] == "/" + path]

    def reply(self) -> dict:
        replies = self.replies()
        assert len(replies) == 1, f"expected one response_url reply, got {replies!r} (ack: {self.http!r})"
        return replies[0]

    def ack_body(self) -> dict | None:
        return self.http.json() if self.http.body and self.http.body[:1] == b"{" else None


def _as_read(mrkdwn: str) -> str:
    """Slack shows ``&lt;`` ``&gt;`` ``&amp;`` in formatted text as the characters themselves."""
    return mrkdwn.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def message_text(message: dict) -> str:
    """Everything a person would read in a message: its text and the text of all its blocks."""
    parts = [_as_read(message.get("text") or "")]

    def walk(node):
        if isinstance(node, dict):
            if node.get("type") == "plain_text" and isinstance(node.get("text"), str):
                parts.append(node["text"])
            elif node.get("type") == "mrkdwn" and isinstance(node.get("text"), str):
                parts.append(_as_read(node["text"]))
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(message.get("blocks") or [])
    return "\n".join(parts)


def buttons(message: dict) -> list[tuple[dict, dict]]:
    """(block, button element) pairs of a message or view, in order."""
    out = []
    for block in message.get("blocks") or []:
        elements = list(block.get("elements") or []) if block.get("type") == "actions" else []
        if isinstance(block.get("accessory"), dict):
            elements.append(block["accessory"])
        out.extend((block, el) for el in elements if el.get("type") == "button")
    return out


def button_labels(message: dict) -> list[str]:
    return [el["text"]["text"] for _, el in buttons(message)]


class SlackDriver:
    """Sends Slack's requests to the app over real HTTP, signed like Slack signs them."""

    def __init__(self, port: int, fake: FakeSlack, executor: TrackingExecutor, secret: str = SIGNING_SECRET, worker=None):
        self.port = port
        self.fake = fake
        self.executor = executor
        self.worker = worker  # the app's outbox worker: settle() waits for it too
        self.secret = secret
        self._n = itertools.count(1)

    # --- transport -------------------------------------------------------------------------
    def signature(self, body: bytes, timestamp: str) -> str:
        base = b"v0:" + timestamp.encode() + b":" + body
        return "v0=" + hmac.new(self.secret.encode(), base, hashlib.sha256).hexdigest()

    def post(
        self,
        body: bytes,
        *,
        content_type: str = "application/x-www-form-urlencoded",
        timestamp: str | None = None,
        signature: str | None | object = ...,
        sign: bool = True,
        settle: bool = True,
        path: str = "/slack/events",
        headers: dict[str, str] | None = None,
    ) -> HttpResponse:
        timestamp = str(int(time.time())) if timestamp is None else timestamp
        headers = {"Content-Type": content_type, "User-Agent": "Slackbot 1.0 (+https://api.slack.com/robots)", **(headers or {})}
        if sign:
            headers["X-Slack-Request-Timestamp"] = timestamp
            headers["X-Slack-Signature"] = self.signature(body, timestamp) if signature is ... else signature
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        started = time.monotonic()
        try:
            conn.request("POST", path, body=body, headers={k: v for k, v in headers.items() if v is not None})
            resp = conn.getresponse()
            payload = resp.read()
            result = HttpResponse(resp.status, {k.lower(): v for k, v in resp.getheaders()}, payload, time.monotonic() - started)
        finally:
            conn.close()
        if settle:
            self.settle()
        self._check_ack(result)
        return result

    def _check_ack(self, result: HttpResponse) -> None:
        """An ack with a message body is a message too: Block Kit limits apply."""
        body = None
        if result.body[:1] == b"{":
            try:
                body = json.loads(result.body)
            except ValueError:
                return
        if isinstance(body, dict) and ("blocks" in body or "text" in body):
            error, details, soft = check_message(body)
            with self.fake.lock:
                self.fake.violations.extend(f"ack: {d}" for d in ([f"{error}: {x}" for x in details] if error else []) + soft)
                self.fake.escaping.extend(f"ack: {w}" for w in block_warnings(body.get("blocks") or []) + text_warnings(body.get("text")))

    def settle(self, timeout: float = 10.0) -> None:
        """Wait until every Bolt listener started so far has finished, and the outbox worker has
        sent what they queued (it is woken by their commits)."""
        self.executor.wait_idle(timeout)
        if self.worker is not None:
            assert self.worker.wait_idle(timeout), f"the outbox worker is still busy after {timeout}s"

    @staticmethod
    def form(payload: dict) -> bytes:
        return urlencode({"payload": json.dumps(payload)}).encode()

    def _trigger(self) -> str:
        return f"{next(self._n)}{int(time.time())}.{TEAM_ID}.{hashlib.md5(str(time.time()).encode()).hexdigest()[:16]}"

    @staticmethod
    def _user(user: str) -> dict:
        return {"id": user, "username": user.lower(), "name": user.lower(), "team_id": TEAM_ID}

    # --- slash commands ----------------------------------------------------------------------
    def command_body(self, command: str, text: str = "", *, user: str = "U1", channel: str = "C1", channel_name: str = "general",
                     response_url: str | None = None) -> bytes:
        fields = [
            ("token", "verification-token-unused"),
            ("team_id", TEAM_ID),
            ("team_domain", "dora-tests"),
            ("channel_id", channel),
            ("channel_name", channel_name),
            ("user_id", user),
            ("user_name", user.lower()),
            ("command", command),
            ("text", text),
            ("api_app_id", APP_ID),
            ("is_enterprise_install", "false"),
            ("response_url", response_url or self.fake.new_response_url()),
            ("trigger_id", self._trigger()),
        ]
        return urlencode(fields).encode()

    def command(self, command: str, text: str = "", *, user: str = "U1", channel: str = "C1", channel_name: str = "general",
                settle: bool = True, **post) -> Interaction:
        response_url = self.fake.new_response_url()
        body = self.command_body(command, text, user=user, channel=channel, channel_name=channel_name, response_url=response_url)
        return Interaction(self.post(body, settle=settle, **post), response_url, self.fake)

    # --- buttons on messages -----------------------------------------------------------------
    def press(self, message: dict, label: str | None = None, *, action_id: str | None = None, index: int | None = None,
              user: str = "U1", settle: bool = True) -> Interaction:
        """Press a button of a message the fake holds (its real block_id, action_id and value)."""
        found = buttons(message)
        if index is not None:
            block, element = found[index]
        else:
            matches = [(b, e) for b, e in found if (label is None or e["text"]["text"] == label or e["text"]["text"].startswith(label))
                       and (action_id is None or e.get("action_id") == action_id)]
            assert matches, f"no button {label or action_id!r} on the message; buttons: {[e['text']['text'] for _, e in found]}"
            block, element = matches[0]
        in_view = message.get("type") in ("home", "modal")
        channel = None if in_view else message["channel"]
        response_url = None if in_view else self.fake.new_response_url()
        action = {
            "action_id": element["action_id"],
            "block_id": block["block_id"],
            "text": element["text"],
            "value": element.get("value"),
            "type": "button",
            "action_ts": f"{time.time():.6f}",
        }
        if element.get("style"):
            action["style"] = element["style"]
        payload = {
            "type": "block_actions",
            "user": self._user(user),
            "api_app_id": APP_ID,
            "token": "verification-token-unused",
            "trigger_id": self._trigger(),
            "team": {"id": TEAM_ID, "domain": "dora-tests"},
            "enterprise": None,
            "is_enterprise_install": False,
            "state": {"values": {}},
            "actions": [action],
        }
        if in_view:
            payload["container"] = {"type": "view", "view_id": message["id"]}
            payload["view"] = message
        else:
            payload["container"] = {"type": "message", "message_ts": message["ts"], "channel_id": channel, "is_ephemeral": False}
            payload["channel"] = {"id": channel, "name": "general"}
            payload["message"] = {k: v for k, v in message.items() if k != "channel"}
            payload["response_url"] = response_url
        return Interaction(self.post(self.form(payload), settle=settle), response_url, self.fake, payload)

    # --- modals -----------------------------------------------------------------------------
    @staticmethod
    def _input(view: dict, block_id: str) -> dict:
        for block in view["blocks"]:
            if block.get("block_id") == block_id:
                assert block["type"] == "input", f"block {block_id} is a {block['type']}, not an input"
                return block
        raise AssertionError(f"no block {block_id!r} in the view; blocks: {[b.get('block_id') for b in view['blocks']]}")

    @staticmethod
    def _state(element: dict, value: Any) -> dict:
        kind = element["type"]
        if kind == "plain_text_input":
            return {"type": kind, "value": value}
        if kind == "static_select":
            if value is None:
                return {"type": kind, "selected_option": None}
            options = element.get("options") or []
            chosen = next((o for o in options if o["value"] == value), None)
            assert chosen is not None, f"{value!r} is not an option of {element['action_id']}: {[o['value'] for o in options]}"
            return {"type": kind, "selected_option": chosen}
        raise AssertionError(f"unsupported input element {kind}")

    def view_state(self, view: dict, values: dict[str, Any]) -> dict:
        """Slack's ``view.state.values``: every input block, with the typed or initial value."""
        state: dict[str, dict] = {}
        for block in view["blocks"]:
            if block.get("type") != "input":
                continue
            element = block["element"]
            if block["block_id"] in values:
                value = values[block["block_id"]]
            elif element["type"] == "static_select":
                value = (element.get("initial_option") or {}).get("value")
            else:
                value = element.get("initial_value")
            state[block["block_id"]] = {element["action_id"]: self._state(element, value)}
        unknown = set(values) - set(state)
        assert not unknown, f"no input blocks {unknown} in the view"
        return {"values": state}

    def submit(self, view: dict, values: dict[str, Any], *, user: str = "U1", settle: bool = True) -> Interaction:
        """Submit a modal the fake holds, with ``{block_id: typed text or option value}``."""
        submitted = dict(view, state=self.view_state(view, values))
        payload = {
            "type": "view_submission",
            "team": {"id": TEAM_ID, "domain": "dora-tests"},
            "user": self._user(user),
            "api_app_id": APP_ID,
            "token": "verification-token-unused",
            "trigger_id": self._trigger(),
            "view": submitted,
            "response_urls": [],
            "enterprise": None,
            "is_enterprise_install": False,
        }
        return Interaction(self.post(self.form(payload), settle=settle), None, self.fake, payload)

    def select(self, view: dict, block_id: str, value: str, *, values: dict[str, Any] | None = None, user: str = "U1",
               settle: bool = True) -> Interaction:
        """Pick an option in a modal's select that dispatches an action (block_actions from a view)."""
        block = self._input(view, block_id)
        element = block["element"]
        selected = self._state(element, value)["selected_option"]
        state = self.view_state(view, {**(values or {}), block_id: value})
        payload = {
            "type": "block_actions",
            "user": self._user(user),
            "api_app_id": APP_ID,
            "token": "verification-token-unused",
            "container": {"type": "view", "view_id": view["id"]},
            "trigger_id": self._trigger(),
            "team": {"id": TEAM_ID, "domain": "dora-tests"},
            "enterprise": None,
            "is_enterprise_install": False,
            "view": dict(view, state=state),
            "actions": [{
                "type": "static_select",
                "action_id": element["action_id"],
                "block_id": block_id,
                "selected_option": selected,
                "placeholder": element.get("placeholder"),
                "action_ts": f"{time.time():.6f}",
            }],
        }
        return Interaction(self.post(self.form(payload), settle=settle), None, self.fake, payload)

    # --- events -----------------------------------------------------------------------------
    def event_body(self, event: dict) -> bytes:
        body = {
            "token": "verification-token-unused",
            "team_id": TEAM_ID,
            "api_app_id": APP_ID,
            "event": event,
            "type": "event_callback",
            "event_id": f"Ev{next(self._n):08d}",
            "event_time": int(time.time()),
            "authorizations": [
                {"enterprise_id": None, "team_id": TEAM_ID, "user_id": "U0BOT", "is_bot": True, "is_enterprise_install": False},
            ],
            "is_ext_shared_channel": False,
        }
        return json.dumps(body).encode()

    def event(self, event: dict, *, settle: bool = True, **post) -> HttpResponse:
        return self.post(self.event_body(event), content_type="application/json", settle=settle, **post)

    def home_opened(self, user: str = "U1", **kw) -> HttpResponse:
        return self.event({"type": "app_home_opened", "user": user, "channel": "D0HOME", "tab": "home", "event_ts": f"{time.time():.6f}"},
                          **kw)


@dataclass
class SlackApp:
    """A served app, its runtime and clock, the fake Slack it talks to, and a driver."""

    rt: Any
    clock: Clock
    server: LiveServer
    fake: FakeSlack
    slack: SlackDriver
    bolt: Any = None
    extra: dict = field(default_factory=dict)

    @property
    def engine(self):
        return self.rt.engine

    def outbox_worker(self):
        """An outbox sender as `serve` runs it, on this app's clock and fake Slack."""
        from bot.slack.delivery import make_sender

        return make_sender(self.rt, parallel=1)

    def all(self, model, *where, order=None) -> list:
        """Rows of a model (detached copies), oldest first."""
        with session_scope(self.engine, write=False) as session:
            query = select(model)
            for w in where:
                query = query.where(w)
            query = query.order_by(order if order is not None else model.id)
            rows = list(session.exec(query).all())
            for r in rows:
                session.expunge(r)
            return rows

    def counts(self) -> dict[str, int]:
        """Row counts of every table a Slack request could write to ("nothing stored" checks)."""
        from sqlalchemy import func, text

        from bot.store.models import (
            AppMeta,
            Deploy,
            DeployCommit,
            Incident,
            IncidentEvent,
            OutboxMessage,
            Service,
            SlackMessage,
        )

        out = {}
        with session_scope(self.engine, write=False) as session:
            for model in (Service, Deploy, DeployCommit, Incident, IncidentEvent, SlackMessage, OutboxMessage, AppMeta):
                out[model.__tablename__] = session.exec(select(func.count()).select_from(model)).one()
            out["digest_subscription"] = session.execute(text("SELECT count(*) FROM digest_subscription")).scalar_one()
        return out


def ephemeral_answer(interaction: Interaction) -> dict:
    """The one message the user got back: in the ack body, or else posted to the response_url."""
    ack = interaction.ack_body()
    replies = interaction.replies()
    if ack and ("text" in ack or "blocks" in ack):
        assert not replies, f"both an ack message and response_url replies: {ack!r} {replies!r}"
        return ack
    assert len(replies) == 1, f"expected one response_url reply, got {replies!r} (ack: {interaction.http!r})"
    return replies[0]


def assert_usage_error(interaction: Interaction, *usage_bits: str, says: str | None = None) -> str:
    """An ephemeral error that says what was wrong and shows the command's usage."""
    answer = ephemeral_answer(interaction)
    assert answer.get("response_type", "ephemeral") == "ephemeral", answer
    text = message_text(answer)
    assert ":warning:" in text or "Problem" in text, text
    for bit in usage_bits:
        assert bit in text, f"usage {bit!r} not shown in: {text}"
    if says is not None:
        assert says.lower() in text.lower(), f"{says!r} not in: {text}"
    return text
