"""Incident use-cases: declare, acknowledge, post an update, link the cause, resolve.

Every change after the declaration queues, in the same transaction, a refresh of the incident's
cards and the thread line of the event it added (``outbox.incident_event``); the new card itself is
queued by the caller (``outbox.announce_incident``), which knows where it was declared.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from bot.core import rules
from bot.core.errors import NotFound, StateError, ValidationError
from bot.core.incident_events import EventKind
from bot.core.inputs import FUTURE_TOLERANCE, IncidentInput, check_mitigated, check_text
from bot.services import outbox
from bot.services.lookup import deploy_ref, find_deploy, find_incident, get_or_create_service, incident_ref
from bot.services.nudges import ask_for_cause, record_answer
from bot.store import rules as store_rules
from bot.store.db import lock_external_id
from bot.store.derived import refresh_change_failure
from bot.store.models import Deploy, Incident, IncidentEvent, Service
from bot.store.scope import Scope, as_scope


@dataclass
class IncidentOutcome:
    incident: Incident
    changed: bool
    message: str | None = None  # why nothing changed, for a stale button or a retry

    @property
    def ref(self) -> str:
        return incident_ref(self.incident)


def durations(incident: Incident, cause: Deploy | None) -> None:
    """Recompute the stored recovery instant and durations from the incident's instants."""
    started, mitigated, resolved = incident.started_at, incident.mitigated_at, incident.resolved_at
    incident.recovered_at = rules.recovery_instant(mitigated, resolved)
    incident.ack_seconds = rules.ack_seconds(started, incident.acknowledged_at)
    incident.restore_seconds = rules.restore_seconds(started, mitigated, resolved)
    incident.recovery_seconds = rules.recovery_seconds(started, mitigated, resolved, cause.deployed_at if cause else None)


def _event(session: Session, incident: Incident, *, at: datetime, kind: str, actor: str | None, text: str | None = None) -> IncidentEvent:
    event = IncidentEvent(incident_id=incident.id, at=at, kind=kind, actor=actor, text=text)
    session.add(event)
    return event


def _announce(session: Session, incident: Incident, event: IncidentEvent, *, now: datetime) -> None:
    """The event's thread line and the refreshed card, queued with the change itself."""
    session.flush()
    outbox.incident_event(session, incident.id, event.id, now=now)


def _cause_for(session: Session, incident_service_id: int, ref: str, *, external_first: bool, field: str = "caused_by") -> Deploy:
    try:
        cause = find_deploy(session, ref, external_first=external_first)
    except NotFound:
        raise ValidationError(f"no deploy `{ref}`", field=field) from None
    if cause.service_id != incident_service_id:
        other = session.get(Service, cause.service_id)
        raise ValidationError(
            f"{deploy_ref(cause)} is a deploy of `{other.name}`, not of this incident's service",
            field=field,
        )
    return cause


def declare_incident(
    session: Session,
    *,
    data: IncidentInput,
    now: datetime,
    source: str = "api",
    actor: str | None = None,
    suspect: str | None = None,
) -> IncidentOutcome:
    """Open an incident (or store a finished one); a retry with the same external id changes nothing.

    ``suspect`` names a deploy that may be the cause: shown on the card with a Roll back button,
    but not counted as a change failure until it is confirmed (linked, or rolled back).
    """
    if data.external_id is not None:
        lock_external_id(session.connection(), "incident", data.external_id)  # a retry draws no INC number
        existing = session.exec(select(Incident).where(Incident.external_id == data.external_id)).first()
        if existing is not None:
            return IncidentOutcome(existing, changed=False, message=f"{incident_ref(existing)} already exists")
    check_text(data.title, "title")  # the one limit, also for titles typed in Slack
    started = data.started_at or now
    if data.resolved_at and data.resolved_at < started:
        raise ValidationError("resolved_at is before started_at", field="resolved_at")
    if data.acknowledged_at and data.acknowledged_at < started:
        raise ValidationError("acknowledged_at is before started_at", field="acknowledged_at")
    if (problem := check_mitigated(started, data.mitigated_at, data.resolved_at)) is not None:
        raise ValidationError(f"mitigated_at {problem}", field="mitigated_at")
    # Resolved without saying when impact ended: it ended at the resolution.
    mitigated = data.mitigated_at or data.resolved_at
    service = get_or_create_service(session, data.service, now=now)
    cause = None
    if data.caused_by is not None:
        cause = _cause_for(session, service.id, data.caused_by, external_first=source != "slack")
    suspect_deploy = _cause_for(session, service.id, suspect, external_first=False, field="suspect") if suspect else None
    incident = Incident(
        external_id=data.external_id,
        service_id=service.id,
        environment=data.environment,
        severity=data.severity,
        title=data.title,
        started_at=started,
        declared_at=now,
        acknowledged_at=data.acknowledged_at,
        resolved_at=data.resolved_at,
        mitigated_at=mitigated,
        status=data.status,
        cancel_reason=None,
        not_caused_by_change=data.not_caused_by_change,
        caused_by_id=cause.id if cause else None,
        suspect_deploy_id=suspect_deploy.id if suspect_deploy else None,
        declared_by=actor,
        lead=data.lead,
        source=source,
        created_at=now,
    )
    durations(incident, cause)
    try:
        with session.begin_nested():
            session.add(incident)
            session.flush()
    except IntegrityError:
        # The same external id was stored concurrently: this request is a retry of that one.
        existing = session.exec(select(Incident).where(Incident.external_id == data.external_id)).first()
        if existing is None:
            raise
        return IncidentOutcome(existing, changed=False, message=f"{incident_ref(existing)} already exists")
    _event(session, incident, at=now, kind=EventKind.DECLARED, actor=actor, text=f"{data.severity} {data.title}")
    if cause is not None:
        _event(session, incident, at=now, kind=EventKind.CAUSE, actor=actor, text=f"caused by {deploy_ref(cause)}")
        refresh_change_failure(session.connection(), [cause.id])
    if data.acknowledged_at:
        _event(session, incident, at=data.acknowledged_at, kind=EventKind.ACKNOWLEDGED, actor=actor)
    if data.mitigated_at and data.mitigated_at != data.resolved_at:
        _event(session, incident, at=data.mitigated_at, kind=EventKind.MITIGATED, actor=actor)
    if data.resolved_at:
        _event(session, incident, at=data.resolved_at, kind=EventKind.RESOLVED, actor=actor)
    if data.status == rules.CANCELLED:
        _event(session, incident, at=now, kind=EventKind.CANCELLED, actor=actor)
    session.flush()
    return IncidentOutcome(incident, changed=True)


def _at(incident: Incident, at: datetime, what: str, *, now: datetime) -> datetime:
    field = f"{what}_at"
    if at < incident.started_at:
        raise ValidationError(
            f"{incident_ref(incident)} started at {incident.started_at:%Y-%m-%d %H:%M} UTC; it cannot be {what} before that",
            field=field,
        )
    if at > now + FUTURE_TOLERANCE:
        raise ValidationError(f"{field} is in the future", field=field)
    return at


def acknowledge_incident(
    session: Session, *, ref: str, now: datetime, actor: str | None, at: datetime | None = None, external_first: bool = False
) -> IncidentOutcome:
    """Acknowledge an open incident; a second click reports who already did."""
    incident = find_incident(session, ref, external_first=external_first, for_update=True)
    if incident.resolved_at is not None:
        return IncidentOutcome(incident, changed=False, message=f"{incident_ref(incident)} is already resolved.")
    if incident.status == rules.CANCELLED:
        return IncidentOutcome(incident, changed=False, message=f"{incident_ref(incident)} was cancelled.")
    if incident.acknowledged_at is not None:
        who = f" by <@{incident.acknowledged_by}>" if incident.acknowledged_by else ""
        return IncidentOutcome(incident, changed=False, message=f"{incident_ref(incident)} was already acknowledged{who}.")
    incident.acknowledged_at = _at(incident, at or now, "acknowledged", now=now)
    incident.acknowledged_by = actor
    durations(incident, _cause(session, incident))
    session.add(incident)
    _announce(session, incident, _event(session, incident, at=now, kind=EventKind.ACKNOWLEDGED, actor=actor), now=now)
    return IncidentOutcome(incident, changed=True)


def resolve_incident(
    session: Session, *, ref: str, now: datetime, actor: str | None, note: str | None = None, at: datetime | None = None,
    external_first: bool = False,
) -> IncidentOutcome:
    """Resolve an incident; its time to restore is fixed now. One never mitigated is mitigated
    at the same instant (impact ended, at the latest, when it was resolved)."""
    note = check_text(note, "note")
    incident = find_incident(session, ref, external_first=external_first, for_update=True)
    if incident.resolved_at is not None:
        return IncidentOutcome(incident, changed=False, message=f"{incident_ref(incident)} is already resolved.")
    if incident.status == rules.CANCELLED:
        return IncidentOutcome(incident, changed=False, message=f"{incident_ref(incident)} was cancelled.")
    resolved = _at(incident, at or now, "resolved", now=now)
    if incident.mitigated_at is not None and incident.mitigated_at > resolved:
        raise ValidationError(
            f"{incident_ref(incident)} was mitigated at {incident.mitigated_at:%Y-%m-%d %H:%M} UTC; it cannot be resolved before that",
            field="resolved_at",
        )
    incident.resolved_at = resolved
    if incident.mitigated_at is None:
        incident.mitigated_at = resolved
    incident.resolved_by = actor
    incident.resolution_note = note
    durations(incident, _cause(session, incident))
    session.add(incident)
    _announce(session, incident, _event(session, incident, at=now, kind=EventKind.RESOLVED, actor=actor, text=note), now=now)
    ask_for_cause(session, incident, now=now)  # no cause known: one question in the card's thread
    return IncidentOutcome(incident, changed=True)


def correct_time(
    session: Session, *, ref: str, what: str, at: datetime, now: datetime, actor: str | None, note: str | None = None,
    external_first: bool = False, as_of_now: bool = False,
) -> IncidentOutcome:
    """Set ``acknowledged_at``, ``mitigated_at`` or ``resolved_at`` (``what``: "acknowledged" |
    "mitigated" | "resolved") whatever the state.

    An open incident is acknowledged or resolved as usual. On one that already has that time, the
    same instant is a retry (nothing changes) and another instant is a correction: it is checked
    (not before the start, not in the future, as a first time is),
    applied with the durations it changes, and kept on the timeline as a ``corrected`` entry.
    ``as_of_now`` ("now" in the API) asks for the state, not an instant: on an incident already
    acknowledged (resolved) it changes nothing, so a retried "resolve now" never moves the time.
    """
    field = f"{what}_at"
    incident = find_incident(session, ref, external_first=external_first, for_update=True)
    current = getattr(incident, field)
    if as_of_now and (current is not None or incident.resolved_at is not None):
        return IncidentOutcome(incident, changed=False, message=f"{incident_ref(incident)} is already {incident.state}")
    if current == at:
        return IncidentOutcome(incident, changed=False, message=f"{incident_ref(incident)} already has {field} {_hm(at)}")
    _at(incident, at, what, now=now)  # the same checks as a first acknowledgement or resolution
    if current is None and incident.resolved_at is None:  # the usual acknowledgement or resolution
        if what == "acknowledged":
            return acknowledge_incident(session, ref=incident_ref(incident), now=now, actor=actor, at=at)
        if what == "mitigated":
            return mitigate_incident(session, ref=incident_ref(incident), now=now, actor=actor, at=at)
        return resolve_incident(session, ref=incident_ref(incident), now=now, actor=actor, at=at, note=note)
    if what == "mitigated" and incident.resolved_at is not None and at > incident.resolved_at:
        raise ValidationError(
            f"{incident_ref(incident)} was resolved at {_hm(incident.resolved_at)}; impact ended at the latest then",
            field="mitigated_at",
        )
    if what == "resolved" and current is not None and incident.mitigated_at is not None:
        if incident.mitigated_at == current:  # mitigated when it was resolved: it moves with the resolution
            incident.mitigated_at = at
        elif incident.mitigated_at > at:
            raise ValidationError(
                f"{incident_ref(incident)} was mitigated at {_hm(incident.mitigated_at)}; it cannot be resolved before that",
                field="resolved_at",
            )
    setattr(incident, field, at)
    if what == "acknowledged" and incident.acknowledged_by is None:
        incident.acknowledged_by = actor
    durations(incident, _cause(session, incident))
    session.add(incident)
    text = f"{field} {_hm(current)} → {_hm(at)}" if current is not None else f"{field} set to {_hm(at)} after the resolution"
    _announce(session, incident, _event(session, incident, at=now, kind=EventKind.CORRECTED, actor=actor, text=text), now=now)
    return IncidentOutcome(incident, changed=True)


def mitigate_incident(
    session: Session, *, ref: str, now: datetime, actor: str | None, note: str | None = None, at: datetime | None = None,
    external_first: bool = False,
) -> IncidentOutcome:
    """Record that impact is over (service restored); the incident stays open until resolved.

    The recovery instant: time to restore and failed deployment recovery time end here.
    """
    incident = find_incident(session, ref, external_first=external_first, for_update=True)
    iref = incident_ref(incident)
    if incident.status == rules.CANCELLED:
        return IncidentOutcome(incident, changed=False, message=f"{iref} was cancelled.")
    if incident.resolved_at is not None:
        return IncidentOutcome(incident, changed=False, message=f"{iref} is already resolved.")
    if incident.mitigated_at is not None:
        return IncidentOutcome(
            incident, changed=False, message=f"{iref} was already mitigated at {incident.mitigated_at:%Y-%m-%d %H:%M} UTC."
        )
    note = check_text(note, "note")
    incident.mitigated_at = _at(incident, at or now, "mitigated", now=now)
    durations(incident, _cause(session, incident))
    session.add(incident)
    _announce(session, incident, _event(session, incident, at=now, kind=EventKind.MITIGATED, actor=actor, text=note), now=now)
    session.flush()
    return IncidentOutcome(incident, changed=True)


def correct_resolution_note(session: Session, *, ref: str, note: str, now: datetime, actor: str | None) -> IncidentOutcome:
    """Replace a resolved incident's resolution note (kept on the timeline); 409 on an unresolved one."""
    note = check_text(note, "note", required=True)
    incident = find_incident(session, ref, for_update=True)
    if incident.resolved_at is None:
        raise StateError(f"{incident_ref(incident)} is not resolved: send the note with resolved_at")
    if incident.resolution_note == note:
        return IncidentOutcome(incident, changed=False)
    incident.resolution_note = note
    session.add(incident)
    _announce(session, incident, _event(session, incident, at=now, kind=EventKind.CORRECTED, actor=actor, text=f"resolution note: {note}"),
              now=now)
    return IncidentOutcome(incident, changed=True)


def _hm(at: datetime | None) -> str:
    return "none" if at is None else at.strftime("%Y-%m-%d %H:%M:%S UTC")


def cancel_incident(
    session: Session, *, ref: str, reason: str, now: datetime, actor: str | None, external_first: bool = False
) -> IncidentOutcome:
    """Cancel a false alarm: it takes part in no metric, and its cause is no longer a change failure."""
    if not isinstance(reason, str) or not reason.strip():
        raise ValidationError("say why the incident is cancelled (a false alarm, declared by mistake...)", field="reason")
    reason = check_text(reason, "reason")
    incident = find_incident(session, ref, external_first=external_first, for_update=True)
    iref = incident_ref(incident)
    if incident.status == rules.CANCELLED:
        return IncidentOutcome(incident, changed=False, message=f"{iref} is already cancelled.")
    if incident.resolved_at is not None:
        raise StateError(f"{iref} is already resolved; only an incident that is not resolved can be cancelled.")
    incident.status = rules.CANCELLED
    incident.cancel_reason = reason
    session.add(incident)
    _announce(session, incident, _event(session, incident, at=now, kind=EventKind.CANCELLED, actor=actor, text=reason), now=now)
    refresh_change_failure(session.connection(), [incident.caused_by_id])
    return IncidentOutcome(incident, changed=True)


def set_severity(
    session: Session, *, ref: str, severity: str, now: datetime, actor: str | None, external_first: bool = False
) -> IncidentOutcome:
    """Change the severity; the timeline keeps the change (old -> new)."""
    from bot.core.inputs import normalize_severity

    severity = normalize_severity(severity)
    incident = find_incident(session, ref, external_first=external_first, for_update=True)
    if incident.status == rules.CANCELLED:  # a false alarm has no severity to change (nor anyone to page)
        return IncidentOutcome(incident, changed=False, message=f"{incident_ref(incident)} was cancelled.")
    if incident.severity == severity:
        return IncidentOutcome(incident, changed=False, message=f"{incident_ref(incident)} is already {severity}.")
    old, incident.severity = incident.severity, severity
    session.add(incident)
    event = _event(session, incident, at=now, kind=EventKind.SEVERITY, actor=actor, text=f"{old} -> {severity}")
    _announce(session, incident, event, now=now)
    session.flush()
    return IncidentOutcome(incident, changed=True)


def post_update(session: Session, *, ref: str, text: str, now: datetime, actor: str | None) -> IncidentOutcome:
    """Add a status update to the incident's timeline."""
    text = check_text(text, "update", required=True)
    incident = find_incident(session, ref)
    _announce(session, incident, _event(session, incident, at=now, kind=EventKind.UPDATE, actor=actor, text=text), now=now)
    return IncidentOutcome(incident, changed=True)


def link_cause(
    session: Session, *, ref: str, deploy: str, now: datetime, actor: str | None, external_first: bool = False, announce: bool = True
) -> IncidentOutcome:
    """Record which deploy caused the incident; that deploy becomes a change failure.

    ``announce=False``: part of a larger change (a rollback) that announces itself.
    """
    incident = find_incident(session, ref, external_first=external_first, for_update=True)
    cause = _cause_for(session, incident.service_id, deploy, external_first=external_first)
    if incident.caused_by_id == cause.id:
        return IncidentOutcome(incident, changed=False, message=f"{incident_ref(incident)} is already linked to {deploy_ref(cause)}.")
    previous = incident.caused_by_id
    incident.caused_by_id = cause.id
    incident.not_caused_by_change = False
    durations(incident, cause)
    session.add(incident)
    event = _event(session, incident, at=now, kind=EventKind.CAUSE, actor=actor, text=f"caused by {deploy_ref(cause)}")
    session.flush()
    refresh_change_failure(session.connection(), [previous, cause.id])
    if announce:
        _announce(session, incident, event, now=now)
    record_answer(session, incident, deploy_id=cause.id, actor=actor, now=now)  # an open cause question shows it
    return IncidentOutcome(incident, changed=True)


def roll_back_cause(session: Session, *, ref: str, now: datetime, actor: str | None) -> IncidentOutcome:
    """Roll back the incident's causing (or suspected) deploy and link it as the cause."""
    from bot.services.deploys import record_rollback

    incident = find_incident(session, ref, for_update=True)
    target_id = incident.caused_by_id or incident.suspect_deploy_id
    if target_id is None:
        raise StateError(
            f"{incident_ref(incident)} has no suspected deploy to roll back;"
            f" link one with `/incident cause {incident_ref(incident)} D-<n>`."
        )
    existing = session.exec(select(Deploy).where(store_rules.rollbacks_of(target_id, Deploy.__table__)).order_by(Deploy.id)).first()
    if existing is not None:
        return IncidentOutcome(
            incident, changed=False, message=f"D-{target_id} was already rolled back by D-{existing.id} ({existing.version})."
        )
    service = session.get(Service, incident.service_id)
    outcome = record_rollback(session, service=service.name, of=f"D-{target_id}", now=now, actor=actor)
    if incident.caused_by_id != target_id:
        link_cause(session, ref=incident_ref(incident), deploy=f"D-{target_id}", now=now, actor=actor, announce=False)
    event = _event(session, incident, at=now, kind=EventKind.ROLLBACK, actor=actor,
                   text=f"{deploy_ref(outcome.deploy)} back to {outcome.deploy.version}")
    _announce(session, incident, event, now=now)
    return IncidentOutcome(incident, changed=True)


def _cause(session: Session, incident: Incident) -> Deploy | None:
    return session.get(Deploy, incident.caused_by_id) if incident.caused_by_id else None


def list_open_incidents(session: Session, *, service_id: "Scope | int | None" = None, limit: int = 50) -> list[tuple[Incident, str]]:
    query = (
        select(Incident, Service.name)
        .join(Service, Service.id == Incident.service_id)
        .where(col(Incident.resolved_at).is_(None), col(Incident.status).is_(None))
    )
    if service_id is not None:  # a service id, or a Scope (a team's services)
        query = query.where(as_scope(service_id).condition(Incident.service_id))
    query = query.order_by(Incident.severity, Incident.started_at).limit(limit)
    return [(i, name) for i, name in session.exec(query).all()]


def timeline(session: Session, incident_id: int) -> list[IncidentEvent]:
    return list(
        session.exec(
            select(IncidentEvent).where(IncidentEvent.incident_id == incident_id).order_by(IncidentEvent.at, IncidentEvent.id)
        ).all()
    )
