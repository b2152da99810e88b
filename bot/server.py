"""The HTTP server: Slack's endpoint, the ingest API and webhooks, health, readiness and metrics.

Bolt's ``App.dispatch`` is synchronous; it runs in Starlette's thread pool so that one slow
request never blocks the event loop. Bolt answers as soon as a listener calls ``ack()`` and keeps
running the listener in its own worker thread, so Slack always gets its response within 3 s.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import time
from urllib.parse import parse_qs

from slack_bolt import App
from slack_bolt.adapter.starlette.handler import to_bolt_request, to_starlette_response
from sqlalchemy import text
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Match, Route

from bot.core.numbers import is_digits
from bot.ingest.bodies import BodyLimit
from bot.ingest.http import HTTPProblem, problem_response
from bot.ingest.routing import one_route_per_path
from bot.logs import request_id
from bot.runtime import Runtime

READY_CACHE_SECONDS = 10
log = logging.getLogger("bot.server")
SLACK_TOKEN_CACHE_SECONDS = 300


class Readiness:
    """Database reachable, schema current, Slack token accepted; cached so probes stay cheap."""

    def __init__(self, rt: Runtime, slack_client=None):
        self.rt = rt
        self.slack_client = slack_client
        self._db: tuple[float, dict] | None = None
        self._slack: tuple[float, str] | None = None

    def database(self) -> dict:
        now = time.monotonic()
        if self._db and now - self._db[0] < READY_CACHE_SECONDS and all(v == "ok" for v in self._db[1].values()):
            return self._db[1]
        from bot.store.db import schema_status

        checks = {}
        try:
            with self.rt.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            checks["database"] = "ok"
            current, rev, head = schema_status(self.rt.engine)
            checks["schema"] = "ok" if current else f"at {rev or 'no revision (empty)'}, needs {head}: run dora-bot db upgrade"
        except Exception as exc:
            checks["database"] = f"unreachable: {exc.__class__.__name__}"
        self._db = (now, checks)
        return checks

    def slack(self) -> str:
        if self.slack_client is None:
            return "not used"
        identity = self.rt.slack_identity  # the start-up auth.test (bot.slack.identity), retried in the background
        if identity is not None and not identity.known and not identity.check_once():
            return identity.status()
        now = time.monotonic()
        if self._slack and now - self._slack[0] < SLACK_TOKEN_CACHE_SECONDS:
            return self._slack[1]
        try:
            self.slack_client.auth_test()
            result = "ok"
        except Exception as exc:
            error = getattr(getattr(exc, "response", None), "get", lambda _k: None)("error")
            result = f"token not accepted: {error}" if error else f"unreachable: {exc.__class__.__name__}"
        # A token Slack rejected is re-checked at the next probe; a good answer is cached.
        self._slack = (now, result) if result == "ok" else None
        return result

    def check(self) -> tuple[bool, dict]:
        checks = dict(self.database())
        checks["slack"] = self.slack()
        ready = all(v in ("ok", "not used") for v in checks.values())
        return ready, checks


async def _problem(_: Request, exc: HTTPProblem) -> Response:
    """An ``HTTPProblem`` a handler did not catch itself (``BodyTooLarge`` while reading a body)."""
    return problem_response(exc)


SLACK_MAX_AGE = 5 * 60  # Slack's advice: refuse a timestamp more than five minutes away


def slack_request_problem(secret: str | None, headers, body: bytes) -> Response | None:
    """401 for a request Slack did not sign, checked over the raw bytes before Bolt parses
    anything (v0 scheme: https://docs.slack.dev/authentication/verifying-requests-from-slack),
    400 for a signed body that is not UTF-8; None when Bolt may take it (it checks again)."""
    if len(body) < 2000 and parse_qs(body.decode("latin-1")).get("ssl_check") == ["1"]:
        return None  # Slack's certificate check: Bolt answers it (before its own signature check) and runs nothing
    timestamp = headers.get("x-slack-request-timestamp", "")
    signature = headers.get("x-slack-signature", "")
    # A timestamp that is not a whole number (Bolt would raise on it) is simply unsigned.
    if not secret or not is_digits(timestamp) or abs(time.time() - int(timestamp)) > SLACK_MAX_AGE or not signature.isascii():
        return JSONResponse({"error": "invalid request"}, status_code=401)
    expected = "v0=" + hmac.new(secret.encode(), b"v0:" + timestamp.encode() + b":" + body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, signature):
        return JSONResponse({"error": "invalid request"}, status_code=401)
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return JSONResponse({"error": "body is not UTF-8 text"}, status_code=400)
    return None


def _route_label(app: Starlette, scope) -> str:
    """The path template of the route that fully matched the request, else ``other``."""
    routed = scope.get("route")  # the route Starlette's router picked (a full or a partial match)
    candidates = (routed,) if routed is not None else app.routes
    for route in candidates:
        match, _ = route.matches(scope)
        if match == Match.FULL:
            return route.path
    return "other"


class RequestMiddleware:
    """Request ids (``X-Request-Id`` in and out, in every log line) and per-route HTTP metrics."""

    def __init__(self, app, telemetry):
        self.app = app
        self.telemetry = telemetry
        self.router_app: Starlette | None = None

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        incoming = dict(scope.get("headers") or []).get(b"x-request-id", b"").decode("latin-1")[:64]
        rid = incoming if incoming and incoming.replace("-", "").isalnum() else os.urandom(8).hex()
        token = request_id.set(rid)
        status = {"code": 500}
        started = time.perf_counter()

        async def send_with_id(message):
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                message.setdefault("headers", []).append((b"x-request-id", rid.encode()))
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            request_id.reset(token)
            if self.telemetry is not None and self.router_app is not None:
                route = _route_label(self.router_app, scope)
                self.telemetry.http_requests.labels(route, scope["method"], str(status["code"])).inc()
                self.telemetry.http_latency.labels(route).observe(time.perf_counter() - started)


def create_asgi_app(rt: Runtime, bolt: App | None, *, readiness: Readiness | None = None):
    """Slack's endpoint (when a Bolt app is given), ingest, webhooks, /healthz, /readyz, /metrics."""
    from bot.ingest import api, gate, sources
    from bot.services import lifecycle

    lifecycle.install(rt.engine, rt.settings)  # what this deployment does with an incident change (paging, channels)
    if readiness is None:
        probe_client = None
        if bolt is not None or rt.settings.slack_bot_token:
            from slack_sdk import WebClient

            # No retries and a short timeout: a probe must answer quickly.
            probe_client = WebClient(
                token=rt.settings.slack_bot_token, base_url=rt.settings.slack_api_url, timeout=3, retry_handlers=[]
            )
        readiness = Readiness(rt, probe_client)

    async def slack_events(request: Request) -> Response:
        body = await request.body()  # at most the route's limit (bot.ingest.bodies.BodyLimit)
        refused = slack_request_problem(rt.settings.slack_signing_secret, request.headers, body)
        if refused is not None:
            return refused
        try:
            bolt_request = to_bolt_request(request, body)
        except Exception as exc:  # signed, yet not a form or JSON object Bolt can read
            log.warning("a signed request to /slack/events is not a Slack payload (%s)", exc.__class__.__name__)
            return JSONResponse({"error": "body is not a Slack request"}, status_code=400)
        bolt_response = await run_in_threadpool(bolt.dispatch, bolt_request)
        return to_starlette_response(bolt_response)

    async def healthz(_: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(_: Request) -> Response:
        ready, checks = await run_in_threadpool(readiness.check)
        return JSONResponse({"status": "ready" if ready else "not ready", "checks": checks}, status_code=200 if ready else 503)

    async def metrics(_: Request) -> Response:
        if rt.telemetry is None:
            return Response("metrics are not enabled in this process\n", status_code=404, media_type="text/plain")
        from prometheus_client import CONTENT_TYPE_LATEST

        return Response(rt.telemetry.exposition(), media_type=CONTENT_TYPE_LATEST)

    routes = [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        *api.routes(rt),
        *gate.routes(rt),
        *sources.routes(rt),
    ]
    if bolt is not None:
        routes.append(Route("/slack/events", slack_events, methods=["POST"]))
    app = Starlette(routes=one_route_per_path(routes), exception_handlers={HTTPProblem: _problem})
    wrapped = RequestMiddleware(BodyLimit(app), rt.telemetry)
    wrapped.router_app = app
    return wrapped
