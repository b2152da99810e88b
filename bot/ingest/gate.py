"""``GET /api/v1/gate?service=&environment=``: may CI deploy now? (bearer token, as the API)

``200 {"allowed": true, ...}`` or ``423 {"allowed": false, "reasons": [...], "freezes": [...],
"incidents": [...]}`` — 423 Locked, so that ``curl --fail`` stops the pipeline and prints the
reasons (docs/ingest.md). The rule is ``bot.services.gate``.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot.core.errors import ValidationError
from bot.ingest.api import _endpoint
from bot.runtime import Runtime
from bot.services import gate
from bot.store.db import session_scope


def routes(rt: Runtime) -> list[Route]:
    def get_gate(request: Request, _: Any) -> Response:
        q = request.query_params
        unknown = sorted(set(q) - {"service", "environment"})
        if unknown:
            raise ValidationError(errors=[(u, "unknown parameter (allowed: environment, service)") for u in unknown])
        if not (q.get("service") or "").strip():
            raise ValidationError("is required: the service about to be deployed", field="service")
        with session_scope(rt.engine, write=False) as session:
            answer = gate.check(session, service=q["service"], environment=q.get("environment") or None,
                                now=rt.now(), threshold=rt.settings.gate_severity,
                                production_environments=rt.settings.production_environments)
            body = answer.as_json()
        return JSONResponse(body, status_code=200 if answer.allowed else 423)

    return [Route("/api/v1/gate", _endpoint(rt, get_gate, body=False), methods=["GET"])]
