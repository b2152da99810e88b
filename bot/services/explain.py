"""``/dora explain``: which deploys, commits and incidents a number was computed from."""

from __future__ import annotations

from typing import Sequence

from sqlalchemy import select
from sqlmodel import Session

from bot.core.metrics import Window
from bot.store.models import Deploy, Incident, LeadSample, Service

LIMIT = 20


def _svc(service_id: int | None, column):
    return [] if service_id is None else [column == service_id]


def counted_deploys(session: Session, *, window: Window, environments: Sequence[str], service_id: int | None) -> list[tuple]:
    """Qualifying deploys in the window, newest first: (deploy, service name)."""
    q = (
        select(Deploy, Service.name)
        .join(Service, Service.id == Deploy.service_id)
        .where(Deploy.status == "success", Deploy.environment.in_(list(environments)), Deploy.deployed_at >= window.start, Deploy.deployed_at < window.end, *_svc(service_id, Deploy.service_id))
        .order_by(Deploy.deployed_at.desc())
        .limit(LIMIT)
    )
    return list(session.execute(q).all())


def lead_samples(session: Session, *, window: Window, service_id: int | None) -> list[tuple]:
    """The slowest commits first deployed in the window: (sample, service name, deploy)."""
    q = (
        select(LeadSample, Service.name)
        .join(Service, Service.id == LeadSample.service_id)
        .where(LeadSample.deployed_at >= window.start, LeadSample.deployed_at < window.end, LeadSample.lead_seconds.is_not(None), *_svc(service_id, LeadSample.service_id))
        .order_by(LeadSample.lead_seconds.desc())
        .limit(LIMIT)
    )
    return list(session.execute(q).all())


def failed_deploys(session: Session, *, window: Window, environments: Sequence[str], service_id: int | None) -> list[tuple]:
    """Change failures in the window with why: (deploy, service, incident refs, rollback ids)."""
    q = (
        select(Deploy, Service.name)
        .join(Service, Service.id == Deploy.service_id)
        .where(Deploy.change_failure.is_(True), Deploy.status == "success", Deploy.environment.in_(list(environments)), Deploy.deployed_at >= window.start, Deploy.deployed_at < window.end, *_svc(service_id, Deploy.service_id))
        .order_by(Deploy.deployed_at.desc())
        .limit(LIMIT)
    )
    out = []
    for deploy, name in session.execute(q).all():
        incidents = session.execute(select(Incident.id).where(Incident.caused_by_id == deploy.id).order_by(Incident.id)).scalars().all()
        rollback = Deploy.__table__.alias("rb")
        rollbacks = session.execute(select(rollback.c.id).where(rollback.c.rollback_of_id == deploy.id, rollback.c.status == "success")).scalars().all()
        out.append((deploy, name, list(incidents), list(rollbacks)))
    return out


def resolved_incidents(session: Session, *, window: Window, environments: Sequence[str], service_id: int | None) -> list[tuple]:
    """Incidents resolved in the window, longest first: (incident, service name)."""
    q = (
        select(Incident, Service.name)
        .join(Service, Service.id == Incident.service_id)
        .where(Incident.environment.in_(list(environments)), Incident.resolved_at >= window.start, Incident.resolved_at < window.end, *_svc(service_id, Incident.service_id))
        .order_by(Incident.restore_seconds.desc())
        .limit(LIMIT)
    )
    return list(session.execute(q).all())
