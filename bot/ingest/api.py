"""The JSON API under ``/api/v1``: deploys, incidents and metrics for CI/CD and monitoring.

Every write is idempotent on ``id``: a retry gets the stored record back with ``200`` (a new
record is ``201``). Bad input is ``422`` with one entry per bad field, a wrong token ``401``, a
body over 1 MB ``413``; nothing is stored on any error (one transaction per request).
"""

from __future__ import annotations

import base64
from datetime import datetime, tzinfo
from typing import Any, Callable

from sqlalchemy import func
from sqlmodel import Session, col, select
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot.core import rules
from bot.core.errors import DoraError, ValidationError
from bot.core.inputs import (
    FUTURE_TOLERANCE,
    LIMITS,
    STATUSES,
    check_text,
    normalize_environment,
    normalize_service,
    normalize_severity,
    parse_deploy,
    parse_incident,
    service_key,
)
from bot.core.numbers import MAX_ID, parse_int
from bot.core.timeutil import parse_instant
from bot.ingest.http import (
    HTTPProblem,
    from_domain_error,
    parse_json,
    problem_response,
    read_body,
    require_bearer,
    worker_threads,
)
from bot.ingest.openapi import openapi_document
from bot.ingest.serialize import deploy_document, deploy_link, deploy_public, incident_link, incident_public
from bot.runtime import Runtime
from bot.services import outbox
from bot.services.deploys import write_deploy
from bot.services.incidents import (
    cancel_incident,
    correct_resolution_note,
    correct_time,
    declare_incident,
    link_cause,
    post_update,
    set_severity,
)
from bot.services.lookup import find_incident
from bot.services.metrics import build_metrics
from bot.services.teams import assign_team
from bot.store.db import connection_scope, session_scope
from bot.store.models import Deploy, Incident, Service

MAX_LIMIT = 500  # items per page
MAX_DAYS = 3660  # the longest metrics window, as `/dora days=` takes it
_PATCH_FIELDS = {"acknowledged_at", "resolved_at", "caused_by", "note", "update", "mitigated_at", "severity", "status", "reason"}


def _endpoint(rt: Runtime, work: Callable[[Request, Any], Response], *, body: bool) -> Callable:
    """Auth, body limit, JSON parsing and error mapping around a synchronous handler."""

    async def endpoint(request: Request) -> Response:
        try:
            require_bearer(request, rt.settings.ingest_tokens)
            payload = parse_json(await read_body(request)) if body else None
            return await worker_threads.run(work, request, payload)
        except HTTPProblem as exc:
            return problem_response(exc)
        except DoraError as exc:
            return problem_response(from_domain_error(exc))

    return endpoint


def _instant_or_now(value: Any, name: str, now: datetime) -> datetime:
    if value == "now":
        return now
    if not isinstance(value, str):
        raise ValidationError("must be an ISO-8601 time or \"now\"", field=name)
    try:
        at = parse_instant(value)
    except ValidationError as exc:
        raise ValidationError(exc.message, field=name) from None
    if at > now + FUTURE_TOLERANCE:
        raise ValidationError("is in the future", field=name)
    return at


def _cursor(value: str | None) -> int | None:
    if not value:
        return None
    try:
        return parse_int(base64.urlsafe_b64decode(value.encode("ascii")).decode("ascii"), field="cursor", lo=1, hi=MAX_ID)
    except (ValueError, UnicodeError, ValidationError):  # not base64 of ASCII digits, or out of range
        pass
    raise ValidationError("not a cursor returned by this API (next_cursor of the previous page)", field="cursor")


def _next_cursor(rows: list, limit: int) -> str | None:
    if len(rows) < limit:
        return None
    return base64.urlsafe_b64encode(str(rows[-1].id).encode()).decode()


def _param(request: Request, name: str, default: str | None = None) -> str | None:
    """A query parameter; an empty one (``?days=&end=``, as forms and templates send) is absent."""
    raw = request.query_params.get(name)
    return raw.strip() if raw is not None and raw.strip() else default


def _known_params(request: Request, *allowed: str) -> None:
    """A query parameter the route does not take is a 422 naming it: a typo (``?servce=``) would
    otherwise answer for everything instead of the one service asked for."""
    unknown = sorted(set(request.query_params) - set(allowed))
    if unknown:
        shown = ", ".join(allowed)
        raise ValidationError(errors=[(name[:60], f"unknown query parameter (this route takes: {shown})") for name in unknown[:10]])


def _limit(request: Request) -> int:
    return parse_int(_param(request, "limit", "50"), field="limit", lo=1, hi=MAX_LIMIT)


def _time_param(request: Request, name: str, tz: tzinfo) -> datetime | None:
    """An ISO-8601 instant; one without an offset is read in ``DORA_TIMEZONE``, as the CLI reads it."""
    raw = _param(request, name)
    if raw is None:
        return None
    try:
        return parse_instant(raw, tz=tz)
    except ValidationError as exc:
        raise ValidationError(exc.message, field=name) from None


def created_with(session: Session, record) -> list[str]:
    """``created_services`` of a stored deploy or incident: its service when the request that
    stored it created the service too (same instant), so a retry answers what the first did."""
    service = session.get(Service, record.service_id)
    if service is None or service.created_at != record.created_at:
        return []
    own, other = (Deploy, Incident) if isinstance(record, Deploy) else (Incident, Deploy)
    first = session.exec(select(func.min(own.id)).where(own.service_id == service.id)).one()
    before = session.exec(
        select(func.count()).select_from(other).where(other.service_id == service.id, other.created_at <= record.created_at)
    ).one()
    return [service.name] if first == record.id and before == 0 else []


def routes(rt: Runtime) -> list[Route]:
    settings = rt.settings

    def post_deploy(request: Request, payload: Any) -> Response:
        now = rt.now()
        if isinstance(payload, dict) and payload.get("type") not in (None, "deploy"):
            raise ValidationError("must be \"deploy\" or absent", field="type")
        data = parse_deploy(payload, now=now)
        with connection_scope(rt.engine) as conn:
            written = write_deploy(
                conn, data, production_environments=settings.production_environments, now=now, source="api", actor="api",
            )
            if not written.created:
                with Session(bind=conn) as session:
                    stored = session.get(Deploy, written.id)
                    body = {**deploy_public(session, stored), "created_services": created_with(session, stored)}
                    return JSONResponse(body, status_code=200)
            if data.team is not None:  # the service joins the team (created if new)
                with Session(bind=conn) as session:
                    assign_team(session, written.service_id, data.team, now=now)
                    session.flush()
        # A new deploy is answered from what was written, after the commit, without reading it back.
        target = written.rollback_target
        body = deploy_document(
            id=written.id, external_id=data.external_id, service=written.service_name or data.service, environment=data.environment,
            version=data.version, deployed_at=data.deployed_at, status=data.status, commits=data.commits,
            rollback_of=deploy_link(target) if target is not None else None, change_failure=data.change_failure,
            url=data.url, note=data.note, source="api", created_at=now,
            fixes=incident_link(written.fixed) if written.fixed is not None else None,
            rework=rules.is_rework(rollback_of=target, fixes=written.fixed, marked_rework=data.rework),
        )
        body["created_services"] = [written.service_name or data.service] if written.created_service else []
        return JSONResponse(body, status_code=201)

    def post_incident(request: Request, payload: Any) -> Response:
        now = rt.now()
        if isinstance(payload, dict) and payload.get("type") not in (None, "incident"):
            raise ValidationError("must be \"incident\" or absent", field="type")
        data = parse_incident(payload, now=now, require_id=False)
        if data.external_id is None:
            raise ValidationError("is required: a unique string, e.g. the PagerDuty or Opsgenie incident id", field="id")
        with session_scope(rt.engine) as session:
            outcome = declare_incident(session, data=data, now=now, source="api", actor="api")
            if outcome.changed:  # its card is queued with it (a retry with the same id queues nothing)
                outbox.announce_incident(session, outcome.incident.id, now=now, default_alert_channel=settings.alert_channel)
            body = incident_public(session, outcome.incident)
            body["created_services"] = created_with(session, outcome.incident)
        return JSONResponse(body, status_code=201 if outcome.changed else 200)

    def patch_incident(request: Request, payload: Any) -> Response:
        now = rt.now()
        if not isinstance(payload, dict) or not payload:
            raise ValidationError(f"send an object with one or more of: {', '.join(sorted(_PATCH_FIELDS))}")
        unknown = sorted(set(payload) - _PATCH_FIELDS)
        if unknown:
            raise ValidationError(errors=[(u, f"unknown field (allowed: {', '.join(sorted(_PATCH_FIELDS))})") for u in unknown])
        ref = request.path_params["incident_id"]
        # Every field is checked before anything is applied (one 422 naming each bad field).
        errors: list[tuple[str | None, str]] = []

        def check(name: str, fn, *args):
            try:
                return fn(*args)
            except ValidationError as exc:
                errors.extend((name, m) for _, m in exc.errors)
                return None

        for name in ("acknowledged_at", "mitigated_at", "resolved_at", "caused_by", "note", "update", "severity", "status", "reason"):
            if name in payload and payload[name] is None:
                errors.append((name, "cannot be null: leave the field out (a time cannot be cleared; an incident is not reopened)"))
        times = {
            name: check(name, _instant_or_now, payload[name], name, now)
            for name in ("acknowledged_at", "mitigated_at", "resolved_at") if payload.get(name) is not None
        }
        update = check("update", check_text, payload.get("update"), "update")
        note = check("note", check_text, payload.get("note"), "note")
        cause = payload.get("caused_by")
        if cause is not None and (isinstance(cause, bool) or not isinstance(cause, (str, int)) or not str(cause).strip()
                                  or len(str(cause)) > LIMITS["id"]):
            errors.append(("caused_by", f"must be a deploy id or D-<number> (a string of at most {LIMITS['id']} characters)"))
        severity = check("severity", normalize_severity, payload["severity"]) if payload.get("severity") is not None else None
        # Cancelling: {"status": "cancelled", "reason": "..."}; the only status an incident is given.
        status = payload.get("status")
        if status is not None and status != rules.CANCELLED:
            errors.append(("status", "the only status to set is \"cancelled\" (with a reason)"))
        reason = None
        if "reason" in payload and payload.get("status") is None:
            errors.append(("reason", "a reason goes with \"status\": \"cancelled\""))
        elif status == rules.CANCELLED:
            raw = payload.get("reason")
            if not isinstance(raw, str) or not raw.strip():
                errors.append(("reason", "say why the incident is cancelled (a false alarm, declared by mistake...)"))
            else:
                reason = check("reason", check_text, raw, "reason")
        if errors:
            raise ValidationError(errors=errors)
        changed = False
        with session_scope(rt.engine) as session:
            incident = find_incident(session, ref, external_first=True)
            iref = f"INC-{incident.id}"
            if cause is not None:
                changed |= link_cause(session, ref=iref, deploy=str(cause).strip(), now=now, actor="api", external_first=True).changed
            if update:
                changed |= post_update(session, ref=iref, text=update, now=now, actor="api").changed
            if severity is not None:
                changed |= set_severity(session, ref=iref, severity=severity, now=now, actor="api").changed
            # Times: a first acknowledgement/mitigation/resolution, a retry of the same instant
            # (nothing changes), or a correction (applied, on the timeline) - never ignored
            # (docs/ingest.md). Mitigated before resolved, so one PATCH may send both.
            if "acknowledged_at" in times:
                changed |= correct_time(
                    session, ref=iref, what="acknowledged", at=times["acknowledged_at"], now=now, actor="api",
                    as_of_now=payload["acknowledged_at"] == "now",
                ).changed
            if "mitigated_at" in times:
                changed |= correct_time(
                    session, ref=iref, what="mitigated", at=times["mitigated_at"], now=now, actor="api",
                    as_of_now=payload["mitigated_at"] == "now",
                ).changed
            resolving = "resolved_at" in times and incident.resolved_at is None
            if "resolved_at" in times:
                changed |= correct_time(
                    session, ref=iref, what="resolved", at=times["resolved_at"], now=now, actor="api", note=note,
                    as_of_now=payload["resolved_at"] == "now",
                ).changed
            if note and not resolving:
                changed |= correct_resolution_note(session, ref=iref, note=note, now=now, actor="api").changed
            if reason is not None:
                changed |= cancel_incident(session, ref=iref, reason=reason, now=now, actor="api").changed
            body = incident_public(session, incident)  # each change queued its card refresh and thread line
        return JSONResponse(body)

    def get_postmortem(request: Request, _: Any) -> Response:
        from bot.services.postmortem import markdown

        with session_scope(rt.engine, write=False) as session:
            incident = find_incident(session, request.path_params["incident_id"], external_first=True)
            text = markdown(session, f"INC-{incident.id}")
        return Response(text, media_type="text/markdown; charset=utf-8")

    def get_metrics(request: Request, _: Any) -> Response:
        _known_params(request, "service", "team", "days", "end")
        days = parse_int(_param(request, "days", "30"), field="days", lo=1, hi=MAX_DAYS)
        end = _time_param(request, "end", settings.tz) or rt.now()
        with session_scope(rt.engine, write=False) as session:
            report = build_metrics(
                session, service=_param(request, "service"), team=_param(request, "team"), days=days, end=end,
                timezone_name=settings.timezone_name, production_environments=settings.production_environments,
            )
        return JSONResponse(report)

    def list_deploys(request: Request, _: Any) -> Response:
        _known_params(request, "service", "environment", "status", "since", "until", "limit", "cursor")
        limit, before = _limit(request), _cursor(_param(request, "cursor"))
        since, until = _time_param(request, "since", settings.tz), _time_param(request, "until", settings.tz)
        with session_scope(rt.engine, write=False) as session:
            query = select(Deploy).join(Service, Service.id == Deploy.service_id)
            if _param(request, "service"):
                query = query.where(Service.key == service_key(normalize_service(_param(request, "service"))))
            if _param(request, "environment"):
                query = query.where(Deploy.environment == normalize_environment(_param(request, "environment")))
            if (status := _param(request, "status")) is not None:
                if status not in STATUSES:
                    raise ValidationError(f"must be one of {', '.join(STATUSES)}", field="status")
                query = query.where(Deploy.status == status)
            if since:
                query = query.where(Deploy.deployed_at >= since)
            if until:
                query = query.where(Deploy.deployed_at < until)
            if before:
                query = query.where(Deploy.id < before)
            rows = list(session.exec(query.order_by(col(Deploy.id).desc()).limit(limit)).all())
            items = [deploy_public(session, d) for d in rows]
        return JSONResponse({"items": items, "next_cursor": _next_cursor(rows, limit)})

    def list_incidents(request: Request, _: Any) -> Response:
        _known_params(request, "service", "state", "since", "until", "limit", "cursor")
        limit, before = _limit(request), _cursor(_param(request, "cursor"))
        since, until = _time_param(request, "since", settings.tz), _time_param(request, "until", settings.tz)
        state = _param(request, "state", "all")
        if state not in ("open", "resolved", "all"):
            raise ValidationError("must be open, resolved or all", field="state")
        with session_scope(rt.engine, write=False) as session:
            query = select(Incident).join(Service, Service.id == Incident.service_id)
            if _param(request, "service"):
                query = query.where(Service.key == service_key(normalize_service(_param(request, "service"))))
            if state == "open":
                query = query.where(col(Incident.resolved_at).is_(None), col(Incident.status).is_(None))
            elif state == "resolved":
                query = query.where(col(Incident.resolved_at).is_not(None))
            if since:
                query = query.where(Incident.started_at >= since)
            if until:
                query = query.where(Incident.started_at < until)
            if before:
                query = query.where(Incident.id < before)
            rows = list(session.exec(query.order_by(col(Incident.id).desc()).limit(limit)).all())
            items = [incident_public(session, i) for i in rows]
        return JSONResponse({"items": items, "next_cursor": _next_cursor(rows, limit)})

    async def openapi(_: Request) -> Response:
        return JSONResponse(openapi_document())

    return [
        Route("/api/v1/deploys", _endpoint(rt, post_deploy, body=True), methods=["POST"]),
        Route("/api/v1/deploys", _endpoint(rt, list_deploys, body=False), methods=["GET"]),
        Route("/api/v1/incidents", _endpoint(rt, post_incident, body=True), methods=["POST"]),
        Route("/api/v1/incidents", _endpoint(rt, list_incidents, body=False), methods=["GET"]),
        Route("/api/v1/incidents/{incident_id}", _endpoint(rt, patch_incident, body=True), methods=["PATCH"]),
        Route("/api/v1/incidents/{incident_id}/postmortem", _endpoint(rt, get_postmortem, body=False), methods=["GET"]),
        Route("/api/v1/metrics", _endpoint(rt, get_metrics, body=False), methods=["GET"]),
        Route("/api/v1/openapi.json", openapi, methods=["GET"]),
    ]
