"""Request plumbing shared by the ingest routes: bearer tokens, body limits, JSON errors."""

from __future__ import annotations

import asyncio
import contextvars
import hmac
import queue
import threading
from typing import Any, Callable, TypeVar

from starlette.requests import Request
from starlette.responses import JSONResponse

from bot.core import jsontext
from bot.core.errors import DoraError, NotFound, StateError, ValidationError

T = TypeVar("T")


class HTTPProblem(Exception):
    def __init__(self, status: int, message: str, *, errors: list[dict] | None = None, headers: dict | None = None):
        super().__init__(message)
        self.status, self.message, self.errors, self.headers = status, message, errors, headers


def problem_response(exc: HTTPProblem) -> JSONResponse:
    body: dict[str, Any] = {"error": exc.message}
    if exc.errors:
        body["errors"] = exc.errors
    return JSONResponse(body, status_code=exc.status, headers=exc.headers)


def from_domain_error(exc: DoraError) -> HTTPProblem:
    if isinstance(exc, ValidationError):
        return HTTPProblem(422, "invalid input", errors=[{"field": f, "message": m} for f, m in exc.errors])
    if isinstance(exc, NotFound):
        return HTTPProblem(404, exc.message)
    if isinstance(exc, StateError):
        return HTTPProblem(409, exc.message)
    return HTTPProblem(400, exc.message)


def token_matches(presented: str, tokens: tuple[str, ...]) -> bool:
    """Constant-time comparison against every configured token."""
    ok = False
    for token in tokens:
        ok |= hmac.compare_digest(presented.encode(), token.encode())
    return ok


def require_bearer(request: Request, tokens: tuple[str, ...]) -> None:
    header = request.headers.get("authorization", "")
    scheme, _, presented = header.partition(" ")
    if not tokens:
        raise HTTPProblem(401, "the ingest API is disabled: set INGEST_TOKENS", headers={"WWW-Authenticate": "Bearer"})
    if scheme.lower() != "bearer" or not presented or not token_matches(presented.strip(), tokens):
        raise HTTPProblem(401, "missing or wrong bearer token", headers={"WWW-Authenticate": "Bearer"})


async def read_body(request: Request) -> bytes:
    """The raw body, bounded by the route's limit: ``bot.ingest.bodies.BodyLimit`` answers 413
    for a declared length over it and cuts a streamed body off there."""
    return await request.body()


def parse_json(body: bytes | str) -> Any:
    """The body as JSON (``bot.core.jsontext``: syntax, depth, NUL, lone surrogates), else a 422 naming where."""
    try:
        return jsontext.loads(body)
    except ValidationError as exc:
        raise HTTPProblem(
            422, "body is not valid JSON" if exc.field is None else "body refused",
            errors=[{"field": f, "message": m} for f, m in exc.errors],
        ) from None


class WorkerThreads:
    """Run blocking handlers in worker threads, off the event loop.

    What Starlette's ``run_in_threadpool`` (anyio) does, with a cheaper hand-off: the call goes
    in through a ``SimpleQueue`` and its outcome comes back with ``call_soon_threadsafe``; anyio's
    capacity limiter, cancel scope and extra loop turn cost a deploy request about as much again.
    As with anyio, the handler sees the request's context variables (the request id in log
    lines), at most ``max_workers`` run at once (anyio's default), and a cancelled request (a
    shutdown that stops waiting) still lets its handler finish its unit of work.
    """

    def __init__(self, max_workers: int = 40, name: str = "dora-worker"):
        self.max_workers = max_workers
        self.name = name
        self._calls: queue.SimpleQueue = queue.SimpleQueue()
        self._idle = threading.Semaphore(0)
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    async def run(self, func: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._calls.put((loop, future, contextvars.copy_context(), func, args))
        if not self._idle.acquire(blocking=False):
            self._add_thread()
        try:
            return await asyncio.shield(future)
        except asyncio.CancelledError:
            if not future.done():
                await asyncio.wait((future,))
            raise

    def _add_thread(self) -> None:
        with self._lock:
            if len(self._threads) < self.max_workers:
                thread = threading.Thread(target=self._work, name=f"{self.name}-{len(self._threads)}", daemon=True)
                self._threads.append(thread)
                thread.start()

    def _work(self) -> None:
        while True:
            loop, future, context, func, args = self._calls.get()
            try:
                outcome, error = context.run(func, *args), None
            except BaseException as exc:
                outcome, error = None, exc
            try:
                loop.call_soon_threadsafe(_settle, future, outcome, error)
            except RuntimeError:  # the loop is closed: nobody waits for this outcome any more
                pass
            del loop, future, context, func, args, outcome, error
            self._idle.release()


def _settle(future: asyncio.Future, outcome: Any, error: BaseException | None) -> None:
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(outcome)


worker_threads = WorkerThreads()
