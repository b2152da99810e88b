"""Alertmanager webhooks (version 4): firing alerts declare incidents, resolved alerts resolve them.

One incident per ``fingerprint`` at a time: Alertmanager repeats a firing notification every
``repeat_interval``, and a flapping alert may come back with a new ``startsAt`` before its
resolution reached us; while that fingerprint's incident is open, both change nothing. The same
alert firing again after its incident was resolved is a new incident (stored with its ``startsAt``,
so a late copy of an old notification is still recognised). Mapping from the product contract: service = label ``service``, else
``job``, else ``alertname``; title = annotation ``summary``, else ``alertname``; severity from label
``severity`` (critical -> sev1, error/high -> sev2, warning -> sev3, else sev4).
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from bot.core.errors import DoraError, ValidationError
from bot.core.inputs import IncidentInput, normalize_environment, normalize_service, outside_title
from bot.core.timeutil import parse_instant
from bot.services.incidents import declare_incident, resolve_incident
from bot.store.models import Incident

log = logging.getLogger(__name__)

SEVERITY = {"critical": "sev1", "error": "sev2", "high": "sev2", "warning": "sev3"}
ZERO_TIME = "0001-01-01T00:00:00Z"


@dataclass
class AlertOutcome:
    declared: list[int] = field(default_factory=list)
    resolved: list[int] = field(default_factory=list)
    unchanged: int = 0
    # One entry per alert that was not applied: {"index", "fingerprint", "field", "reason"}.
    skipped: list[dict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what was adjusted to fit (a long summary)

    def skip(self, index: int, alert: Any, exc: DoraError) -> None:
        where = getattr(exc, "field", None) or f"alerts[{index}]"
        fingerprint = alert.get("fingerprint") if isinstance(alert, dict) and isinstance(alert.get("fingerprint"), str) else None
        self.skipped.append({"index": index, "fingerprint": fingerprint, "field": where, "reason": exc.message})
        log.warning("alertmanager: alert %d (fingerprint %s) skipped: %s: %s", index, fingerprint or "-", where, exc.message)


def _fingerprint(alert: dict) -> str:
    return str(
        alert.get("fingerprint") or hashlib.sha256(repr(sorted((alert.get("labels") or {}).items())).encode()).hexdigest()[:16]
    )[:100]


def _external_id(alert: dict) -> str:
    return f"alertmanager-{_fingerprint(alert)}-{alert.get('startsAt')}"[:200]


def _open_incident(session: Session, alert: dict) -> Incident | None:
    """The unresolved incident this fingerprint declared, whatever ``startsAt`` it had."""
    prefix = f"alertmanager-{_fingerprint(alert)}-"
    return session.exec(
        select(Incident)
        .where(col(Incident.external_id).startswith(prefix, autoescape=True), col(Incident.resolved_at).is_(None))
        .order_by(col(Incident.id).desc())
    ).first()


def _incident_input(index: int, alert: Any, notes: list[str]) -> IncidentInput:
    """One alert as an incident, or a ValidationError naming the alert's bad field."""
    where = f"alerts[{index}]"
    if not isinstance(alert, dict):
        raise ValidationError("must be an object", field=where)
    if alert.get("status") not in ("firing", "resolved"):
        raise ValidationError("status must be firing or resolved", field=f"{where}.status")
    labels, annotations = alert.get("labels") or {}, alert.get("annotations") or {}
    if not isinstance(labels, dict):
        raise ValidationError("must be an object", field=f"{where}.labels")
    if not isinstance(annotations, dict):
        raise ValidationError("must be an object", field=f"{where}.annotations")
    label = next((k for k in ("service", "job", "alertname") if labels.get(k)), None)
    if label is None:
        raise ValidationError("has no service, job or alertname label", field=f"{where}.labels")
    try:
        service = normalize_service(labels[label])
    except ValidationError as exc:
        raise ValidationError(exc.message, field=f"{where}.labels.{label}") from None
    try:
        environment = normalize_environment(labels.get("environment") or None)
    except ValidationError as exc:
        raise ValidationError(exc.message, field=f"{where}.labels.environment") from None
    if not isinstance(alert.get("startsAt"), str):
        raise ValidationError("is required (an RFC 3339 time)", field=f"{where}.startsAt")
    try:
        started_at = parse_instant(alert["startsAt"])
    except ValidationError as exc:
        raise ValidationError(exc.message, field=f"{where}.startsAt") from None
    title = annotations.get("summary") or labels.get("alertname") or "Alert"
    if not isinstance(title, str):
        title = str(title)
    title = outside_title(title, field=f"{where}.annotations.summary", notes=notes)
    return IncidentInput(
        service=service,
        started_at=started_at,
        severity=SEVERITY.get(str(labels.get("severity", "")).lower(), "sev4"),
        title=title or str(labels.get(label)),
        environment=environment,
        external_id=_external_id(alert),
    )


def validate(payload: Any) -> list:
    """The alerts of a version-4 notification; only the envelope is checked here (each alert
    is taken on its own by ``apply_alerts``, so one bad alert never costs its group the others)."""
    if not isinstance(payload, dict) or not isinstance(payload.get("alerts"), list):
        raise ValidationError("not an Alertmanager webhook: expected an object with an `alerts` list", field="alerts")
    if str(payload.get("version", "4")) != "4":
        raise ValidationError(f"unsupported Alertmanager webhook version {payload.get('version')!r} (expected 4)", field="version")
    return payload["alerts"]


def apply_alerts(session: Session, *, alerts: list, now: datetime) -> AlertOutcome:
    """Apply each alert in a savepoint of its own: the good ones are stored, the others listed in
    ``skipped`` with the field and the reason."""
    out = AlertOutcome()
    for index, alert in enumerate(alerts):
        try:
            data = _incident_input(index, alert, out.notes)
            ends = alert.get("endsAt")
            resolved_at = None
            if alert["status"] == "resolved":
                try:
                    resolved_at = parse_instant(ends) if isinstance(ends, str) and not ends.startswith("0001-") else now
                except ValidationError as exc:
                    raise ValidationError(exc.message, field=f"alerts[{index}].endsAt") from None
            with session.begin_nested():
                declared, resolved = _apply(session, alert, data, resolved_at, now)
        except DoraError as exc:
            out.skip(index, alert, exc)
            continue
        if declared is not None:
            out.declared.append(declared)
        if resolved is not None:
            out.resolved.append(resolved)
        if declared is None and resolved is None:
            out.unchanged += 1
    return out


def _apply(
    session: Session, alert: dict, data: IncidentInput, resolved_at: datetime | None, now: datetime
) -> tuple[int | None, int | None]:
    """(incident declared, incident resolved) by one valid alert; None where nothing changed."""
    existing = session.exec(select(Incident).where(Incident.external_id == data.external_id)).first()
    if existing is None:  # a new startsAt: the same alert still open under an earlier one?
        existing = _open_incident(session, alert)
    if resolved_at is None:  # firing
        if existing is not None:
            return None, None
        outcome = declare_incident(session, data=data, now=now, source="alertmanager", actor="alertmanager")
        # not changed: declared at the same moment by an identical notification
        return (outcome.incident.id if outcome.changed else None), None
    declared = None
    if existing is None:
        outcome = declare_incident(session, data=data, now=now, source="alertmanager", actor="alertmanager")
        existing = outcome.incident
        declared = existing.id if outcome.changed else None
    result = resolve_incident(session, ref=f"INC-{existing.id}", now=now, actor="alertmanager", at=max(resolved_at, existing.started_at),
                              note="resolved in Alertmanager")
    return declared, (existing.id if result.changed else None)
