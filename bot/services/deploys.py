"""Deploy use-cases: record, mark as a change failure, roll back, list."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Sequence

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from bot.core.errors import NotFound, ValidationError
from bot.core.inputs import DeployInput, normalize_environment, normalize_service
from bot.store.derived import lead_sample_row, refresh_change_failure, upsert_lead_samples
from bot.store.models import Deploy, DeployCommit, Incident, Service
from bot.services.lookup import deploy_ref, find_deploy, find_service, get_or_create_service


@dataclass
class DeployOutcome:
    deploy: Deploy
    service: Service
    created: bool
    open_incidents: list[Incident] = field(default_factory=list)

    @property
    def ref(self) -> str:
        return deploy_ref(self.deploy)


def qualifies(deploy: Deploy, production_environments: Sequence[str]) -> bool:
    return deploy.status == "success" and deploy.environment in production_environments


def open_incidents_of(session: Session, service_id: int) -> list[Incident]:
    return list(
        session.exec(
            select(Incident)
            .where(Incident.service_id == service_id, col(Incident.resolved_at).is_(None))
            .order_by(Incident.started_at)
        ).all()
    )


def record_deploy(
    session: Session,
    *,
    data: DeployInput,
    production_environments: Sequence[str],
    now: datetime,
    source: str = "api",
    actor: str | None = None,
) -> DeployOutcome:
    """Store a deploy with its commits; a retry with the same external id returns the stored one."""
    if data.external_id is not None:
        existing = session.exec(select(Deploy).where(Deploy.external_id == data.external_id)).first()
        if existing is not None:
            return DeployOutcome(deploy=existing, service=session.get(Service, existing.service_id), created=False)
    service = get_or_create_service(session, data.service, now=now)
    target = None
    if data.rollback_of is not None:
        try:
            target = find_deploy(session, data.rollback_of, external_first=True)
        except NotFound:
            raise ValidationError(f"no deploy with id `{data.rollback_of}` is stored", field="rollback_of") from None
        _check_rollback_target(target, service, data.deployed_at)
    deploy = Deploy(
        external_id=data.external_id,
        service_id=service.id,
        environment=data.environment,
        version=data.version,
        deployed_at=data.deployed_at,
        status=data.status,
        rollback_of_id=target.id if target else None,
        marked_failed=data.change_failure,
        change_failure=data.change_failure,
        url=data.url,
        note=data.note,
        source=source,
        created_by=actor,
        created_at=now,
    )
    try:
        with session.begin_nested():
            session.add(deploy)
            session.flush()
    except IntegrityError:
        # The same external id was stored concurrently: this request is a retry of that one.
        existing = session.exec(select(Deploy).where(Deploy.external_id == data.external_id)).first()
        if existing is None:
            raise
        return DeployOutcome(deploy=existing, service=service, created=False)
    for commit in data.commits:
        session.add(DeployCommit(deploy_id=deploy.id, sha=commit.sha, committed_at=commit.committed_at))
    session.flush()
    conn = session.connection()
    if qualifies(deploy, production_environments):
        upsert_lead_samples(
            conn,
            [
                lead_sample_row(
                    service_id=service.id,
                    deploy_id=deploy.id,
                    deployed_at=deploy.deployed_at,
                    sha=c.sha,
                    committed_at=c.committed_at,
                )
                for c in data.commits
            ],
        )
    if target is not None:
        refresh_change_failure(conn, [target.id])
        session.refresh(target)
    return DeployOutcome(
        deploy=deploy, service=service, created=True, open_incidents=open_incidents_of(session, service.id)
    )


def _check_rollback_target(target: Deploy, service: Service, deployed_at: datetime) -> None:
    if target.service_id != service.id:
        raise ValidationError(
            f"rollback_of: {deploy_ref(target)} is a deploy of another service; a rollback reverts a deploy of the same service",
            field="rollback_of",
        )
    if target.deployed_at > deployed_at:
        raise ValidationError(
            f"rollback_of: {deploy_ref(target)} was deployed after this deploy; a rollback can only revert an earlier deploy",
            field="rollback_of",
        )


def mark_change_failure(
    session: Session, *, ref: str, reason: str | None, actor: str | None, external_first: bool = False
) -> tuple[Deploy, bool]:
    """Mark a deploy as a change failure. Returns (deploy, changed)."""
    deploy = find_deploy(session, ref, external_first=external_first)
    if deploy.marked_failed:
        return deploy, False
    deploy.marked_failed = True
    deploy.failure_reason = reason or deploy.failure_reason
    session.add(deploy)
    session.flush()
    refresh_change_failure(session.connection(), [deploy.id])
    session.refresh(deploy)
    return deploy, True


def previous_good_deploy(
    session: Session, *, service_id: int, before: Deploy, environment: str
) -> Deploy | None:
    """The latest successful deploy before ``before`` with another version and no change failure."""
    return session.exec(
        select(Deploy)
        .where(
            Deploy.service_id == service_id,
            Deploy.environment == environment,
            Deploy.status == "success",
            Deploy.change_failure == False,  # noqa: E712 - SQL comparison
            Deploy.version != before.version,
            Deploy.deployed_at <= before.deployed_at,
            Deploy.id != before.id,
        )
        .order_by(col(Deploy.deployed_at).desc(), col(Deploy.id).desc())
        .limit(1)
    ).first()


def record_rollback(
    session: Session,
    *,
    service: str,
    now: datetime,
    to_version: str | None = None,
    environment: str = "production",
    of: str | None = None,
    actor: str | None = None,
    source: str = "slack",
    note: str | None = None,
) -> DeployOutcome:
    """Roll back the latest deploy of ``service`` (or ``of``) to the previous good version (or ``to``)."""
    svc = find_service(session, normalize_service(service))
    environment = normalize_environment(environment)
    if of is not None:
        current = find_deploy(session, of)
        if current.service_id != svc.id:
            raise ValidationError(f"{deploy_ref(current)} is not a deploy of `{svc.name}`")
        environment = current.environment
    else:
        current = session.exec(
            select(Deploy)
            .where(Deploy.service_id == svc.id, Deploy.environment == environment, Deploy.status == "success")
            .order_by(col(Deploy.deployed_at).desc(), col(Deploy.id).desc())
            .limit(1)
        ).first()
        if current is None:
            raise NotFound(f"`{svc.name}` has no successful {environment} deploy to roll back.")
    if to_version is None:
        good = previous_good_deploy(session, service_id=svc.id, before=current, environment=environment)
        if good is None:
            raise NotFound(
                f"No earlier good version of `{svc.name}` in {environment} to roll back to; name one with to=<version>."
            )
        to_version = good.version
    if to_version == current.version:
        raise ValidationError(f"{deploy_ref(current)} already runs version {to_version}; nothing to roll back to.")
    deploy = Deploy(
        service_id=svc.id,
        environment=environment,
        version=to_version,
        deployed_at=max(now, current.deployed_at),
        status="success",
        rollback_of_id=current.id,
        note=note or f"rollback of {deploy_ref(current)} ({current.version})",
        source=source,
        created_by=actor,
        created_at=now,
    )
    session.add(deploy)
    session.flush()
    refresh_change_failure(session.connection(), [current.id])
    session.refresh(current)
    return DeployOutcome(deploy=deploy, service=svc, created=True)


def list_deploys(
    session: Session,
    *,
    service: str | None = None,
    environment: str | None = None,
    limit: int = 10,
    before_id: int | None = None,
) -> list[tuple[Deploy, str]]:
    """The latest deploys, newest first, with their service names."""
    query = select(Deploy, Service.name).join(Service, Service.id == Deploy.service_id)
    if service:
        query = query.where(Service.name == normalize_service(service))
    if environment:
        query = query.where(Deploy.environment == normalize_environment(environment))
    if before_id is not None:
        query = query.where(Deploy.id < before_id)
    query = query.order_by(col(Deploy.deployed_at).desc(), col(Deploy.id).desc()).limit(limit)
    return [(d, name) for d, name in session.exec(query).all()]


def commits_of(session: Session, deploy_id: int) -> list[DeployCommit]:
    return list(session.exec(select(DeployCommit).where(DeployCommit.deploy_id == deploy_id)).all())

