"""The one body-size gate for every route, and GitHub's large bodies spooled in bounded memory.

``BodyLimit`` wraps the whole ASGI app (Slack's ``/slack/events``, the API, the webhooks, health):

- a declared ``Content-Length`` over the route's limit is answered ``413`` before one byte of the
  body is read (uvicorn then discards what the client still sends, without keeping it);
- a body without a length (chunked) is counted as it is read and cut off at the limit: the
  handler reading it gets ``BodyTooLarge`` (a ``413``) and never holds more than the limit.

Limits: GitHub caps webhook payloads at 25 MB ("Payloads are capped at 25 MB",
https://docs.github.com/en/webhooks/webhook-events-and-payloads#payload-cap); everything else
(Slack's requests, the ingest API, Alertmanager) at 1 MB, far above what they send.
"""

from __future__ import annotations

import hmac
import json
import tempfile
import threading
from contextlib import contextmanager
from typing import Any

from bot.core.numbers import is_digits
from bot.ingest.http import HTTPProblem

MAX_BODY = 1_000_000  # 1 MB
GITHUB_MAX_BODY = 25 * 1024 * 1024  # GitHub's payload cap
SPOOL_IN_MEMORY = 1024 * 1024  # a spooled body beyond this goes to a temporary file
ROUTE_LIMITS = {"/webhooks/github": GITHUB_MAX_BODY}


def limit_for(path: str) -> int:
    return ROUTE_LIMITS.get(path, MAX_BODY)


def _mb(limit: int) -> str:
    return f"{limit / 1_000_000:g} MB" if limit % 1_000_000 == 0 else f"{limit / (1024 * 1024):g} MiB"


class BodyTooLarge(HTTPProblem):
    def __init__(self, limit: int):
        super().__init__(413, f"body larger than {_mb(limit)} ({limit} bytes)")


class BodyLimit:
    """ASGI middleware: the size gate (see the module docstring)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit = limit_for(scope["path"])
        declared = None
        for name, value in scope.get("headers") or ():
            if name == b"content-length":
                text = value.decode("latin-1").strip()
                # uvicorn has already refused a malformed length; an absurd one is over any limit
                declared = int(text) if is_digits(text) else limit + 1
        if declared is not None and declared > limit:
            return await _send_problem(send, BodyTooLarge(limit))
        seen = 0

        async def counted():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge(limit)
            return message

        await self.app(scope, counted, send)


async def _send_problem(send, exc: HTTPProblem) -> None:
    body = json.dumps({"error": exc.message}).encode()
    await send({
        "type": "http.response.start", "status": exc.status,
        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
    })
    await send({"type": "http.response.body", "body": body})


class SpooledBody:
    """A request body kept in a temporary file past ``SPOOL_IN_MEMORY`` bytes, with its HMAC
    computed while it streamed in: a signature is checked before the body is ever held whole."""

    def __init__(self, key: bytes, digestmod: str = "sha256"):
        self.file = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY)
        self.mac = hmac.new(key, digestmod=digestmod)
        self.size = 0

    async def fill(self, request: Any) -> SpooledBody:
        async for chunk in request.stream():  # the gate cuts this off at the route's limit
            if chunk:
                self.mac.update(chunk)
                self.file.write(chunk)
                self.size += len(chunk)
        return self

    def signature_ok(self, presented: str | None, prefix: str = "sha256=") -> bool:
        if not presented or not presented.isascii() or not presented.startswith(prefix):
            return False
        return hmac.compare_digest(self.mac.hexdigest(), presented[len(prefix):])

    def text(self) -> str:
        """The body as text, read once (``raw_text``'s checks); the file is closed."""
        try:
            self.file.seek(0)
            return raw_text(self.file.read())
        finally:
            self.close()

    def close(self) -> None:
        self.file.close()


_LARGE_BODY = threading.BoundedSemaphore(1)


@contextmanager
def large_body_turn(size: int):
    """Bodies over ``SPOOL_IN_MEMORY`` are read into memory (text, parsed, stored) one at a time:
    a burst of 25 MB pushes costs the memory of one, not of all of them at once."""
    if size <= SPOOL_IN_MEMORY:
        yield
        return
    with _LARGE_BODY:
        yield


def raw_text(body: bytes) -> str:
    """A webhook body as the text stored raw: UTF-8 without NUL characters, else a 400 naming why."""
    if b"\x00" in body:
        raise HTTPProblem(400, "body holds a NUL byte: it is not a JSON document")
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise HTTPProblem(400, f"body is not UTF-8 text (byte {exc.start})") from None
