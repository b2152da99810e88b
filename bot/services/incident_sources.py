"""What PagerDuty and Opsgenie webhooks share: one incident per outside id, moved through
declared -> acknowledged -> resolved by the events that arrive, in whatever order.

An acknowledgement or a resolution of an incident never seen declared declares it first (a
webhook subscription created mid-incident, or a lost delivery); a step already taken changes
nothing, so a retried or reordered notification is harmless. Outside times are kept within the
incident's life: never before it started, never after the moment they are received.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlmodel import Session, select

from bot.core.inputs import IncidentInput
from bot.services.incidents import acknowledge_incident, declare_incident, resolve_incident
from bot.store.models import Incident

STEPS = ("declared", "acknowledged", "resolved")


@dataclass
class SourceOutcome:
    incident: str | None = None  # INC-n
    declared: list[int] = field(default_factory=list)  # new incidents (their cards are queued)
    acknowledged: bool = False
    resolved: bool = False
    notes: list[str] = field(default_factory=list)  # what was adjusted or left out

    def as_result(self) -> dict:
        return {
            "incident": self.incident,
            "declared": bool(self.declared),
            "acknowledged": self.acknowledged,
            "resolved": self.resolved,
            "notes": self.notes,
        }

    def note(self) -> str | None:
        return "; ".join(self.notes) or None


def _within(incident: Incident, at: datetime | None, now: datetime) -> datetime:
    at = at or now
    return min(max(at, incident.started_at), now)


def apply_step(
    session: Session,
    *,
    step: str,
    existing: Incident | None,
    data: IncidentInput,
    at: datetime | None,
    now: datetime,
    source: str,
    note: str | None = None,
) -> SourceOutcome:
    """Take ``existing`` (or a new incident from ``data``) to ``step`` at ``at``."""
    out = SourceOutcome()
    if existing is None:
        declared = declare_incident(session, data=data, now=now, source=source, actor=source)
        existing = declared.incident
        if declared.changed:
            out.declared.append(existing.id)
    out.incident = f"INC-{existing.id}"
    ref = f"INC-{existing.id}"
    if step == "acknowledged" and existing.acknowledged_at is None and existing.resolved_at is None:
        out.acknowledged = acknowledge_incident(session, ref=ref, now=now, actor=source, at=_within(existing, at, now)).changed
    elif step == "resolved" and existing.resolved_at is None:
        out.resolved = resolve_incident(session, ref=ref, now=now, actor=source, at=_within(existing, at, now), note=note).changed
    return out


def by_external_id(session: Session, external_id: str) -> Incident | None:
    return session.exec(select(Incident).where(Incident.external_id == external_id)).first()
