"""The HTTP server: Slack's endpoint, health, the ingest API and webhooks, on one ASGI app.

Bolt's ``App.dispatch`` is synchronous; it runs in Starlette's thread pool so that one slow
request never blocks the event loop. Bolt answers as soon as a listener calls ``ack()`` and keeps
running the listener in its own worker thread, so Slack always gets its response within 3 s.
"""

from __future__ import annotations

from slack_bolt import App
from slack_bolt.adapter.starlette.handler import to_bolt_request, to_starlette_response
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot.runtime import Runtime

MAX_SLACK_BODY = 1_000_000


def create_asgi_app(rt: Runtime, bolt: App | None) -> Starlette:
    """Slack's endpoint (when a Bolt app is given), health, the ingest API and webhooks."""
    from bot.ingest import api, webhooks

    async def slack_events(request: Request) -> Response:
        body = await request.body()
        if len(body) > MAX_SLACK_BODY:
            return Response("request body too large", status_code=413)
        bolt_response = await run_in_threadpool(bolt.dispatch, to_bolt_request(request, body))
        return to_starlette_response(bolt_response)

    async def healthz(_: Request) -> Response:
        return JSONResponse({"status": "ok"})

    routes = [Route("/healthz", healthz, methods=["GET"]), *api.routes(rt), *webhooks.routes(rt)]
    if bolt is not None:
        routes.append(Route("/slack/events", slack_events, methods=["POST"]))
    return Starlette(routes=routes)
