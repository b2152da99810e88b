"""Finding services, deploys and incidents by the references people and systems use."""

from __future__ import annotations

import re
from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from bot.core.errors import NotFound, ValidationError
from bot.core.inputs import service_key
from bot.store.models import Deploy, Incident, Service

_DEPLOY_REF = re.compile(r"^(?:d-?)?([0-9]{1,18})$", re.IGNORECASE)
_INCIDENT_REF = re.compile(r"^(?:inc-?)?([0-9]{1,18})$", re.IGNORECASE)
# Where ids from outside systems come first (API, webhooks), only the prefixed form names our own
# numbers: a bare "42" is someone's external id, never silently D-42.
_DEPLOY_LABEL = re.compile(r"^d-([0-9]{1,18})$", re.IGNORECASE)
_INCIDENT_LABEL = re.compile(r"^inc-([0-9]{1,18})$", re.IGNORECASE)


def deploy_ref(deploy: Deploy) -> str:
    return f"D-{deploy.id}"


def incident_ref(incident: Incident) -> str:
    return f"INC-{incident.id}"


_CREATED = "dora.created_services"


def note_created_service(session: Session, name: str) -> None:
    """Remember that this unit of work created the service ``name`` (machines' answers list them)."""
    names = session.info.setdefault(_CREATED, [])
    if name not in names:
        names.append(name)


def created_services(session: Session) -> list[str]:
    """The services this unit of work created, in order: the ``created_services`` of an answer."""
    return list(session.info.get(_CREATED, []))


def get_or_create_service(session: Session, name: str, *, now: datetime) -> Service:
    """The service ``name`` (already normalized) means, created with that display name on first use."""
    key = service_key(name)
    service = session.exec(select(Service).where(Service.key == key)).first()
    if service is not None:
        return service
    try:
        with session.begin_nested():
            service = Service(name=name, key=key, created_at=now)
            session.add(service)
    except IntegrityError:  # created concurrently by another request
        return session.exec(select(Service).where(Service.key == key)).one()
    note_created_service(session, name)
    return service


def find_service(session: Session, name: str) -> Service:
    service = session.exec(select(Service).where(Service.key == service_key(name))).first()
    if service is None:
        known = session.exec(select(Service.name).order_by(Service.name).limit(20)).all()
        hint = f" Known services: {', '.join(known)}." if known else " No service has been recorded yet."
        raise NotFound(f"No service called `{name}`.{hint}")
    return service


def find_deploy(session: Session, ref: str, *, external_first: bool = False) -> Deploy:
    """A deploy by ``D-12`` / ``12``, or by the external id a CI system gave it."""
    text = str(ref).strip()
    if external_first:
        found = session.exec(select(Deploy).where(Deploy.external_id == text)).first()
        if found is not None:
            return found
    match = (_DEPLOY_LABEL if external_first else _DEPLOY_REF).match(text)
    if match:
        found = session.get(Deploy, int(match.group(1)))
        if found is not None:
            return found
    elif not external_first:
        found = session.exec(select(Deploy).where(Deploy.external_id == text)).first()
        if found is not None:
            return found
        raise ValidationError(f"`{ref}` is not a deploy reference; use D-<number>, like D-12")
    raise NotFound(f"No deploy `{ref}`.")


def find_incident(session: Session, ref: str, *, external_first: bool = False, for_update: bool = False) -> Incident:
    """An incident by ``INC-7`` / ``7``, or by its external id (PagerDuty, Alertmanager...).

    ``for_update`` locks the row until the unit of work ends (PostgreSQL; SQLite writers are
    serialized anyway), so two clicks on the same button apply the change once.
    """
    text = str(ref).strip()

    def one(condition):
        query = select(Incident).where(condition)
        if for_update:
            query = query.with_for_update().execution_options(populate_existing=True)
        return session.exec(query).first()

    if external_first:
        found = one(Incident.external_id == text)
        if found is not None:
            return found
    match = (_INCIDENT_LABEL if external_first else _INCIDENT_REF).match(text)
    if match:
        found = one(Incident.id == int(match.group(1)))
        if found is not None:
            return found
    elif not external_first:
        found = one(Incident.external_id == text)
        if found is not None:
            return found
        raise ValidationError(f"`{ref}` is not an incident reference; use INC-<number>, like INC-7")
    raise NotFound(f"No incident `{ref}`.")
