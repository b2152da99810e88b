"""``/dora explain``: which deploys, commits and incidents a number was computed from, and why.

Every list is built from the same rules as the numbers (``bot.store.rules``, ``bot.core.rules``):
a qualifying deploy, a counted incident, a change failure, rework and the recovery instant.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from sqlalchemy import select
from sqlmodel import Session

from bot.core import rules as core_rules
from bot.core.metrics import Window
from bot.store import rules
from bot.store.models import Deploy, Incident, LeadSample, Service
from bot.store.scope import Scope, as_scope

LIMIT = 20


def _svc(service_id: Scope | int | None, column):
    """The rows of the scope (a ``Scope``: a service, a team's services, the org; or a service id)."""
    return [] if service_id is None else [as_scope(service_id).condition(column)]


def _in_window(column, window: Window):
    return rules.in_window(column, window.start, window.end)


@dataclass(frozen=True)
class Explained:
    """A deploy with its service name and why it counts (in words)."""

    deploy: Deploy
    service: str
    reasons: list[str]


def counted_deploys(session: Session, *, window: Window, environments: Sequence[str], service_id: Scope | int | None) -> list[tuple]:
    """Qualifying deploys in the window, newest first: (deploy, service name)."""
    q = (
        select(Deploy, Service.name)
        .join(Service, Service.id == Deploy.service_id)
        .where(rules.qualifying(environments, service_id), _in_window(Deploy.deployed_at, window))
        .order_by(Deploy.deployed_at.desc())
        .limit(LIMIT)
    )
    return list(session.execute(q).all())


def lead_samples(session: Session, *, window: Window, service_id: Scope | int | None) -> list[tuple]:
    """The slowest commits first deployed in the window: (sample, service name, deploy)."""
    q = (
        select(LeadSample, Service.name)
        .join(Service, Service.id == LeadSample.service_id)
        .where(_in_window(LeadSample.deployed_at, window), LeadSample.lead_seconds.is_not(None), *_svc(service_id, LeadSample.service_id))
        .order_by(LeadSample.lead_seconds.desc())
        .limit(LIMIT)
    )
    return list(session.execute(q).all())


def failed_deploys(session: Session, *, window: Window, environments: Sequence[str], service_id: Scope | int | None) -> list[Explained]:
    """Change failures in the window, newest first, each with why it is one."""
    q = (
        select(Deploy, Service.name)
        .join(Service, Service.id == Deploy.service_id)
        .where(Deploy.change_failure.is_(True), rules.qualifying(environments, service_id), _in_window(Deploy.deployed_at, window))
        .order_by(Deploy.deployed_at.desc())
        .limit(LIMIT)
    )
    out = []
    incident_t = Incident.__table__
    for deploy, name in session.execute(q).all():
        incidents = session.execute(
            select(incident_t.c.id).where(rules.incidents_caused_by(deploy.id)).order_by(incident_t.c.id)
        ).scalars().all()
        rollback = Deploy.__table__.alias("rb")
        rollbacks = session.execute(select(rollback.c.id).where(rules.rollbacks_of(deploy.id, rollback))).scalars().all()
        why = [f"caused INC-{i}" for i in incidents] + [f"rolled back by D-{r}" for r in rollbacks]
        if deploy.marked_failed:
            why.append("marked failed" + (f": {deploy.failure_reason}" if deploy.failure_reason else ""))
        out.append(Explained(deploy, name, why))
    return out


def rework_deploys(session: Session, *, window: Window, environments: Sequence[str], service_id: Scope | int | None) -> list[Explained]:
    """Rework in the window (rollbacks, fixes, hotfixes), newest first, each with why it counts."""
    q = (
        select(Deploy, Service.name)
        .join(Service, Service.id == Deploy.service_id)
        .where(Deploy.rework.is_(True), rules.qualifying(environments, service_id), _in_window(Deploy.deployed_at, window))
        .order_by(Deploy.deployed_at.desc())
        .limit(LIMIT)
    )
    out = []
    for deploy, name in session.execute(q).all():
        why = core_rules.rework_reasons(
            rollback_of=f"D-{deploy.rollback_of_id}" if deploy.rollback_of_id else None,
            fixes=f"INC-{deploy.fixes_id}" if deploy.fixes_id else None,
            marked_rework=deploy.rework,
        )
        out.append(Explained(deploy, name, why))
    return out


def recovered_incidents(session: Session, *, window: Window, environments: Sequence[str], service_id: Scope | int | None) -> list[tuple]:
    """Counted incidents recovered (mitigated, else resolved) in the window, longest first:
    (incident, service name)."""
    q = (
        select(Incident, Service.name)
        .join(Service, Service.id == Incident.service_id)
        .where(rules.incident_in_scope(environments, service_id), _in_window(Incident.recovered_at, window))
        .order_by(Incident.restore_seconds.desc())
        .limit(LIMIT)
    )
    return list(session.execute(q).all())

