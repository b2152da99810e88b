"""Request plumbing shared by the ingest routes: bearer tokens, body limits, JSON errors."""

from __future__ import annotations

import hmac
import json
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from bot.core.errors import DoraError, NotFound, StateError, ValidationError

MAX_BODY = 1_000_000  # 1 MB


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


DRAIN_LIMIT = 16 * MAX_BODY


async def read_body(request: Request) -> bytes:
    """The raw body, refusing anything over 1 MB without keeping it in memory.

    A moderately oversized body is read and discarded before answering 413, so that simple
    clients that send the whole body before reading the response see the 413 rather than a
    broken connection; a huge one is refused straight away.
    """
    length = request.headers.get("content-length")
    declared = int(length) if length and length.isdigit() else None
    if declared is not None and declared > DRAIN_LIMIT:
        raise HTTPProblem(413, f"body larger than {MAX_BODY} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size <= MAX_BODY:
            chunks.append(chunk)
        elif size > DRAIN_LIMIT:
            break
    if size > MAX_BODY:
        raise HTTPProblem(413, f"body larger than {MAX_BODY} bytes")
    return b"".join(chunks)


def parse_json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise HTTPProblem(422, "body is not valid JSON", errors=[{"field": None, "message": str(exc)}]) from None
