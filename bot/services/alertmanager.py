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
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from bot.core.errors import ValidationError
from bot.core.inputs import IncidentInput, normalize_service
from bot.core.timeutil import parse_instant
from bot.services.incidents import declare_incident, resolve_incident
from bot.store.models import Incident

SEVERITY = {"critical": "sev1", "error": "sev2", "high": "sev2", "warning": "sev3"}
ZERO_TIME = "0001-01-01T00:00:00Z"


@dataclass
class AlertOutcome:
    declared: list[int] = field(default_factory=list)
    resolved: list[int] = field(default_factory=list)
    unchanged: int = 0


def _fingerprint(alert: dict) -> str:
    return str(alert.get("fingerprint") or hashlib.sha256(repr(sorted((alert.get("labels") or {}).items())).encode()).hexdigest()[:16])[:100]


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


def _incident_input(alert: dict) -> IncidentInput:
    labels = alert.get("labels") or {}
    annotations = alert.get("annotations") or {}
    service = labels.get("service") or labels.get("job") or labels.get("alertname")
    title = annotations.get("summary") or labels.get("alertname") or "Alert"
    return IncidentInput(
        service=normalize_service(service),
        started_at=parse_instant(alert["startsAt"]),
        severity=SEVERITY.get(str(labels.get("severity", "")).lower(), "sev4"),
        title=str(title)[:300],
        environment=str(labels.get("environment") or "production").lower()[:64],
        external_id=_external_id(alert),
    )


def validate(payload: Any) -> list[dict]:
    if not isinstance(payload, dict) or not isinstance(payload.get("alerts"), list):
        raise ValidationError("not an Alertmanager webhook: expected an object with an `alerts` list", field="alerts")
    if str(payload.get("version", "4")) != "4":
        raise ValidationError(f"unsupported Alertmanager webhook version {payload.get('version')!r} (expected 4)", field="version")
    alerts = []
    for i, alert in enumerate(payload["alerts"]):
        if not isinstance(alert, dict) or not isinstance(alert.get("startsAt"), str) or alert.get("status") not in ("firing", "resolved"):
            raise ValidationError(f"alerts[{i}] needs status firing|resolved and startsAt", field=f"alerts[{i}]")
        labels = alert.get("labels") or {}
        annotations = alert.get("annotations") or {}
        if not isinstance(labels, dict) or not isinstance(annotations, dict):
            raise ValidationError(f"alerts[{i}].labels and .annotations must be objects", field=f"alerts[{i}]")
        if not (labels.get("service") or labels.get("job") or labels.get("alertname")):
            raise ValidationError(f"alerts[{i}] has no service, job or alertname label", field=f"alerts[{i}].labels")
        alerts.append(alert)
    return alerts


def apply_alerts(session: Session, *, alerts: list[dict], now: datetime) -> AlertOutcome:
    out = AlertOutcome()
    for alert in alerts:
        data = _incident_input(alert)
        existing = session.exec(select(Incident).where(Incident.external_id == data.external_id)).first()
        if existing is None:  # a new startsAt: the same alert still open under an earlier one?
            existing = _open_incident(session, alert)
        if alert["status"] == "firing":
            if existing is not None:
                out.unchanged += 1
                continue
            outcome = declare_incident(session, data=data, now=now, source="alertmanager", actor="alertmanager")
            if outcome.changed:
                out.declared.append(outcome.incident.id)
            else:  # declared at the same moment by an identical notification
                out.unchanged += 1
            continue
        ends = alert.get("endsAt")
        resolved_at = parse_instant(ends) if isinstance(ends, str) and not ends.startswith("0001-") else now
        if existing is None:
            outcome = declare_incident(session, data=data, now=now, source="alertmanager", actor="alertmanager")
            existing = outcome.incident
            if outcome.changed:
                out.declared.append(existing.id)
        result = resolve_incident(session, ref=f"INC-{existing.id}", now=now, actor="alertmanager", at=max(resolved_at, existing.started_at), note="resolved in Alertmanager")
        if result.changed:
            out.resolved.append(existing.id)
        else:
            out.unchanged += 1
    return out
