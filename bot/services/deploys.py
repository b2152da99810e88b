"""Deploy use-cases: record, mark as a change failure, roll back, list."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Sequence

from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, select

from bot.core.errors import NotFound, ValidationError
from bot.core.inputs import DeployInput, normalize_environment, normalize_service
from bot.store.derived import lead_sample_row, refresh_change_failure, upsert_lead_samples
from bot.store.models import Deploy, DeployCommit, Incident, Service

deploy_t = Deploy.__table__
commit_t = DeployCommit.__table__
service_t = Service.__table__


def _insert(conn, table):
    return (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(table)
from bot.services.lookup import deploy_ref, find_deploy, find_service


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


def _service_id(conn, name: str, *, now: datetime) -> int:
    """The id of the service called ``name``, created on first use (safe under concurrency)."""
    found = conn.execute(select(service_t.c.id).where(service_t.c.name == name)).scalar()
    if found is None:
        conn.execute(_insert(conn, service_t).on_conflict_do_nothing(index_elements=["name"]), {"name": name, "created_at": now})
        found = conn.execute(select(service_t.c.id).where(service_t.c.name == name)).scalar_one()
    return found


def record_deploy(
    session: Session,
    *,
    data: DeployInput,
    production_environments: Sequence[str],
    now: datetime,
    source: str = "api",
    actor: str | None = None,
    with_open_incidents: bool = True,
) -> DeployOutcome:
    """Store a deploy with its commits; a retry with the same external id returns the stored one.

    Written with a handful of Core statements (this is the API's hot path): the insert itself
    decides a race between two retries of the same id (``ON CONFLICT DO NOTHING``).
    ``with_open_incidents=False`` skips looking up the service's open incidents (for the card).
    """
    conn = session.connection()

    def stored(deploy_id: int) -> DeployOutcome:
        existing = session.get(Deploy, deploy_id)
        return DeployOutcome(deploy=existing, service=session.get(Service, existing.service_id), created=False)

    if data.external_id is not None:
        existing_id = conn.execute(select(deploy_t.c.id).where(deploy_t.c.external_id == data.external_id)).scalar()
        if existing_id is not None:
            return stored(existing_id)
    service_id = _service_id(conn, data.service, now=now)
    target = None
    if data.rollback_of is not None:
        try:
            target = find_deploy(session, data.rollback_of, external_first=True)
        except NotFound:
            raise ValidationError(f"no deploy with id `{data.rollback_of}` is stored", field="rollback_of") from None
        _check_rollback_target(target, service_id, data.deployed_at)
    values = dict(
        external_id=data.external_id,
        service_id=service_id,
        environment=data.environment,
        version=data.version,
        deployed_at=data.deployed_at,
        status=data.status,
        rollback_of_id=target.id if target else None,
        marked_failed=data.change_failure,
        failure_reason=None,
        change_failure=data.change_failure,
        url=data.url,
        note=data.note,
        source=source,
        created_by=actor,
        created_at=now,
    )
    insert = _insert(conn, deploy_t).values(**values).returning(deploy_t.c.id)
    if data.external_id is not None:
        insert = insert.on_conflict_do_nothing(index_elements=["external_id"])
    deploy_id = conn.execute(insert).scalar()
    if deploy_id is None:
        # The same external id was stored concurrently: this request is a retry of that one.
        return stored(conn.execute(select(deploy_t.c.id).where(deploy_t.c.external_id == data.external_id)).scalar_one())
    if data.commits:
        conn.execute(
            commit_t.insert(),
            [{"deploy_id": deploy_id, "sha": c.sha, "committed_at": c.committed_at} for c in data.commits],
        )
        if data.status == "success" and data.environment in production_environments:
            upsert_lead_samples(
                conn,
                [
                    lead_sample_row(service_id=service_id, deploy_id=deploy_id, deployed_at=data.deployed_at, sha=c.sha, committed_at=c.committed_at)
                    for c in data.commits
                ],
            )
    if target is not None:
        refresh_change_failure(conn, [target.id])
        session.refresh(target)
    deploy = Deploy(id=deploy_id, **values)  # what was written; not attached to the session
    service = Service(id=service_id, name=data.service, created_at=now)
    return DeployOutcome(
        deploy=deploy,
        service=service,
        created=True,
        open_incidents=open_incidents_of(session, service_id) if with_open_incidents else [],
    )


def _check_rollback_target(target: Deploy, service_id: int, deployed_at: datetime) -> None:
    if target.service_id != service_id:
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

