"""The webhook sources, one table: each row names its path, how a request is verified, which key
makes a delivery idempotent, and the handler that applies it.

Every source gets the same treatment from ``route()``: the body is read (at most the route's limit:
``bot.ingest.bodies``; GitHub's is spooled), the request verified (401 otherwise, nothing stored),
its idempotency key taken (4xx when missing, nothing stored), then the raw body is stored and
applied once in ONE transaction with the Slack messages it causes
(``bot.services.webhooks.process_delivery``). A delivery whose key was processed before answers
``200 {"status": "duplicate"}`` and changes nothing; an event the source does not map is stored and
answered ``202``; a body that cannot be applied is stored as failed (for replay) and answered 4xx,
with nothing else written.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Any, Callable

from sqlmodel import Session
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot.config import Settings
from bot.core import jsontext
from bot.core.errors import DoraError, ValidationError
from bot.ingest.bodies import SpooledBody, large_body_turn, raw_text
from bot.ingest.http import HTTPProblem, from_domain_error, parse_json, problem_response, read_body, require_bearer, token_matches
from bot.runtime import Runtime
from bot.services import alertmanager, argocd, github, gitlab, opsgenie, outbox, pagerduty_webhook
from bot.services.lookup import created_services
from bot.services.webhooks import process_delivery

MAX_KEY = 200  # webhook_delivery.delivery_id
Applied = tuple[dict | None, str | None]  # (result, or None for an event that is ignored; a note for the stored row)


@dataclass(frozen=True)
class Delivery:
    """One verified request: its idempotency key, its event type, the raw body."""

    key: str
    event: str
    body: bytes | str  # GitHub's (spooled) body is handed on as the text stored: one copy, not two


@dataclass(frozen=True)
class Source:
    name: str  # webhook_delivery.source
    path: str
    verify: Callable[[Settings, Request, bytes], None]  # raises HTTPProblem(401)
    key: Callable[[Request, bytes], tuple[str, str]]  # (idempotency key, event); HTTPProblem(400) when missing
    handle: Callable[[Runtime, Session, Delivery], Applied]
    secrets: Callable[[Settings], tuple[str | None, ...]]  # what must never reach a log line
    answer: Callable[[Delivery], Response | None] = lambda _d: None  # answered before storing (GitHub's ping)
    # The HMAC key of a source whose bodies may be large (GitHub, up to 25 MB): the body is spooled
    # to a temporary file while its HMAC is computed, so an unsigned one is never held in memory.
    spool_key: Callable[[Settings], str | None] | None = None


# --- verification -------------------------------------------------------------------------

def github_signature_ok(secret: str, body: bytes, header: str | None) -> bool:
    """``X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body>``, compared in constant time."""
    if not header or not header.isascii() or not header.startswith("sha256="):
        return False
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, header[len("sha256="):])


def pagerduty_signature_ok(secret: str, body: bytes, header: str | None) -> bool:
    """``X-PagerDuty-Signature: v1=<hex HMAC-SHA256 of the raw body>``; while a secret is rotated
    PagerDuty lists several, comma-separated, and any one matching is enough
    (https://developer.pagerduty.com/docs/webhooks/webhook-signatures/)."""
    if not header or not header.isascii():
        return False
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    ok = False
    for part in header.split(","):
        version, _, digest = part.strip().partition("=")
        if version == "v1" and digest:
            ok |= hmac.compare_digest(expected, digest)
    return ok


def _verify_github(settings: Settings, request: Request, body: bytes | SpooledBody) -> None:
    if not settings.github_webhook_secret:
        raise HTTPProblem(401, "GitHub webhooks are disabled: set GITHUB_WEBHOOK_SECRET")
    header = request.headers.get("x-hub-signature-256")
    ok = body.signature_ok(header) if isinstance(body, SpooledBody) else github_signature_ok(settings.github_webhook_secret, body, header)
    if not ok:
        raise HTTPProblem(401, "bad or missing X-Hub-Signature-256")


def _verify_gitlab(settings: Settings, request: Request, body: bytes) -> None:
    """GitLab sends the webhook's secret token as is in ``X-Gitlab-Token``
    (https://docs.gitlab.com/user/project/integrations/webhooks/#validate-requests-with-a-secret-token)."""
    if not settings.gitlab_webhook_token:
        raise HTTPProblem(401, "GitLab webhooks are disabled: set GITLAB_WEBHOOK_TOKEN")
    presented = request.headers.get("x-gitlab-token")
    if not presented or not token_matches(presented, (settings.gitlab_webhook_token,)):
        raise HTTPProblem(401, "bad or missing X-Gitlab-Token")


def _verify_pagerduty(settings: Settings, request: Request, body: bytes) -> None:
    if not settings.pagerduty_webhook_secret:
        raise HTTPProblem(401, "PagerDuty webhooks are disabled: set PAGERDUTY_WEBHOOK_SECRET")
    if not pagerduty_signature_ok(settings.pagerduty_webhook_secret, body, request.headers.get("x-pagerduty-signature")):
        raise HTTPProblem(401, "bad or missing X-PagerDuty-Signature")


def _verify_bearer(settings: Settings, request: Request, body: bytes) -> None:
    require_bearer(request, settings.ingest_tokens)


# --- idempotency keys ---------------------------------------------------------------------

def _header_key(header: str, event_header: str | None = None, default_event: str = "unknown"):
    def key(request: Request, body: bytes) -> tuple[str, str]:
        value = request.headers.get(header)
        if not value or not value.strip():
            raise HTTPProblem(400, f"missing {header}")
        event = (request.headers.get(event_header) if event_header else None) or default_event
        if not value.isprintable() or len(value.strip()) > MAX_KEY:
            raise HTTPProblem(400, f"{header} must be printable text of at most {MAX_KEY} characters")
        if not event.isprintable() or len(event) > 64:
            raise HTTPProblem(400, f"{event_header} must be printable text of at most 64 characters")
        return value.strip(), event
    return key


def _body_hash(event: str):
    """For senders that give no delivery id: an identical body is a repeat."""
    def key(request: Request, body: bytes) -> tuple[str, str]:
        return hashlib.sha256(body).hexdigest(), event
    return key


def _json_or_none(body: bytes) -> Any:
    """The body as JSON for picking its key, or None (the handler's ``parse_json`` says what is wrong)."""
    try:
        return jsontext.loads(body)
    except ValidationError:
        return None


def _argocd_key(request: Request, body: bytes) -> tuple[str, str]:
    payload = _json_or_none(body)
    key = argocd.delivery_key(payload) if isinstance(payload, dict) else None
    return key or hashlib.sha256(body).hexdigest(), "app.operation"


def _pagerduty_key(request: Request, body: bytes) -> tuple[str, str]:
    """A v3 webhook's ``event.id`` is the same for every retry of that event."""
    payload = _json_or_none(body)
    event = payload.get("event") if isinstance(payload, dict) else None
    if isinstance(event, dict) and isinstance(event.get("id"), str) and event["id"].strip():
        return event["id"].strip(), str(event.get("event_type") or "unknown")[:64]
    return hashlib.sha256(body).hexdigest(), "unknown"


def _opsgenie_key(request: Request, body: bytes) -> tuple[str, str]:
    payload = _json_or_none(body)
    action = payload.get("action") if isinstance(payload, dict) else None
    return hashlib.sha256(body).hexdigest(), str(action or "unknown")[:64]


# --- handlers -----------------------------------------------------------------------------

def _announce(rt: Runtime, session: Session, declared: list[int], now) -> None:
    """New incidents' cards are queued with the incidents."""
    for incident_id in declared:
        outbox.announce_incident(session, incident_id, now=now, default_alert_channel=rt.settings.alert_channel)


def _github(rt: Runtime, session: Session, d: Delivery) -> Applied:
    if d.event not in github.EVENTS:
        return None, None
    payload = parse_json(d.body)
    now = rt.now()
    if d.event == "push":
        added = github.record_push(session, payload=payload, now=now)
        return (None if added is None else {"commits": added}), None
    outcome = github.record_deployment_status(
        session, payload=payload, production_environments=rt.settings.production_environments, now=now
    )
    return (None if outcome is None else {"deploy": outcome.ref, "created": outcome.created}), None


def _alertmanager(rt: Runtime, session: Session, d: Delivery) -> Applied:
    alerts = alertmanager.validate(parse_json(d.body))
    now = rt.now()
    outcome = alertmanager.apply_alerts(session, alerts=alerts, now=now)
    _announce(rt, session, outcome.declared, now)  # a resolution queued its own thread line
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


def _gitlab(rt: Runtime, session: Session, d: Delivery) -> Applied:
    if d.event not in gitlab.EVENTS:
        return None, None
    payload = parse_json(d.body)
    now = rt.now()
    if d.event == "Push Hook":
        added = gitlab.record_push(session, payload=payload, now=now)
        if added is None:
            return None, None
        missing = gitlab.unlisted(payload)
        note = f"GitLab listed {len(payload['commits'])} of the push's {payload['total_commits_count']} commits" if missing else None
        return {"commits": added, "notes": [note] if note else []}, note
    outcome = gitlab.record_deployment(session, payload=payload, production_environments=rt.settings.production_environments, now=now)
    return (None if outcome is None else {"deploy": outcome.ref, "created": outcome.created}), None


def _argocd(rt: Runtime, session: Session, d: Delivery) -> Applied:
    outcome = argocd.record_operation(
        session, payload=parse_json(d.body), production_environments=rt.settings.production_environments, now=rt.now()
    )
    if outcome is None:
        return None, None
    return {"deploy": outcome.ref, "created": outcome.created, "deploy_status": outcome.deploy.status}, None


def _incident_source(module):
    def handle(rt: Runtime, session: Session, d: Delivery) -> Applied:
        now = rt.now()
        outcome = module.apply(session, payload=parse_json(d.body), now=now)
        if outcome is None:
            return None, None
        _announce(rt, session, outcome.declared, now)
        return outcome.as_result(), outcome.note()
    return handle


def _github_answer(d: Delivery) -> Response | None:
    return JSONResponse({"status": "pong"}) if d.event == "ping" else None


SOURCES: tuple[Source, ...] = (
    Source("github", "/webhooks/github", _verify_github, _header_key("X-GitHub-Delivery", "X-GitHub-Event"),
           _github, lambda s: (s.github_webhook_secret,), answer=_github_answer, spool_key=lambda s: s.github_webhook_secret),
    Source("alertmanager", "/webhooks/alertmanager", _verify_bearer, _body_hash("alerts"),
           _alertmanager, lambda s: s.ingest_tokens),
    Source("gitlab", "/webhooks/gitlab", _verify_gitlab, _header_key("X-Gitlab-Event-UUID", "X-Gitlab-Event"),
           _gitlab, lambda s: (s.gitlab_webhook_token,)),
    Source("argocd", "/webhooks/argocd", _verify_bearer, _argocd_key, _argocd, lambda s: s.ingest_tokens),
    Source("pagerduty", "/webhooks/pagerduty", _verify_pagerduty, _pagerduty_key,
           _incident_source(pagerduty_webhook), lambda s: (s.pagerduty_webhook_secret,)),
    Source("opsgenie", "/webhooks/opsgenie", _verify_bearer, _opsgenie_key,
           _incident_source(opsgenie), lambda s: s.ingest_tokens),
)


def route(rt: Runtime, source: Source) -> Route:
    def applying(session, delivery: Delivery):
        result, note = source.handle(rt, session, delivery)
        if result is not None:  # the services this delivery created (the catalogue reports them)
            result = {**result, "created_services": created_services(session)}
        return result, note

    def process(delivery: Delivery) -> Response:
        done = process_delivery(
            rt.engine, source=source.name, delivery_id=delivery.key, event=delivery.event[:64], body=delivery.body,
            now=rt.now(), apply=lambda session: applying(session, delivery),
        )
        if done.status == "duplicate":
            return JSONResponse({"status": "duplicate", "delivery": delivery.key, "previous": done.previous})
        return JSONResponse(
            {"status": done.status, "delivery": delivery.key, **(done.result or {})},
            status_code=200 if done.result is not None else 202,
        )

    def process_spooled(key: str, event: str, spooled: SpooledBody) -> Response:
        with large_body_turn(spooled.size):  # one big body in memory at a time
            return process(Delivery(key=key, event=event, body=spooled.text()))

    async def endpoint(request: Request) -> Response:
        spooled = None
        try:
            spool_key = source.spool_key(rt.settings) if source.spool_key is not None else None
            if spool_key:
                spooled = await SpooledBody(spool_key.encode()).fill(request)
                source.verify(rt.settings, request, spooled)
                key, event = source.key(request, b"")  # a header key: the body is not needed for it
                early = source.answer(Delivery(key=key, event=event, body=b""))
                if early is not None:
                    return early
                return await run_in_threadpool(process_spooled, key, event, spooled)
            body = await read_body(request)  # at most the route's limit (bot.ingest.bodies.BodyLimit)
            source.verify(rt.settings, request, body)
            key, event = source.key(request, body)
            raw_text(body)  # stored raw: UTF-8 without NUL bytes, else a 400 naming why
            delivery = Delivery(key=key, event=event, body=body)
            early = source.answer(delivery)
            if early is not None:
                return early
            return await run_in_threadpool(process, delivery)
        except HTTPProblem as exc:
            return problem_response(exc)
        except DoraError as exc:
            return problem_response(from_domain_error(exc))
        finally:
            if spooled is not None:
                spooled.close()

    endpoint.__name__ = f"{source.name}_webhook"
    return Route(source.path, endpoint, methods=["POST"])


def routes(rt: Runtime) -> list[Route]:
    return [route(rt, source) for source in SOURCES]
