"""PagerDuty v3 webhooks: ``incident.triggered`` / ``incident.acknowledged`` / ``incident.resolved``
declare, acknowledge and resolve one incident per PagerDuty incident id.

Payload as PagerDuty documents it (https://developer.pagerduty.com/docs/webhooks/v3-overview/):
``{"event": {"id", "event_type", "occurred_at", "data": {"id", "number", "title", "created_at",
"incident_key", "urgency", "priority": {"summary": "P1"}, "service": {"summary": ...}}}}``.

* service = ``data.service.summary``, through the catalogue's one normalisation;
* severity from ``data.priority.summary`` (P1 -> sev1 ... P4 and below -> sev4), else from
  ``data.urgency`` (high -> sev2, low -> sev3);
* started = ``data.created_at``; acknowledged / resolved at the event's ``occurred_at``;
* an incident dora-bot itself paged (the Events API v2 hand-off uses dedup key
  ``dora-bot-INC-<n>``; an Events API v2 ``dedup_key`` becomes the ``incident_key`` of the
  incident it opens — the REST API finds that incident with ``GET /incidents?incident_key=<dedup
  key>``, https://developer.pagerduty.com/docs/events-api-v2/trigger-events/) is that INC-n, not a
  second incident: its acknowledgement and resolution in PagerDuty move INC-n. (With PagerDuty's
  alert grouping an alert may join another incident; that incident keeps its own key and is its own.)

Other event types (``pagey.ping``, ``incident.annotated``...) are stored and ignored.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from sqlmodel import Session

from bot.core import rules
from bot.core.errors import ValidationError
from bot.core.inputs import LIMITS, IncidentInput, normalize_environment, normalize_service, outside_title
from bot.core.timeutil import parse_instant
from bot.services.github import _object
from bot.services.incident_sources import SourceOutcome, apply_step, by_external_id
from bot.store.models import Incident

EVENTS = {"incident.triggered": "declared", "incident.acknowledged": "acknowledged", "incident.resolved": "resolved"}
OWN_KEY = re.compile(r"^dora-bot-INC-(\d{1,12})$")
PRIORITY = {"p1": "sev1", "p2": "sev2", "p3": "sev3"}
URGENCY = {"high": "sev2", "low": "sev3"}


def _instant(value: Any, field: str) -> datetime | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ValidationError("must be an RFC 3339 time", field=field)
    try:
        return parse_instant(value)
    except ValidationError as exc:
        raise ValidationError(exc.message, field=field) from None


def severity_of(data: dict) -> str:
    priority = data.get("priority")
    summary = priority.get("summary") if isinstance(priority, dict) else None
    if isinstance(summary, str) and summary.strip():
        return PRIORITY.get(summary.strip().lower(), "sev4")
    return URGENCY.get(str(data.get("urgency") or "").lower(), "sev3")


def own_incident(session: Session, data: dict) -> Incident | None:
    """The dora-bot incident this PagerDuty incident was triggered for, if any."""
    key = data.get("incident_key")
    match = OWN_KEY.match(key.strip()) if isinstance(key, str) else None
    return session.get(Incident, int(match.group(1))) if match else None


def apply(session: Session, *, payload: Any, now: datetime) -> SourceOutcome | None:
    event = _object(_object(payload), "event")
    step = EVENTS.get(event.get("event_type"))
    if step is None:
        return None
    data = _object(event, "data")
    pd_id = data.get("id")
    if not isinstance(pd_id, str) or not pd_id.strip():
        raise ValidationError("is required (the PagerDuty incident id)", field="event.data.id")
    external_id = f"{rules.PAGERDUTY_EXTERNAL_PREFIX}{pd_id.strip()}"[: LIMITS["id"]]
    occurred = _instant(event.get("occurred_at"), "event.occurred_at")
    notes: list[str] = []
    existing = own_incident(session, data) or by_external_id(session, external_id)
    if existing is not None:  # nothing else of the body is needed: take what is there
        out = apply_step(session, step=step, existing=existing, data=None, at=occurred, now=now, source="pagerduty",
                         note="resolved in PagerDuty" if step == "resolved" else None)
        return out
    service = _object(data, "service").get("summary")
    try:
        service = normalize_service(service)
    except ValidationError as exc:
        raise ValidationError(exc.message, field="event.data.service.summary") from None
    started = _instant(data.get("created_at"), "event.data.created_at") or occurred or now
    title = data.get("title")
    if not isinstance(title, str) or not title.strip():
        title = f"PagerDuty incident {data.get('number') or pd_id}"
        notes.append("event.data.title: missing, named after the PagerDuty incident")
    title = outside_title(title, field="event.data.title", notes=notes)
    incident = IncidentInput(
        service=service,
        started_at=min(started, now),
        severity=severity_of(data),
        title=title,
        environment=normalize_environment(None),
        external_id=external_id,
    )
    out = apply_step(session, step=step, existing=None, data=incident, at=occurred, now=now, source="pagerduty",
                     note="resolved in PagerDuty" if step == "resolved" else None)
    out.notes.extend(notes)
    return out
