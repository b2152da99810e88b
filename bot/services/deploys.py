"""Deploy use-cases: record, mark as a change failure, roll back, list."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from datetime import datetime
from typing import Sequence

from sqlalchemy import Connection
from sqlmodel import Session, col, select

from bot.core import rules
from bot.core.errors import NotFound, ValidationError
from bot.core.inputs import DeployInput, check_text, normalize_environment, normalize_service, service_key
from bot.services.lookup import deploy_ref, find_deploy, find_incident, find_service, incident_ref, note_created_service
from bot.store.db import lock_external_id
from bot.store.derived import refresh_change_failure, stored_instant, upsert_stored_lead_samples
from bot.store.models import Deploy, Incident, Service


@dataclass
class DeployOutcome:
    deploy: Deploy
    service: Service
    created: bool
    open_incidents: list[Incident] = field(default_factory=list)

    @property
    def ref(self) -> str:
        return deploy_ref(self.deploy)


@dataclass(slots=True)
class WrittenDeploy:
    """What ``write_deploy`` did: the new deploy's ids (``created``), or the stored one's id (a retry)."""

    id: int
    service_id: int | None
    created: bool
    rollback_target: Deploy | None = None
    service_name: str | None = None  # the service's display name (it may be spelled otherwise in the request)
    fixed: Incident | None = None
    created_service: bool = False  # this write created the service


def open_incidents_of(session: Session, service_id: int) -> list[Incident]:
    return list(
        session.exec(
            select(Incident)
            .where(Incident.service_id == service_id, col(Incident.resolved_at).is_(None), col(Incident.status).is_(None))
            .order_by(Incident.started_at)
        ).all()
    )


# --- the write path, on the driver ---------------------------------------------------------
# Recording a deploy is the ingest API's hot path: its few statements go straight to the database
# driver (like the import's bulk rows, ``bot.store.derived.write_rows``), with values in the form
# the ORM would have stored them in (``stored_instant``). The insert itself decides whether a
# request is new or a retry (``ON CONFLICT (external_id) DO NOTHING``), also between two
# concurrent retries, and it finds the service by name in the same statement.

_DEPLOY_COLUMNS = (
    "external_id", "service_id", "environment", "version", "deployed_at", "status", "rollback_of_id",
    "marked_failed", "failure_reason", "change_failure", "fixes_id", "rework", "url", "note", "source", "created_by",
    "created_at",
)


@dataclass(frozen=True)
class _Statements:
    """Driver SQL of the write path for one dialect (positional parameters)."""

    mark: str
    insert_deploy: str  # every column but service_id as parameters, then the service's key
    deploy_by_external_id: str
    service_by_key: str
    insert_service: str


@functools.cache
def _statements(dialect: str) -> _Statements:
    mark = "%s" if dialect == "postgresql" else "?"
    values = ", ".join("service.id" if c == "service_id" else mark for c in _DEPLOY_COLUMNS)
    return _Statements(
        mark=mark,
        # (SQLite needs the WHERE of an INSERT ... SELECT to tell its ON CONFLICT apart from a join.)
        insert_deploy=(
            f"INSERT INTO deploy ({', '.join(_DEPLOY_COLUMNS)}) SELECT {values} FROM service WHERE service.key = {mark}"
            " ON CONFLICT (external_id) DO NOTHING"
            " RETURNING id, service_id, (SELECT s.name FROM service s WHERE s.id = service_id)"
        ),
        deploy_by_external_id=f"SELECT id FROM deploy WHERE external_id = {mark}",
        service_by_key=f"SELECT id FROM service WHERE key = {mark}",
        # No conflict target: the display name is unique too, and PostgreSQL arbitrates only the
        # named index, so two first deploys of a new service racing on `name` would otherwise fail.
        insert_service=f"INSERT INTO service (name, key, created_at) VALUES ({mark}, {mark}, {mark}) ON CONFLICT DO NOTHING",
    )


@functools.lru_cache(maxsize=64)
def _insert_commits_sql(dialect: str, rows: int) -> str:
    mark = _statements(dialect).mark
    return f"INSERT INTO deploy_commit (deploy_id, sha, committed_at) VALUES {', '.join([f'({mark}, {mark}, {mark})'] * rows)}"


def write_deploy(
    conn: Connection,
    data: DeployInput,
    *,
    production_environments: Sequence[str],
    now: datetime,
    source: str = "api",
    actor: str | None = None,
    session: Session | None = None,
) -> WrittenDeploy:
    """Store a deploy with its commits and lead-time samples, in ``conn``'s transaction.

    A deploy whose external id is already stored is left as it is (``created=False``, its id).
    ``session`` (bound to ``conn``) is used for the rare ORM reads (a rollback's target); one is
    made when needed.
    """
    sql = _statements(conn.dialect.name)
    instant = stored_instant(conn)
    key = service_key(data.service)
    cursor = conn.connection.dbapi_connection.cursor()
    try:

        def stored_id() -> int | None:
            if data.external_id is None:
                return None
            cursor.execute(sql.deploy_by_external_id, (data.external_id,))
            row = cursor.fetchone()
            return None if row is None else row[0]

        created_service = False

        def ensure_service() -> None:
            nonlocal created_service
            cursor.execute(sql.insert_service, (data.service, key, instant(now)))
            created_service = created_service or cursor.rowcount == 1

        target = fixed = None
        if data.external_id is not None and conn.dialect.name == "postgresql":
            # A retry must not draw a sequence value (D-<n> would skip one): look first, under a
            # lock on this id so a concurrent copy is seen too (``lock_external_id``).
            lock_external_id(conn, "deploy", data.external_id, cursor=cursor)
            if (found := stored_id()) is not None:
                return WrittenDeploy(found, None, created=False)
        if data.fixes is not None:
            if (found := stored_id()) is not None:
                return WrittenDeploy(found, None, created=False)
            if session is not None:
                fixed = _fixed_incident(session, data, external_first=source != "slack")
            else:
                with Session(bind=conn) as own:
                    fixed = _fixed_incident(own, data, external_first=source != "slack")
        if data.rollback_of is not None:
            # The rare path: the target is checked against the deploy's service before anything
            # is written, so the service is settled first.
            if (found := stored_id()) is not None:
                return WrittenDeploy(found, None, created=False)
            ensure_service()
            cursor.execute(sql.service_by_key, (key,))
            service_id = cursor.fetchone()[0]
            if session is not None:
                target = _rollback_target(session, data, service_id)
            else:
                with Session(bind=conn) as own:
                    target = _rollback_target(own, data, service_id)
        rework = rules.is_rework(rollback_of=target, fixes=fixed, marked_rework=data.rework)
        params = (
            data.external_id, data.environment, data.version, instant(data.deployed_at), data.status,
            target.id if target else None, data.change_failure, None, data.change_failure,
            fixed.id if fixed else None, rework, data.url, data.note, source, actor, instant(now), key,
        )
        cursor.execute(sql.insert_deploy, params)
        row = cursor.fetchone()
        if row is None:
            # Nothing inserted: the external id is stored (a retry, maybe concurrent), or the
            # service is new. A retry never creates the service it names.
            if (found := stored_id()) is not None:
                return WrittenDeploy(found, None, created=False)
            ensure_service()
            cursor.execute(sql.insert_deploy, params)
            row = cursor.fetchone()
            if row is None:  # PostgreSQL: the same id was committed concurrently in between
                return WrittenDeploy(stored_id(), None, created=False)
        deploy_id, service_id, service_name = row
        if data.commits:
            cursor.execute(
                _insert_commits_sql(conn.dialect.name, len(data.commits)),
                [v for c in data.commits for v in (deploy_id, c.sha, instant(c.committed_at))],
            )
            if rules.qualifies(data.status, data.environment, production_environments):
                deployed_at = instant(data.deployed_at)
                upsert_stored_lead_samples(
                    conn,
                    [
                        (service_id, c.sha, deploy_id, deployed_at, instant(c.committed_at),
                         rules.lead_seconds(data.deployed_at, c.committed_at))
                        for c in data.commits
                    ],
                    cursor=cursor,
                )
    finally:
        cursor.close()
    if target is not None:
        refresh_change_failure(conn, [target.id])
    return WrittenDeploy(
        deploy_id, service_id, created=True, rollback_target=target, service_name=service_name, fixed=fixed,
        created_service=created_service,
    )


def _fixed_incident(session: Session, data: DeployInput, *, external_first: bool) -> Incident:
    """The incident a deploy says it fixes: it must be stored and have started before the deploy."""
    try:
        incident = find_incident(session, data.fixes, external_first=external_first)
    except NotFound:
        raise ValidationError(f"no incident `{data.fixes}`", field="fixes") from None
    if incident.started_at > data.deployed_at:
        raise ValidationError(
            f"{incident_ref(incident)} started after this deploy; a fix is deployed after the incident began",
            field="fixes",
        )
    return incident


def _rollback_target(session: Session, data: DeployInput, service_id: int) -> Deploy:
    try:
        target = find_deploy(session, data.rollback_of, external_first=True)
    except NotFound:
        raise ValidationError(f"no deploy `{data.rollback_of}`", field="rollback_of") from None
    _check_rollback_target(target, service_id, data.deployed_at)
    return target


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

    ``with_open_incidents=False`` skips looking up the service's open incidents (for the card).
    """
    written = write_deploy(
        session.connection(), data, production_environments=production_environments, now=now,
        source=source, actor=actor, session=session,
    )
    if not written.created:
        existing = session.get(Deploy, written.id)
        return DeployOutcome(deploy=existing, service=session.get(Service, existing.service_id), created=False)
    if written.created_service:
        note_created_service(session, written.service_name or data.service)
    if data.team is not None:
        from bot.services.teams import assign_team

        assign_team(session, written.service_id, data.team, now=now)
    if written.rollback_target is not None:
        session.refresh(written.rollback_target)
    deploy = Deploy(  # what was written; not attached to the session
        id=written.id,
        external_id=data.external_id,
        service_id=written.service_id,
        environment=data.environment,
        version=data.version,
        deployed_at=data.deployed_at,
        status=data.status,
        rollback_of_id=written.rollback_target.id if written.rollback_target else None,
        marked_failed=data.change_failure,
        failure_reason=None,
        change_failure=data.change_failure,
        fixes_id=written.fixed.id if written.fixed else None,
        rework=rules.is_rework(rollback_of=written.rollback_target, fixes=written.fixed, marked_rework=data.rework),
        url=data.url,
        note=data.note,
        source=source,
        created_by=actor,
        created_at=now,
    )
    service = Service(id=written.service_id, name=written.service_name or data.service, created_at=now)
    return DeployOutcome(
        deploy=deploy,
        service=service,
        created=True,
        open_incidents=open_incidents_of(session, written.service_id) if with_open_incidents else [],
    )


def _check_rollback_target(target: Deploy, service_id: int, deployed_at: datetime) -> None:
    if target.service_id != service_id:
        raise ValidationError(
            f"{deploy_ref(target)} is a deploy of another service; a rollback reverts a deploy of the same service",
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
    reason = check_text(reason, "reason")
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


def _check_ran_before(session: Session, svc: Service, environment: str, version: str, current: Deploy) -> None:
    """A rollback goes back to a version that ran: one deployed successfully to that environment
    before the deploy it reverts (a typo like ``to=0.0.0-nonexistent`` is refused, nothing stored)."""
    earlier = (
        select(Deploy.version)
        .where(Deploy.service_id == svc.id, Deploy.environment == environment, Deploy.status == "success",
               col(Deploy.deployed_at) <= current.deployed_at, Deploy.id != current.id)
    )
    if session.exec(earlier.where(Deploy.version == version).limit(1)).first() is not None:
        return
    recent = list(dict.fromkeys(session.exec(earlier.order_by(col(Deploy.deployed_at).desc()).limit(20)).all()))[:5]
    known = f" Versions it ran before: {', '.join(recent)}." if recent else ""
    raise ValidationError(f"`{svc.name}` never ran version `{version}` in {environment} before {deploy_ref(current)}.{known}", field="to")


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
    _check_ran_before(session, svc, environment, to_version, current)
    deploy = Deploy(
        service_id=svc.id,
        environment=environment,
        version=to_version,
        deployed_at=max(now, current.deployed_at),
        status="success",
        rollback_of_id=current.id,
        rework=rules.is_rework(rollback_of=current.id, fixes=None, marked_rework=False),
        note=note,  # the card and the API show what it reverts from rollback_of
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
        query = query.where(Service.key == service_key(normalize_service(service)))
    if environment:
        query = query.where(Deploy.environment == normalize_environment(environment))
    if before_id is not None:
        query = query.where(Deploy.id < before_id)
    query = query.order_by(col(Deploy.deployed_at).desc(), col(Deploy.id).desc()).limit(limit)
    return [(d, name) for d, name in session.exec(query).all()]
