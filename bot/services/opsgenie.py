"""Opsgenie webhooks: actions ``Create`` / ``Acknowledge`` / ``Close`` declare, acknowledge and
resolve one incident per ``alert.alertId``.

Payload as Opsgenie's Webhook integration documents it
(https://support.atlassian.com/opsgenie/docs/integrate-opsgenie-with-webhook/):
``{"action": "Create", "alert": {"alertId", "message", "tags": [...], "entity", "source",
"priority": "P1", "createdAt": <epoch ms>, "updatedAt": ...}, "source": {...}}``.

* service = tag ``service:<name>``, else ``alert.entity``, else ``alert.source``, through the
  catalogue's one normalisation;
* severity from ``alert.priority``: P1 -> sev1, P2 -> sev2, P3 -> sev3, else sev4;
* started = ``alert.createdAt`` (epoch milliseconds); acknowledged / closed at ``alert.updatedAt``
  (Opsgenie's examples write it in nanoseconds; read by magnitude), else when received.

Other actions (``AddNote``, ``Escalate``...) are stored and ignored.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlmodel import Session

from bot.core.errors import ValidationError
from bot.core.inputs import LIMITS, IncidentInput, normalize_environment, normalize_service, outside_title
from bot.services.github import _object
from bot.services.incident_sources import SourceOutcome, apply_step, by_external_id

ACTIONS = {"Create": "declared", "Acknowledge": "acknowledged", "Close": "resolved"}
PRIORITY = {"p1": "sev1", "p2": "sev2", "p3": "sev3"}
_YEAR_2100_MS = 4_102_444_800_000


def epoch(value: Any, field: str) -> datetime | None:
    """An epoch time in milliseconds (or, by magnitude, micro- or nanoseconds); None when absent."""
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < float("inf"):
        raise ValidationError("must be an epoch time in milliseconds", field=field)  # NaN fails the test too
    for scale in (1, 1000, 1_000_000):  # milliseconds, or by magnitude micro- or nanoseconds
        ms = float(value) / scale
        if ms <= _YEAR_2100_MS:
            return datetime.fromtimestamp(ms / 1000, tz=timezone.utc)
    raise ValidationError("must be an epoch time in milliseconds (before the year 2100)", field=field)


def service_of(alert: dict, notes: list[str]) -> str:
    tags = alert.get("tags") if isinstance(alert.get("tags"), list) else []
    candidates = [("alert.tags", t.split(":", 1)[1]) for t in tags if isinstance(t, str) and t.lower().startswith("service:")]
    candidates += [("alert.entity", alert.get("entity")), ("alert.source", alert.get("source"))]
    problems = []
    for where, value in candidates:
        if not isinstance(value, str) or not value.strip():
            continue
        try:
            return normalize_service(value)
        except ValidationError as exc:
            problems.append(f"{where}: {exc.message}")
    if problems:
        notes.extend(problems)
    raise ValidationError("names no service: add a tag service:<name>, or set entity or source", field="alert.tags")


def apply(session: Session, *, payload: Any, now: datetime) -> SourceOutcome | None:
    payload = _object(payload)
    step = ACTIONS.get(payload.get("action"))
    if step is None:
        return None
    alert = _object(payload, "alert")
    alert_id = alert.get("alertId")
    if not isinstance(alert_id, str) or not alert_id.strip():
        raise ValidationError("is required (the Opsgenie alert id)", field="alert.alertId")
    external_id = f"opsgenie-{alert_id.strip()}"[: LIMITS["id"]]
    at = epoch(alert.get("updatedAt"), "alert.updatedAt") if step != "declared" else None
    existing = by_external_id(session, external_id)
    notes: list[str] = []
    data = None
    if existing is None:
        service = service_of(alert, notes)
        started = epoch(alert.get("createdAt"), "alert.createdAt")
        if started is None:
            notes.append("alert.createdAt: missing, started when received")
        title = alert.get("message")
        if not isinstance(title, str) or not title.strip():
            title = f"Opsgenie alert {alert.get('tinyId') or alert_id}"
            notes.append("alert.message: missing, named after the alert")
        title = outside_title(title, field="alert.message", notes=notes)
        data = IncidentInput(
            service=service,
            started_at=min(started or now, now),
            severity=PRIORITY.get(str(alert.get("priority") or "").strip().lower(), "sev4"),
            title=title,
            environment=normalize_environment(None),
            external_id=external_id,
        )
    out = apply_step(session, step=step, existing=existing, data=data, at=at, now=now, source="opsgenie",
                     note="closed in Opsgenie" if step == "resolved" else None)
    out.notes.extend(notes)
    return out
