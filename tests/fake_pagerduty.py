"""A fake PagerDuty Events API v2 (https://developer.pagerduty.com/api-reference/368ae3d938c9e-send-an-event-to-pager-duty):
a real HTTP server on 127.0.0.1 (ephemeral port, daemon thread) answering ``POST /v2/enqueue``.

It checks events as PagerDuty does: a 32-character ``routing_key``, ``event_action`` trigger /
acknowledge / resolve, a ``dedup_key`` of at most 255 characters, and for a trigger a ``payload``
with ``summary`` (at most 1024), ``source`` and ``severity`` (critical, error, warning, info). A good
event is answered ``202 {"status": "success", "dedup_key": ...}`` and kept in ``events``; a bad one
``400 {"status": "invalid event", "errors": [...]}``. ``fail_next(times, status)`` answers the next
calls with a 429 or a 5xx (the event is not kept). ``wait_for`` waits for a condition on the calls.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SEVERITIES = {"critical", "error", "warning", "info"}
ACTIONS = {"trigger", "acknowledge", "resolve"}


class FakePagerDuty:
    def __init__(self) -> None:
        self.lock = threading.Condition()
        self.events: list[dict] = []  # accepted
        self.calls: list[tuple[int, dict | None]] = []  # (status answered, body) of every POST
        self._faults: list[int] = []
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v2/enqueue"

    def start(self) -> FakePagerDuty:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):  # noqa: N802 - http.server's name
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status, answer = fake.handle(self.path, raw)
                body = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True, name="fake-pagerduty").start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def fail_next(self, times: int = 1, *, status: int = 429) -> None:
        with self.lock:
            self._faults.extend([status] * times)

    def statuses(self) -> list[int]:
        with self.lock:
            return [s for s, _ in self.calls]

    def accepted(self) -> list[dict]:
        with self.lock:
            return list(self.events)

    def wait_for(self, predicate, timeout: float = 5.0):
        deadline = time.monotonic() + timeout
        with self.lock:
            while not (result := predicate()):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"timed out; PagerDuty calls so far: {self.calls}")
                self.lock.wait(min(remaining, 0.05))
            return result

    def handle(self, path: str, raw: bytes) -> tuple[int, dict]:
        with self.lock:
            try:
                body = json.loads(raw)
            except ValueError:
                body = None
            status, answer = self._answer(path, body)
            self.calls.append((status, body))
            if status == 202:
                self.events.append(body)
            self.lock.notify_all()
            return status, answer

    def _answer(self, path: str, body) -> tuple[int, dict]:
        if path != "/v2/enqueue":
            return 404, {"status": "not found"}
        if self._faults:
            status = self._faults.pop(0)
            return status, {"status": "throttled" if status == 429 else "error", "message": "try again later"}
        errors = []
        if not isinstance(body, dict):
            return 400, {"status": "invalid event", "message": "Event object is invalid", "errors": ["body is not JSON"]}
        if not isinstance(body.get("routing_key"), str) or len(body["routing_key"]) != 32:
            errors.append("'routing_key' must be 32 characters")
        if body.get("event_action") not in ACTIONS:
            errors.append("'event_action' is missing or blank")
        dedup = body.get("dedup_key")
        if dedup is not None and (not isinstance(dedup, str) or len(dedup) > 255):
            errors.append("'dedup_key' must be a string of at most 255 characters")
        if body.get("event_action") == "trigger":
            payload = body.get("payload") or {}
            if not payload.get("summary") or len(payload["summary"]) > 1024:
                errors.append("'payload.summary' is missing or longer than 1024 characters")
            if not payload.get("source"):
                errors.append("'payload.source' is missing or blank")
            if payload.get("severity") not in SEVERITIES:
                errors.append("'payload.severity' must be critical, error, warning or info")
        elif not dedup:
            errors.append("'dedup_key' is required to acknowledge or resolve")
        if errors:
            return 400, {"status": "invalid event", "message": "Event object is invalid", "errors": errors}
        return 202, {"status": "success", "message": "Event processed", "dedup_key": dedup}
