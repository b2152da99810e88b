"""The service catalogue: which names are known, the closest ones to a typo, and fixing a history
already split (rename a service, merge one into another).

From Slack an unknown name asks before anything is stored (``bot.slack.listeners.catalogue``);
machines (the API, import, webhooks) keep creating services and report the ones they created.
Names keep their display form; ``service_key`` is the one normalisation they are matched by.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import and_, delete, exists, or_, select, update
from sqlmodel import Session, col

from bot.core.errors import NotFound, ValidationError
from bot.core.incident_events import EventKind
from bot.core.inputs import normalize_service, service_key
from bot.services import outbox
from bot.store.models import (
    CommitPush,
    Deploy,
    DeployFreeze,
    DigestSubscription,
    Incident,
    IncidentEvent,
    LeadSample,
    Nudge,
    PendingCommit,
    Service,
    Watch,
)

SUGGESTIONS = 3


def known(session: Session, name: str) -> Service | None:
    """The stored service ``name`` means, or None."""
    return session.execute(select(Service).where(Service.key == service_key(name))).scalars().first()


def suggestions(session: Session, name: str, *, limit: int = SUGGESTIONS) -> list[str]:
    """The known services whose names are closest to ``name`` (display names, best first)."""
    rows = session.execute(select(Service.key, Service.name)).all()
    by_key = dict(rows)
    close = difflib.get_close_matches(service_key(name), list(by_key), n=limit, cutoff=0.6)
    return [by_key[k] for k in close]


def unknown_service(session: Session, name: str) -> NotFound:
    """The error for a name that is no known service: the closest names, or the known ones."""
    close = suggestions(session, name)
    if close:
        hint = " Did you mean " + " or ".join(f"`{n}`" for n in close) + "?"
    else:
        names = session.execute(select(Service.name).order_by(Service.key).limit(20)).scalars().all()
        hint = f" Known services: {', '.join(names)}." if names else " No service has been recorded yet."
    return NotFound(f"No service called `{name}`.{hint}")


def require(session: Session, name: str) -> Service:
    service = known(session, normalize_service(name))
    if service is None:
        raise unknown_service(session, name)
    return service


@dataclass
class CatalogueChange:
    """What a rename or merge did, for the reply."""

    old: str
    new: str
    deploys: int = 0
    incidents: int = 0
    samples: int = 0
    digests: list[int] = field(default_factory=list)
    open_incidents: list[int] = field(default_factory=list)


def _announce(session: Session, service_ids: list[int], text: str, *, actor: str | None, now: datetime) -> list[int]:
    """A timeline line (and thread line, through the outbox) on each open incident of the services."""
    ids = session.execute(
        select(Incident.id).where(
            col(Incident.service_id).in_(service_ids), col(Incident.resolved_at).is_(None), col(Incident.status).is_(None)
        ).order_by(Incident.id)
    ).scalars().all()
    for incident_id in ids:
        event = IncidentEvent(incident_id=incident_id, at=now, kind=EventKind.SERVICE, actor=actor, text=text)
        session.add(event)
        session.flush()
        outbox.incident_event(session, incident_id, event.id, now=now)
    return list(ids)


def _rename_digests(session: Session, old_key: str, new_name: str) -> list[int]:
    changed = []
    for sub in session.execute(select(DigestSubscription).where(col(DigestSubscription.service).is_not(None))).scalars().all():
        if service_key(sub.service) == old_key:
            sub.service = new_name
            session.add(sub)
            changed.append(sub.id)
    return changed


def check_rename(session: Session, old: str, new: str) -> tuple[Service, str]:
    """The service to rename and its new display name; a name another service has is refused."""
    service = require(session, old)
    name = normalize_service(new)
    other = known(session, name)
    if other is not None and other.id != service.id:
        raise ValidationError(
            f"`{other.name}` is already a service; to move `{service.name}`'s history into it use"
            f" `/dora service merge {service.name} {other.name}`", field="new",
        )
    return service, name


def check_merge(session: Session, source: str, into: str) -> tuple[Service, Service]:
    src, dst = require(session, source), require(session, into)
    if src.id == dst.id:
        raise ValidationError(f"`{src.name}` and `{dst.name}` are the same service", field="into")
    return src, dst


def rename_service(session: Session, *, old: str, new: str, actor: str | None, now: datetime) -> CatalogueChange:
    """Give a service a new name; every record stays with it."""
    service, name = check_rename(session, old, new)
    change = CatalogueChange(old=service.name, new=name)
    if service.name == name:
        return change
    old_key = service.key
    service.name, service.key = name, service_key(name)
    session.add(service)
    session.flush()
    change.digests = _rename_digests(session, old_key, name)
    change.open_incidents = _announce(session, [service.id], f"service `{change.old}` renamed to `{name}`", actor=actor, now=now)
    return change


def merge_services(session: Session, *, source: str, into: str, actor: str | None, now: datetime) -> CatalogueChange:
    """Move every deploy, incident, lead sample, pending commit, freeze, watch, nudge and digest of ``source`` to
    ``into``, then delete ``source``. A commit both services deployed keeps one lead sample: the
    one at its first deploy, as if the history had been recorded under one name."""
    src, dst = check_merge(session, source, into)
    change = CatalogueChange(old=src.name, new=dst.name)
    # Announced first, so the line names the service the incident had.
    change.open_incidents = _announce(session, [src.id], f"service `{src.name}` merged into `{dst.name}`", actor=actor, now=now)
    change.deploys = session.execute(update(Deploy).where(Deploy.service_id == src.id).values(service_id=dst.id)).rowcount
    change.incidents = session.execute(update(Incident).where(Incident.service_id == src.id).values(service_id=dst.id)).rowcount

    s, d = LeadSample.__table__.alias("s"), LeadSample.__table__.alias("d")
    sample_t = LeadSample.__table__
    # Of a sha both have, the later sample goes: first the target's, then the source's.
    earlier_in_source = exists().where(
        s.c.service_id == src.id, s.c.sha == sample_t.c.sha,
        or_(s.c.deployed_at < sample_t.c.deployed_at,
            and_(s.c.deployed_at == sample_t.c.deployed_at, s.c.deploy_id < sample_t.c.deploy_id)),
    )
    session.execute(delete(sample_t).where(sample_t.c.service_id == dst.id, earlier_in_source))
    session.execute(delete(sample_t).where(sample_t.c.service_id == src.id,
                                           exists().where(d.c.service_id == dst.id, d.c.sha == sample_t.c.sha)))
    change.samples = session.execute(update(sample_t).where(sample_t.c.service_id == src.id).values(service_id=dst.id)).rowcount

    pending_t = PendingCommit.__table__
    p = pending_t.alias("p")
    session.execute(delete(pending_t).where(pending_t.c.service_id == src.id,
                                            exists().where(p.c.service_id == dst.id, p.c.sha == pending_t.c.sha)))
    session.execute(update(pending_t).where(pending_t.c.service_id == src.id).values(service_id=dst.id))
    session.execute(update(CommitPush).where(CommitPush.service_id == src.id).values(service_id=dst.id))
    session.execute(update(DeployFreeze).where(DeployFreeze.service_id == src.id).values(service_id=dst.id))  # its freezes hold on
    # Watches and answered nudges follow the service (their foreign keys cascade: a delete would drop them).
    session.execute(update(Watch).where(Watch.service_id == src.id).values(service_id=dst.id))
    session.execute(update(Nudge).where(Nudge.service_id == src.id).values(service_id=dst.id))

    change.digests = _rename_digests(session, src.key, dst.name)
    if dst.team_id is None and src.team_id is not None:
        dst.team_id = src.team_id
        session.add(dst)
    session.flush()
    session.delete(src)
    session.flush()
    return change


def counts(session: Session, service_id: int) -> tuple[int, int]:
    """(deploys, incidents) of a service: what a merge would move."""
    from sqlalchemy import func

    deploys = session.execute(select(func.count()).select_from(Deploy).where(Deploy.service_id == service_id)).scalar_one()
    incidents = session.execute(select(func.count()).select_from(Incident).where(Incident.service_id == service_id)).scalar_one()
    return int(deploys), int(incidents)
