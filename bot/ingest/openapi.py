"""The OpenAPI 3.1 document of the ingest API, served at ``GET /api/v1/openapi.json``."""

from __future__ import annotations

from bot import __version__
from bot.core.inputs import LIMITS, MAX_URL, NAME_RE
from bot.core.numbers import MAX_ID
from bot.core.timeutil import RANGE_TEXT
from bot.ingest.bodies import MAX_BODY

# What the server takes, from the same definitions it checks with (bot.core.inputs, timeutil, numbers).
_RANGE = f"An ISO-8601 instant from {RANGE_TEXT}; one without an offset is read in DORA_TIMEZONE (query) or UTC (body)."
_TIME = {"type": "string", "format": "date-time", "description": _RANGE, "examples": ["2026-11-24T10:12:00Z"]}
_NTIME = {"type": ["string", "null"], "format": "date-time", "description": _RANGE}
_NAME = {
    "type": "string", "minLength": 1, "maxLength": 100, "pattern": NAME_RE.pattern,
    "description": "A service name: letters and digits of any script, spaces and . _ - / : @ +; matched case-insensitively,"
    " spaces and - alike (`Checkout API` = `checkout-api`)",
    "examples": ["checkout", "Checkout API", "node:9100"],
}
_ENV = {"type": ["string", "null"], "pattern": "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$", "default": "production",
        "description": "Letters, digits, . _ - (stored lower-case)"}
_ID = {"type": "string", "minLength": 1, "maxLength": LIMITS["id"], "pattern": "\\S",
       "description": "Unique per record and not blank, e.g. the CI run id"}
_REF = {"type": ["string", "null"], "minLength": 1, "maxLength": LIMITS["id"], "pattern": "\\S"}
_CURSOR = {"type": "string", "pattern": "^[A-Za-z0-9_-]+={0,2}$",
           "description": f"Opaque: the next_cursor of the previous page (base64url; it names a position up to {MAX_ID})"}
_LIMIT = {"type": "integer", "minimum": 1, "maximum": 500, "default": 50}
_NSTR = {"type": ["string", "null"]}
# A link to a deploy, as the import format writes it: its `id`, or its D-<n> reference when it has none.
_LINK = {"type": ["string", "null"], "examples": ["gh-run-9912", "D-12"]}
_LINK_REF = {"type": ["string", "null"], "description": "the linked deploy's D-<n> reference", "examples": ["D-12"]}
_ERROR = {
    "type": "object",
    "properties": {
        "error": {"type": "string"},
        "errors": {"type": "array", "items": {"type": "object", "properties": {"field": _NSTR, "message": {"type": "string"}}}},
    },
}


def _resp(description: str, schema: str | None = None) -> dict:
    out: dict = {"description": description}
    if schema:
        out["content"] = {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}}
    return out


_ERRORS = {
    "401": _resp("Missing or wrong bearer token", "Error"),
    "413": _resp(f"Body larger than {MAX_BODY} bytes (1 MB): refused before it is read", "Error"),
    "422": _resp("Invalid input: one entry per bad field; nothing stored", "Error"),
}


def _q(name: str, schema: dict, description: str) -> dict:
    """A query parameter; an empty or blank one (``?days=&end=``, as forms send) counts as absent.
    Parameters a route does not list are refused with 422."""
    return {
        "name": name, "in": "query", "required": False, "allowEmptyValue": True,
        "schema": {"anyOf": [{"type": "string", "pattern": "^\\s*$"}, schema]}, "description": description,
    }


def openapi_document() -> dict:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "dora-bot ingest API",
            "version": __version__,
            "description": "Report deploys and incidents from CI/CD and monitoring; read the four key DORA metrics. "
            "Every write is idempotent on `id`: a retry returns the stored record with 200.",
        },
        "security": [{"bearer": []}],
        "paths": {
            "/api/v1/deploys": {
                "post": {
                    "summary": "Record a deploy",
                    "requestBody": {"required": True,
                                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/DeployIn"}}}},
                    "responses": {"201": _resp("Recorded", "Deploy"),
                                  "200": _resp("Already recorded (retry): the stored deploy", "Deploy"), **_ERRORS},
                },
                "get": {
                    "summary": "List deploys, newest first",
                    "parameters": [
                        _q("service", _NAME, "Only this service"),
                        _q("environment", {**_ENV, "type": "string"}, "Only this environment"),
                        _q("status", {"enum": ["success", "failure"]}, "Only this status"),
                        _q("since", _TIME, "deployed_at >= since"),
                        _q("until", _TIME, "deployed_at < until"),
                        _q("limit", _LIMIT, "Page size (ASCII digits)"),
                        _q("cursor", _CURSOR, "next_cursor of the previous page"),
                    ],
                    "responses": {"200": _resp("A page of deploys", "DeployPage"), "401": _ERRORS["401"], "422": _ERRORS["422"]},
                },
            },
            "/api/v1/incidents": {
                "post": {
                    "summary": "Declare (or backfill) an incident",
                    "requestBody": {"required": True,
                                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/IncidentIn"}}}},
                    "responses": {"201": _resp("Declared", "Incident"), "200": _resp("Already known (retry)", "Incident"), **_ERRORS},
                },
                "get": {
                    "summary": "List incidents, newest first",
                    "parameters": [
                        _q("service", _NAME, "Only this service"),
                        _q("state", {"enum": ["open", "resolved", "all"], "default": "all"}, "Filter by state"),
                        _q("since", _TIME, "started_at >= since"),
                        _q("until", _TIME, "started_at < until"),
                        _q("limit", _LIMIT, "Page size (ASCII digits)"),
                        _q("cursor", _CURSOR, "next_cursor of the previous page"),
                    ],
                    "responses": {"200": _resp("A page of incidents", "IncidentPage"), "401": _ERRORS["401"], "422": _ERRORS["422"]},
                },
            },
            "/api/v1/incidents/{id}": {
                "patch": {
                    "summary": "Acknowledge, resolve, link the cause or post an update",
                    "description": (
                        "A time the incident already has is a retry when it is the same instant (or \"now\") and a"
                        " correction otherwise: applied, checked like a first one, and kept on the timeline. A `note`"
                        " alone corrects a resolved incident's note and is 409 on an unresolved one (docs/ingest.md)."
                    ),
                    "parameters": [{"name": "id", "in": "path", "required": True,
                                    "schema": {"type": "string", "minLength": 1, "maxLength": LIMITS["id"]},
                                    "description": "The incident's id or INC-n"}],
                    "requestBody": {"required": True,
                                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/IncidentPatch"}}}},
                    "responses": {
                        "200": _resp("The incident after the change", "Incident"), "404": _resp("No such incident", "Error"),
                        "409": _resp("A resolution note for an incident that is not resolved", "Error"), **_ERRORS,
                    },
                }
            },
            "/api/v1/incidents/{id}/postmortem": {
                "get": {
                    "summary": "The incident's postmortem draft (Markdown)",
                    "description": "Summary, impact window, time to restore and failed deployment recovery time, the causing"
                                   " deploy with its commits and their lead times, the full timeline, the follow-ups.",
                    "parameters": [{"name": "id", "in": "path", "required": True, "schema": {"type": "string"},
                                    "description": "The incident's id or INC-n"}],
                    "responses": {
                        "200": {"description": "The draft", "content": {"text/markdown": {"schema": {"type": "string"}}}},
                        "401": _ERRORS["401"], "404": _resp("No such incident", "Error"),
                    },
                }
            },
            "/api/v1/metrics": {
                "get": {
                    "summary": "The five key metrics (and time to restore) for a scope",
                    "parameters": [
                        _q("service", _NAME, "One service; all when omitted"),
                        _q("team", _NAME, "One team: the pooled events of its services (not with service)"),
                        _q("days", {"type": "integer", "minimum": 1, "maximum": 3660, "default": 30}, "Window length"),
                        _q("end", _TIME, "Window end (exclusive); default now"),
                    ],
                    "responses": {"200": _resp("The metrics JSON (see the README)", "Metrics"),
                                  "401": _ERRORS["401"], "422": _ERRORS["422"]},
                }
            },
            "/api/v1/gate": {
                "get": {
                    "summary": "May CI deploy this service now? No while it (or `all`) is frozen, or has an open, not mitigated "
                    "incident at or above DORA_GATE_SEVERITY in that environment",
                    "parameters": [
                        {**_q("service", {"type": "string", "maxLength": 100}, "The service about to be deployed"), "required": True},
                        _q("environment", {"type": "string", "default": "production"}, "The environment it goes to"),
                    ],
                    "responses": {
                        "200": _resp("Allowed: {\"allowed\": true}", "Gate"),
                        "423": _resp("Not now: {\"allowed\": false, \"reasons\": [...]}", "Gate"),
                        "401": _ERRORS["401"], "422": _ERRORS["422"],
                    },
                }
            },
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "description": "A token from INGEST_TOKENS"}},
            "schemas": {
                "Error": _ERROR,
                "Commit": {"type": "object", "required": ["sha"],
                           "properties": {"sha": {"type": "string", "pattern": "^[0-9a-fA-F]{4,64}$"}, "committed_at": _NTIME}},
                "DeployIn": {
                    "type": "object",
                    "required": ["id", "service", "deployed_at"],
                    "additionalProperties": False,
                    "properties": {
                        "id": _ID,
                        "service": _NAME,
                        "environment": _ENV,
                        "version": {"type": ["string", "null"], "maxLength": LIMITS["version"]},
                        "deployed_at": _TIME,
                        "status": {"enum": ["success", "failure", None], "default": "success"},
                        "commits": {"type": ["array", "null"], "items": {"$ref": "#/components/schemas/Commit"}},
                        "rollback_of": {**_REF, "description": "id of the deploy this one reverts"},
                        "change_failure": {"type": ["boolean", "null"]},
                        "fixes": {**_REF, "description": "id of the incident this deploy fixes (makes it rework)"},
                        "rework": {"type": ["boolean", "null"],
                                   "description": "an unplanned deploy made because of a production problem (a hotfix)"},
                        "url": {"type": ["string", "null"], "format": "uri", "maxLength": MAX_URL,
                                "description": "an http(s) link with a host; no spaces, quotes, <, > or |"},
                        "note": {"type": ["string", "null"], "maxLength": LIMITS["note"]},
                        "team": {"type": ["string", "null"], "maxLength": 100,
                                 "description": "the team owning the service (created if new; the service moves to it)"},
                    },
                },
                "Deploy": {
                    "type": "object",
                    "properties": {
                        "id": _NSTR, "ref": {"type": "string"}, "service": {"type": "string"}, "environment": {"type": "string"},
                        "version": {"type": "string"}, "deployed_at": _TIME, "status": {"type": "string"},
                        "commits": {"type": "array", "items": {"$ref": "#/components/schemas/Commit"}},
                        "rollback_of": _LINK, "rollback_of_ref": _LINK_REF, "change_failure": {"type": "boolean"},
                        "fixes": _NSTR, "fixes_ref": _NSTR, "rework": {"type": "boolean", "description": "a rollback, a fix or a hotfix"},
                        "created_services": {"type": "array", "items": {"type": "string"},
                                             "description": "services this request created (POST only)"},
                        "url": _NSTR, "note": _NSTR,
                        "source": {"type": "string"}, "created_at": _TIME,
                    },
                },
                "DeployPage": {"type": "object",
                               "properties": {"items": {"type": "array", "items": {"$ref": "#/components/schemas/Deploy"}},
                                              "next_cursor": _NSTR}},
                "IncidentIn": {
                    "type": "object",
                    "required": ["id", "service"],
                    "additionalProperties": False,
                    "properties": {
                        "id": _ID,
                        "service": _NAME,
                        "environment": _ENV,
                        "severity": {"enum": ["sev1", "sev2", "sev3", "sev4", None], "default": "sev3"},
                        "title": {"type": ["string", "null"], "maxLength": LIMITS["title"]},
                        "started_at": {**_NTIME, "description": "Default: now"},
                        "acknowledged_at": _NTIME,
                        "resolved_at": _NTIME,
                        "mitigated_at": {**_NTIME, "description": "Impact over (service restored); not before started_at nor after"
                                                                  " resolved_at. Default with resolved_at: resolved_at"},
                        "status": {"enum": ["cancelled", None], "description": "cancelled: a false alarm; it takes part in no metric"},
                        "not_caused_by_change": {"type": ["boolean", "null"], "description": "answered \"not caused by a deploy\""},
                        "caused_by": {**_REF, "description": "id of the deploy that caused it"},
                        "lead": {"type": ["string", "null"], "pattern": "^[UW][A-Z0-9]{1,20}$",
                                 "description": "the incident lead's Slack user id"},
                    },
                },
                "IncidentPatch": {
                    "type": "object",
                    "additionalProperties": False,
                    "minProperties": 1,
                    "properties": {
                        "acknowledged_at": {"type": "string", "description": f"ISO-8601 ({RANGE_TEXT}) or \"now\""},
                        "resolved_at": {"type": "string", "description": f"ISO-8601 ({RANGE_TEXT}) or \"now\""},
                        "mitigated_at": {"type": "string", "description": f"ISO-8601 ({RANGE_TEXT}) or \"now\": impact over"},
                        "severity": {"enum": ["sev1", "sev2", "sev3", "sev4"]},
                        "status": {"enum": ["cancelled"], "description": "cancel a false alarm; needs reason"},
                        "reason": {"type": "string", "maxLength": LIMITS["reason"], "description": "why it is cancelled"},
                        "caused_by": {"type": "string", "minLength": 1, "maxLength": LIMITS["id"], "pattern": "\\S",
                                      "description": "a deploy id or D-<n>"},
                        "note": {"type": "string", "maxLength": LIMITS["note"]},
                        "update": {"type": "string", "maxLength": LIMITS["update"]},
                    },
                },
                "Incident": {
                    "type": "object",
                    "properties": {
                        "id": _NSTR, "ref": {"type": "string"}, "service": {"type": "string"}, "environment": {"type": "string"},
                        "severity": {"type": "string"}, "title": {"type": "string"},
                        "state": {"enum": ["open", "acknowledged", "mitigated", "resolved", "cancelled"]},
                        "started_at": _TIME, "acknowledged_at": _NTIME, "resolved_at": _NTIME, "mitigated_at": _NTIME,
                        "status": {"enum": ["cancelled", None]}, "cancel_reason": _NSTR, "not_caused_by_change": {"type": "boolean"},
                        "caused_by": _LINK, "caused_by_ref": _LINK_REF,
                        "time_to_restore_seconds": {"type": ["number", "null"]}, "lead": _NSTR, "source": {"type": "string"},
                        "created_at": _TIME,
                        "created_services": {"type": "array", "items": {"type": "string"},
                                             "description": "services this request created (POST only)"},
                    },
                },
                "IncidentPage": {"type": "object",
                                 "properties": {"items": {"type": "array", "items": {"$ref": "#/components/schemas/Incident"}},
                                                "next_cursor": _NSTR}},
                "Gate": {
                    "type": "object",
                    "required": ["allowed", "service", "environment"],
                    "properties": {
                        "allowed": {"type": "boolean"}, "service": {"type": "string"}, "environment": {"type": "string"},
                        "reasons": {"type": "array", "items": {"type": "string"}, "description": "Why not, one sentence each"},
                        "freezes": {"type": "array", "items": {"type": "object", "properties": {
                            "service": {"type": "string", "description": "a service, or all"}, "reason": _NSTR, "until": _NTIME,
                            "by": _NSTR, "since": _TIME}}},
                        "incidents": {"type": "array", "items": {"type": "object", "properties": {
                            "ref": {"type": "string"}, "severity": {"type": "string"}, "title": {"type": "string"}, "started_at": _TIME}}},
                    },
                },
                "Metrics": {"type": "object",
                            "description": "scope, benchmark, deployment_frequency, lead_time, change_failure_rate, deployment_rework_rate,"
                                           " time_to_restore, failed_deployment_recovery_time, mtta (docs/metrics.md)"},
            },
        },
    }
