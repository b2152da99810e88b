"""``POST /webhooks/github`` and ``POST /webhooks/alertmanager``.

Each accepted body (signature or token checked) is stored raw before it is parsed; a redelivery
of a processed delivery id answers ``200`` and changes nothing; unknown event types are stored,
answered ``202`` and otherwise ignored.
"""

from __future__ import annotations

import hashlib
import hmac

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot.core.errors import DoraError
from bot.ingest.http import HTTPProblem, from_domain_error, parse_json, problem_response, read_body, require_bearer
from bot.runtime import Runtime
from bot.services import alertmanager, github, outbox
from bot.services.webhooks import process_delivery

GITHUB_EVENTS = {"push", "deployment_status"}


def github_signature_ok(secret: str, body: bytes, header: str | None) -> bool:
    """``X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body>``, compared in constant time."""
    if not header or not header.startswith("sha256="):
        return False
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, header[len("sha256="):])


def routes(rt: Runtime) -> list[Route]:
    settings = rt.settings

    def process(source: str, delivery_id: str, event: str, body: bytes, apply) -> Response:
        """One delivery id is applied once (``process_delivery``); its Slack messages are queued in the same transaction."""
        done = process_delivery(
            rt.engine, source=source, delivery_id=delivery_id, event=event, body=body, now=rt.now(), apply=apply,
        )
        if done.status == "duplicate":
            return JSONResponse({"status": "duplicate", "delivery": delivery_id, "previous": done.previous})
        return JSONResponse({"status": done.status, "delivery": delivery_id, **(done.result or {})}, status_code=200 if done.result is not None else 202)

    async def github_webhook(request: Request) -> Response:
        try:
            if not settings.github_webhook_secret:
                raise HTTPProblem(401, "GitHub webhooks are disabled: set GITHUB_WEBHOOK_SECRET")
            body = await read_body(request)
            if not github_signature_ok(settings.github_webhook_secret, body, request.headers.get("x-hub-signature-256")):
                raise HTTPProblem(401, "bad or missing X-Hub-Signature-256")
            delivery = request.headers.get("x-github-delivery")
            event = request.headers.get("x-github-event") or "unknown"
            if not delivery:
                raise HTTPProblem(400, "missing X-GitHub-Delivery")
            if event == "ping":
                return JSONResponse({"status": "pong"})

            def apply(session):
                if event not in GITHUB_EVENTS:
                    return None, None
                payload = parse_json(body)
                now = rt.now()
                if event == "push":
                    added = github.record_push(session, payload=payload, now=now)
                    return (None if added is None else {"commits": added}), None
                outcome = github.record_deployment_status(
                    session, payload=payload, production_environments=settings.production_environments, now=now
                )
                return (None if outcome is None else {"deploy": outcome.ref, "created": outcome.created}), None

            return await run_in_threadpool(process, "github", delivery, event, body, apply)
        except HTTPProblem as exc:
            return problem_response(exc)
        except DoraError as exc:
            return problem_response(from_domain_error(exc))

    async def alertmanager_webhook(request: Request) -> Response:
        try:
            require_bearer(request, settings.ingest_tokens)
            body = await read_body(request)
            delivery = hashlib.sha256(body).hexdigest()  # Alertmanager sends no id: an identical body is a repeat

            def apply(session):
                alerts = alertmanager.validate(parse_json(body))
                now = rt.now()
                outcome = alertmanager.apply_alerts(session, alerts=alerts, now=now)
                # New cards are queued with the incidents; a resolution queued its own thread line.
                for incident_id in outcome.declared:
                    outbox.announce_incident(session, incident_id, now=now, default_alert_channel=settings.alert_channel)
                result = {
                    "declared": [f"INC-{i}" for i in outcome.declared],
                    "resolved": [f"INC-{i}" for i in outcome.resolved],
                    "unchanged": outcome.unchanged,
                    "skipped": outcome.skipped,  # each alert not applied, with the field and why
                    "notes": outcome.notes,
                }
                # The stored delivery says what was skipped, next to the raw body.
                note = "; ".join(f"skipped {s['field']}: {s['reason']}" for s in outcome.skipped) or None
                return result, note

            return await run_in_threadpool(process, "alertmanager", delivery, "alerts", body, apply)
        except HTTPProblem as exc:
            return problem_response(exc)
        except DoraError as exc:
            return problem_response(from_domain_error(exc))

    return [
        Route("/webhooks/github", github_webhook, methods=["POST"]),
        Route("/webhooks/alertmanager", alertmanager_webhook, methods=["POST"]),
    ]
