"""``dora-bot shell``: talk to the real Bolt app in a terminal, with no Slack at all.

A small local stand-in for Slack runs on 127.0.0.1: the app's Web API calls and ``response_url``
replies land there and are printed as text. Type a slash command, press a button by typing its
number, fill a modal at the prompts. Reads from stdin when it is not a terminal, so it can be
scripted (``printf '/deploy checkout 1.2\\n/dora\\n' | dora-bot shell``).
"""

from __future__ import annotations

import itertools
import json
import os
import sys
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Callable, TextIO
from urllib.parse import parse_qs, urlencode

from slack_bolt import App, BoltRequest

from bot.core.numbers import is_digits
from bot.slack.render_text import mrkdwn, render_blocks, render_message

USER = "U0SHELL"
CHANNELS = {"C0SHELL": "shell", "C0ALERTS": "incidents"}


class LocalSlack:
    """Answers the Web API methods the app uses and queues what it posts, for printing."""

    def __init__(self) -> None:
        self.events: list[tuple[str, dict]] = []
        self.lock = threading.Lock()
        self.ts = itertools.count(1)
        self.views: dict[str, dict] = {}
        self.uploads: dict[str, dict] = {}
        self.upload_dir: str | None = None
        self.view_ids = itertools.count(1)
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> "LocalSlack":
        self.thread.start()
        return self

    def stop(self) -> None:
        import shutil

        self.server.shutdown()
        self.server.server_close()
        if self.upload_dir is not None:  # the digests' charts live as long as the shell
            shutil.rmtree(self.upload_dir, ignore_errors=True)

    def take(self) -> list[tuple[str, dict]]:
        with self.lock:
            events, self.events = self.events, []
        return events

    def api(self, method: str, args: dict) -> dict:
        with self.lock:
            if method == "chat.postMessage":
                ts = f"{int(time.time())}.{next(self.ts):06d}"
                self.events.append(("post", {**args, "ts": ts}))
                return {"ok": True, "channel": args.get("channel"), "ts": ts, "message": args}
            if method == "chat.update":
                self.events.append(("update", args))
                return {"ok": True, "channel": args.get("channel"), "ts": args.get("ts")}
            if method in ("views.open", "views.update", "views.push"):
                view = args.get("view")
                view = json.loads(view) if isinstance(view, str) else view
                view_id = args.get("view_id") or f"V{next(self.view_ids):06d}"
                self.views[view_id] = view
                self.events.append(("view", {"id": view_id, "view": view}))
                return {"ok": True, "view": {**view, "id": view_id}}
            if method == "views.publish":
                view = args.get("view")
                self.events.append(("home", {"view": json.loads(view) if isinstance(view, str) else view}))
                return {"ok": True}
            if method == "files.getUploadURLExternal":
                file_id = f"F{next(self.ts):06d}"
                self.uploads[file_id] = {"filename": args.get("filename")}
                return {"ok": True, "upload_url": f"{self.url}/upload/{file_id}", "file_id": file_id}
            if method == "files.completeUploadExternal":
                files = args.get("files")
                files = json.loads(files) if isinstance(files, str) else files or []
                for f in files:
                    self.events.append(("file", {**self.uploads.get(f["id"], {}), **f, "channel": args.get("channel_id")}))
                return {"ok": True, "files": files}
            if method == "conversations.create":  # /incident channel: a new channel the shell knows by name
                channel_id = f"C0INC{next(self.ts):04d}"
                CHANNELS[channel_id] = args.get("name") or channel_id
                self.events.append(("channel", {"id": channel_id, "name": CHANNELS[channel_id]}))
                return {"ok": True, "channel": {"id": channel_id, "name": CHANNELS[channel_id]}}
            if method == "chat.getPermalink":
                ts = str(args.get("message_ts") or "").replace(".", "")
                return {"ok": True, "permalink": f"https://shell.slack.com/archives/{args.get('channel')}/p{ts}"}
            if method == "conversations.list":
                return {"ok": True, "channels": [{"id": k, "name": v} for k, v in CHANNELS.items()],
                        "response_metadata": {"next_cursor": ""}}
            if method == "auth.test":
                return {"ok": True, "user_id": "U0DORABOT", "team_id": "T0SHELL", "bot_id": "B0DORA"}
            return {"ok": True}

    def save_upload(self, file_id: str, raw: bytes) -> None:
        import tempfile
        from pathlib import Path

        if self.upload_dir is None:
            self.upload_dir = tempfile.mkdtemp(prefix="dora-shell-files-")
        with self.lock:
            name = (self.uploads.get(file_id) or {}).get("filename") or f"{file_id}.bin"
            path = Path(self.upload_dir) / name
            path.write_bytes(raw)
            self.uploads.setdefault(file_id, {})["path"] = str(path)

    def _handler(self):
        local = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_POST(self):
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.path.startswith("/upload/"):
                    local.save_upload(self.path.rsplit("/", 1)[-1], raw)
                    self.send_response(200)
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"OK")
                    return
                if "json" in (self.headers.get("Content-Type") or ""):
                    args = json.loads(raw or b"{}")
                else:
                    args = {k: v[0] for k, v in parse_qs(raw.decode()).items()}
                if self.path.startswith("/api/"):
                    answer = local.api(self.path[len("/api/"):], args)
                else:  # a response_url
                    with local.lock:
                        local.events.append(("respond", args))
                    answer = {"ok": True}
                body = json.dumps(answer).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        return Handler


class TrackingExecutor(ThreadPoolExecutor):
    """Remembers the listener runs it starts, so the shell can wait for them to finish."""

    def __init__(self) -> None:
        super().__init__(max_workers=4, thread_name_prefix="shell-listener")
        self.pending: list[Future] = []

    def submit(self, fn, /, *args, **kwargs):
        future = super().submit(fn, *args, **kwargs)
        self.pending.append(future)
        return future

    def drain(self, timeout: float = 30) -> None:
        while self.pending:
            self.pending.pop(0).result(timeout=timeout)


KNOWN_COMMANDS = ("/deploy", "/incident", "/dora")  # the slash commands of manifest.yml


class FormCancelled(Exception):
    """The person cancelled the open form (typed `cancel`, or pressed Ctrl-C)."""


CANCEL_WORDS = ("cancel", "/cancel")


class Shell:
    def __init__(self, app: App, slack: LocalSlack, executor: TrackingExecutor, *, out: TextIO, ask: Callable[[str], str],
                 user: str = USER, channel: str = "C0SHELL", deliver: Callable[[], object] | None = None, raw: bool = False):
        self.app, self.slack, self.executor = app, slack, executor
        self.deliver = deliver  # sends the outbox (cards, thread lines) once the listeners are done
        self.out, self.ask = out, ask
        self.user, self.channel = user, channel
        self.raw = raw  # also print the Block Kit JSON the app sent
        # A button keeps its number for the whole session: the same (action, value) on an updated
        # card, or on the same card in two channels, is the same button with the same number.
        self.numbers: dict[tuple[str, str], int] = {}
        self.pressable: dict[int, tuple[str, dict, dict]] = {}  # number -> (block_id, button, where it was last shown)
        self.on_screen: dict[str, set[int]] = {}  # message (channel:ts, reply n, home) -> the numbers of its buttons now
        self.responses = itertools.count(1)
        self.triggers = itertools.count(1)
        self.replies = itertools.count(1)
        self.messages: dict[str, dict] = {}

    def say(self, line: str = "") -> None:
        print(line, file=self.out, flush=True)

    def _raw(self, kind: str, payload: dict) -> None:
        if self.raw:
            self.say(f"  raw {kind}: " + json.dumps(payload, sort_keys=True))

    # --- sending to the app -----------------------------------------------------------

    def _dispatch(self, body: str, content_type: str) -> dict | None:
        response = self.app.dispatch(BoltRequest(body=body, headers={"content-type": [content_type]}))
        self.executor.drain()
        if self.deliver is not None:
            self.deliver()
        if response.status != 200:
            self.say(f"(the app answered {response.status}: {response.body})")
            return None
        if response.body:
            try:
                return json.loads(response.body)
            except ValueError:
                return {"text": response.body}
        return None

    def command(self, line: str) -> None:
        name, _, text = line.partition(" ")
        if name.lower() not in KNOWN_COMMANDS:
            self.say(f"unknown command {name}, try {', '.join(KNOWN_COMMANDS)}")
            return
        name = name.lower()
        form = {
            "token": "shell", "team_id": "T0SHELL", "team_domain": "shell", "channel_id": self.channel,
            "channel_name": CHANNELS.get(self.channel, "shell"), "user_id": self.user, "user_name": "you",
            "command": name, "text": text.strip(), "response_url": f"{self.slack.url}/response/{next(self.responses)}",
            "trigger_id": f"shell.{next(self.triggers)}", "api_app_id": "A0SHELL",
        }
        answer = self._dispatch(urlencode(form), "application/x-www-form-urlencoded")
        if answer and (answer.get("text") or answer.get("blocks")):
            self._print_reply(answer)
        self.show()

    def _payload(self, payload: dict) -> dict | None:
        return self._dispatch(urlencode({"payload": json.dumps(payload)}), "application/x-www-form-urlencoded")

    def visible(self) -> list[int]:
        return sorted(set().union(*self.on_screen.values())) if self.on_screen else []

    def press(self, number: int) -> None:
        shown = self.visible()
        if number not in shown:
            if number in self.pressable:
                label = self.pressable[number][1].get("text", {}).get("text", "")
                self.say(f"Button {number} ({label}) is no longer shown." + (f" Buttons on screen: {_ranges(shown)}." if shown else ""))
            else:
                self.say(f"No button {number}. Buttons on screen: {_ranges(shown)}." if shown else "No buttons on screen.")
            return
        block_id, element, where = self.pressable[number]
        if element.get("confirm") and not self._confirmed(element["confirm"]):
            self.say("(not done)")
            return
        payload = {
            "type": "block_actions", "user": {"id": self.user, "username": "you"}, "api_app_id": "A0SHELL",
            "team": {"id": "T0SHELL"}, "trigger_id": f"shell.{next(self.triggers)}",
            "response_url": f"{self.slack.url}/response/{next(self.responses)}",
            "channel": {"id": where.get("channel", self.channel)}, "container": {"type": "message", **where},
            "message": where.get("message", {}),
            "actions": [{"type": "button", "block_id": block_id, "action_id": element["action_id"], "value": element.get("value", ""),
                         "action_ts": str(time.time())}],
        }
        if where.get("view"):
            payload["container"] = {"type": "view", "view_id": where["view"]}
        self._payload(payload)
        self.show()

    def _confirmed(self, dialog: dict) -> bool:
        """Slack's confirm dialog on a button, as a yes/no prompt (anything but yes is no; Ctrl-C is no)."""
        self.say(f"[confirm] {mrkdwn(dialog['title']['text'])}: {mrkdwn(dialog['text']['text'])}")
        try:
            answer = self.ask(f"  {dialog['confirm']['text']}? [y/N]: ").strip().lower()
        except KeyboardInterrupt:
            self.say("")
            return False
        return answer in ("y", "yes")

    def shortcut(self, callback_id: str, text: str) -> None:
        """A message shortcut on a message just posted in the current channel (``timeline <text>``)."""
        ts = f"{int(time.time())}.{next(self.slack.ts):06d}"
        payload = {
            "type": "message_action", "callback_id": callback_id, "trigger_id": f"shell.{next(self.triggers)}",
            "user": {"id": self.user, "username": "you"}, "team": {"id": "T0SHELL"}, "api_app_id": "A0SHELL",
            "channel": {"id": self.channel, "name": CHANNELS.get(self.channel, "shell")},
            "message": {"type": "message", "user": self.user, "ts": ts, "text": text}, "message_ts": ts,
            "response_url": f"{self.slack.url}/response/{next(self.responses)}", "action_ts": str(time.time()),
        }
        self._payload(payload)
        self.show()

    # --- what Slack would show --------------------------------------------------------

    def _numbering(self, message_key: str, where: dict):
        """The ``number`` callback for one message: its buttons, numbered for the session."""
        shown: set[int] = set()
        self.on_screen[message_key] = shown  # an updated card replaces the buttons it had

        def number(block_id: str, element: dict) -> int:
            key = (element.get("action_id", ""), element.get("value", ""))
            n = self.numbers.setdefault(key, len(self.numbers) + 1)
            self.pressable[n] = (block_id, element, where)
            shown.add(n)
            return n

        return number

    def _render(self, message: dict, message_key: str, where: dict) -> None:
        for line in render_message(message, buttons=[], channels=CHANNELS, indent="  ", number=self._numbering(message_key, where)):
            self.say(line)

    def _print_reply(self, message: dict) -> None:
        visibility = ("only you" if message.get("response_type", "ephemeral") == "ephemeral"
                      else "#" + CHANNELS.get(self.channel, self.channel))
        self.say(f"[{visibility}]")
        self._render(message, f"reply:{next(self.replies)}", {"channel": self.channel})
        self._raw("reply", {k: message[k] for k in ("text", "blocks", "response_type") if k in message})

    def show(self) -> None:
        """Print everything the app sent since the last call; open modals prompt for input."""
        for kind, args in self.slack.take():
            if kind == "respond":
                self._print_reply(args)
            elif kind in ("post", "update"):
                channel = "#" + CHANNELS.get(args.get("channel"), args.get("channel", "?"))
                blocks = args.get("blocks")
                blocks = json.loads(blocks) if isinstance(blocks, str) else blocks
                if kind == "post":
                    self.messages[args["ts"]] = args
                    if args.get("thread_ts") and not _has_buttons(blocks):
                        self.say(f"[{channel}, in thread] " + mrkdwn(args.get("text", ""), CHANNELS))
                        self._raw("chat.postMessage", {"channel": args.get("channel"), "thread_ts": args["thread_ts"],
                                                       "text": args.get("text"), "blocks": blocks})
                        continue
                # A thread message with buttons (the cause question after Resolve) is shown whole, so
                # its buttons can be pressed like a card's.
                in_thread = kind == "post" and args.get("thread_ts")
                self.say(f"[{channel}, in thread]" if in_thread else f"[{channel}]" if kind == "post" else f"[{channel}, card updated]")
                where = {"channel": args.get("channel"), "ts": args.get("ts"), "message": {"ts": args.get("ts"), "blocks": blocks}}
                self._render({**args, "blocks": blocks}, f"{args.get('channel')}:{args.get('ts')}", where)
                self._raw("chat.postMessage" if kind == "post" else "chat.update",
                          {"channel": args.get("channel"), "text": args.get("text"), "blocks": blocks,
                           **({"thread_ts": args["thread_ts"]} if in_thread else {})})
            elif kind == "channel":
                self.say(f"[#{args['name']} created]")
            elif kind == "file":
                channel = "#" + CHANNELS.get(args.get("channel"), args.get("channel") or "?")
                self.say(f"[{channel}] (file) {args.get('title') or args.get('filename')}: saved as {args.get('path')}"
                         " (deleted when the shell ends)")
            elif kind == "home":
                self.say("[App Home]")
                number = self._numbering("home", {"view": "home"})
                for line in render_blocks(args["view"].get("blocks", []), buttons=[], channels=CHANNELS, indent="  ", number=number):
                    self.say(line)
                self._raw("views.publish", args["view"])
            elif kind == "view":
                self._raw("views.open", args["view"])
                try:
                    self.fill_modal(args["id"], args["view"])
                except FormCancelled:
                    self.slack.take()  # whatever a half-filled form caused (a reload) is dropped with it
                    self.say("  (form cancelled: nothing was submitted)")
                return

    # --- modals -----------------------------------------------------------------------

    def _ask(self, prompt: str) -> str:
        """One answer in a form; `cancel` (or Ctrl-C) cancels the whole form."""
        try:
            raw = self.ask(prompt).strip()
        except KeyboardInterrupt:
            self.say("")
            raise FormCancelled from None
        if raw.lower() in CANCEL_WORDS:
            raise FormCancelled
        return raw

    def fill_modal(self, view_id: str, view: dict, answers: dict | None = None) -> None:
        answers = dict(answers or {})
        self.say(f"[modal] {view['title']['text']}  (type `cancel` to drop the form)")
        for block in view.get("blocks", []):
            if block.get("type") != "input":
                for line in render_blocks([block], buttons=[], channels=CHANNELS, indent="  "):
                    self.say(line)
                continue
            block_id = block["block_id"]
            if block_id in answers:
                continue
            element = block["element"]
            optional = bool(block.get("optional"))
            label = block["label"]["text"] + ("" if not optional else " (optional)")
            if block.get("hint"):
                self.say(f"    {mrkdwn(block['hint'].get('text', ''), CHANNELS)}")
            if element["type"] == "static_select":
                options = element.get("options", [])
                for i, option in enumerate(options, 1):
                    self.say(f"    {i}. {option['text']['text']}")
                initial = element.get("initial_option")
                default = f", Enter: {initial['text']['text']}" if initial else ""
                chosen = None
                for _ in range(3):
                    raw = self._ask(f"  {label} [number or name{default}]: ")
                    if not raw:
                        chosen = initial
                        if chosen is not None or optional:
                            break
                        self.say("  (required: type a number or a name, or `cancel` to drop the form)")
                        continue
                    chosen = _choose(options, raw)
                    if chosen is not None:
                        break
                    self.say(f"  (not a choice: type a number from 1 to {len(options)} or a name from the list)")
                if chosen is None and not optional:
                    raise FormCancelled
                if chosen is None:
                    answers[block_id] = {element["action_id"]: {"type": "static_select", "selected_option": None}}
                    continue
                answers[block_id] = {element["action_id"]: {"type": "static_select", "selected_option": chosen}}
                if block.get("dispatch_action"):
                    self._payload(
                        {
                            "type": "block_actions", "user": {"id": self.user}, "team": {"id": "T0SHELL"}, "api_app_id": "A0SHELL",
                            "trigger_id": f"shell.{next(self.triggers)}", "container": {"type": "view", "view_id": view_id},
                            "view": {**view, "id": view_id, "state": {"values": answers}},
                            "actions": [{"type": "static_select", "block_id": block_id, "action_id": element["action_id"],
                                         "selected_option": chosen}],
                        }
                    )
                    updated = [a for k, a in self.slack.take() if k == "view"]
                    if updated:
                        self._raw("views.update", updated[-1]["view"])
                        return self.fill_modal(view_id, updated[-1]["view"], answers)
            else:
                example = (element.get("placeholder") or {}).get("text")
                shown = f" [e.g. {example}]" if example and not optional else (f" [e.g. {example}, Enter to skip]" if example else "")
                value = self._ask(f"  {label}{shown}: ")
                while not value and not optional:
                    self.say("  (required: type an answer, or `cancel` to drop the form)")
                    value = self._ask(f"  {label}{shown}: ")
                answers[block_id] = {element["action_id"]: {"type": "plain_text_input", "value": value or None}}
        payload = {
            "type": "view_submission", "user": {"id": self.user, "username": "you"}, "team": {"id": "T0SHELL"}, "api_app_id": "A0SHELL",
            "view": {**view, "id": view_id, "state": {"values": answers}},
        }
        answer = self._payload(payload)
        if answer and answer.get("response_action") == "errors":
            labels = {b.get("block_id"): b.get("label", {}).get("text", b.get("block_id")) for b in view.get("blocks", [])}
            for block_id, message in answer["errors"].items():
                self.say(f"  ! {labels.get(block_id, block_id)}: {message}")
                answers.pop(block_id, None)
            return self.fill_modal(view_id, view, answers)
        self.show()


def _ranges(numbers: list[int]) -> str:
    return ", ".join(str(n) for n in numbers)


HELP = """\
Type a slash command as in Slack:  /deploy checkout 1.2.3   /incident declare sev2 checkout Checkout 5xx   /dora
A number presses that button (a button keeps its number; a confirm dialog asks y/N); `home` opens App Home;
`timeline <message text>` posts that message and runs the "Add to incident timeline" shortcut on it;
in a form, `cancel` or Ctrl-C drops it; `quit` (or Ctrl-D) leaves."""


def run_shell(app: App, slack: LocalSlack, executor: TrackingExecutor, *, out: TextIO, read_line: Callable[[str], str], interactive: bool,
              deliver: Callable[[], object] | None = None, user: str = USER, raw: bool = False) -> int:
    shell = Shell(app, slack, executor, out=out, ask=read_line, deliver=deliver, user=user, raw=raw)
    if interactive:
        shell.say(f"dora-bot shell: the real app, no Slack needed; you are <@{user}>. " + HELP)
    while True:
        try:
            line = read_line("you> " if interactive else "").strip()
        except EOFError:
            return 0
        except KeyboardInterrupt:  # at the prompt, Ctrl-C drops the line; quit or Ctrl-D leaves
            shell.say("")
            continue
        if not line or line.startswith("#"):
            continue
        if not interactive:
            shell.say(f"you> {line}")
        if line in ("quit", "exit"):
            return 0
        try:
            _run_line(shell, line)
        except EOFError:  # the input ended in the middle of a form
            shell.say("(input ended while a form was open: it was not submitted)")
            return 1
        except KeyboardInterrupt:  # Ctrl-C while the app was working: back to the prompt
            shell.say("\n(interrupted)")


def _run_line(shell: Shell, line: str) -> None:
    """One line typed at the prompt (not quit): help, home, a button number or a slash command."""
    if line in ("help", "?"):
        shell.say(HELP)
    elif line == "home":
        event = {"type": "event_callback", "team_id": "T0SHELL", "api_app_id": "A0SHELL", "event_id": f"Ev{next(shell.triggers)}",
                 "event_time": int(time.time()),
                 "event": {"type": "app_home_opened", "user": shell.user, "channel": "D0SHELL", "tab": "home"}}
        shell._dispatch(json.dumps(event), "application/json")
        shell.show()
    elif is_digits(line):
        shell.press(int(line))
    elif line.split(" ", 1)[0] == "timeline":
        shell.shortcut("add_to_timeline", line.partition(" ")[2].strip())
    elif line.startswith("/"):
        shell.command(line)
    else:
        shell.say("Start with a slash command (e.g. /dora), a button number, `home`, `timeline <text>`, `help` or `quit`.")


def _choose(options: list[dict], raw: str) -> dict | None:
    """The option a typed answer means: its number, its value, or the start of its label (if only one fits)."""
    if is_digits(raw):
        return options[int(raw) - 1] if 1 <= int(raw) <= len(options) else None
    wanted = raw.lower()
    exact = [o for o in options if wanted in (o["value"].lower(), o["text"]["text"].lower())]
    if exact:
        return exact[0]
    starting = [o for o in options if o["text"]["text"].lower().startswith(wanted)]
    return starting[0] if len(starting) == 1 else None


# --- reading lines ----------------------------------------------------------------------

def history_path() -> Path:
    """Where the shell keeps its history: ``$XDG_STATE_HOME/dora-bot/shell_history`` (default
    ``~/.local/state``, per the XDG Base Directory spec), never the folder it runs in."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "dora-bot" / "shell_history"


def line_reader(interactive: bool, *, echo: Callable[[str], object]) -> tuple[Callable[[str], str], Callable[[], None]]:
    """``(read_line, close)``: on a terminal, ``input`` with readline's line editing and a history
    kept between sessions (slash commands only, not form answers); otherwise lines from stdin,
    with form answers echoed so a scripted session reads like a conversation."""
    if not interactive:
        def read_piped(prompt: str) -> str:
            line = sys.stdin.readline()
            if not line:
                raise EOFError
            line = line.rstrip("\n")
            if prompt:
                echo(f"{prompt}{line}")
            return line

        return read_piped, lambda: None
    try:
        import readline
    except ImportError:  # no readline (Windows): plain input
        return input, lambda: None
    path = history_path()
    try:
        readline.read_history_file(path)
    except OSError:
        pass
    readline.set_history_length(1000)

    def read_tty(prompt: str) -> str:
        line = input(prompt)
        if line and prompt != "you> " and readline.get_current_history_length():  # a form answer: not worth recalling
            readline.remove_history_item(readline.get_current_history_length() - 1)
        return line

    def close() -> None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            readline.write_history_file(path)
        except OSError:
            pass

    return read_tty, close


def _has_buttons(blocks) -> bool:
    """Whether a message has buttons to press (in an actions block or as a section's accessory)."""
    return any(
        el.get("type") == "button"
        for block in (blocks or []) if isinstance(block, dict)
        for el in [*(block.get("elements") or [] if block.get("type") == "actions" else []), block.get("accessory") or {}]
        if isinstance(el, dict)
    )
