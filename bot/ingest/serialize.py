"""Public JSON representations of stored records (what the API returns).

A record reads like the import format's line for it (``rollback_of`` and ``caused_by`` name a
deploy by its ``id``, ``fixes`` an incident), plus what the store adds: ``ref`` (``D-<n>``/``INC-<n>``), the linked
deploy's ``*_ref``, ``source``, ``created_at`` and, for incidents, ``state`` and time to restore.
"""

from __future__ import annotations

from datetime import datetime
from typing import Iterable

from sqlmodel import Session, select

from bot.core.timeutil import isoformat_z
from bot.store.models import Deploy, DeployCommit, Incident, Service


def _deploy_link(session: Session, deploy_id: int | None) -> dict | None:
    if deploy_id is None:
        return None
    return deploy_link(session.get(Deploy, deploy_id))


def deploy_public(session: Session, deploy: Deploy) -> dict:
    """The API's view of a stored deploy."""
    commits = session.exec(select(DeployCommit).where(DeployCommit.deploy_id == deploy.id).order_by(DeployCommit.id)).all()
    return deploy_document(
        id=deploy.id,
        external_id=deploy.external_id,
        service=session.get(Service, deploy.service_id).name,
        environment=deploy.environment,
        version=deploy.version,
        deployed_at=deploy.deployed_at,
        status=deploy.status,
        commits=commits,
        rollback_of=_deploy_link(session, deploy.rollback_of_id),
        change_failure=deploy.change_failure,
        fixes=_incident_link(session, deploy.fixes_id),
        rework=deploy.rework,
        url=deploy.url,
        note=deploy.note,
        source=deploy.source,
        created_at=deploy.created_at,
    )


def deploy_document(
    *, id: int, external_id: str | None, service: str, environment: str, version: str, deployed_at: datetime,
    status: str, commits: Iterable, rollback_of: dict | None, change_failure: bool, url: str | None,
    note: str | None, source: str, created_at: datetime, fixes: dict | None = None, rework: bool = False,
) -> dict:
    """The API's view of a deploy from its values (``commits``: objects with ``sha`` and ``committed_at``).

    A new deploy is answered from what was written, without reading it back.
    """
    return {
        "id": external_id,
        "ref": f"D-{id}",
        "service": service,
        "environment": environment,
        "version": version,
        "deployed_at": isoformat_z(deployed_at),
        "status": status,
        "commits": [{"sha": c.sha, "committed_at": isoformat_z(c.committed_at)} for c in commits],
        "rollback_of": _link_id(rollback_of),
        "rollback_of_ref": rollback_of["ref"] if rollback_of else None,
        "change_failure": bool(change_failure),
        "fixes": _link_id(fixes),
        "fixes_ref": fixes["ref"] if fixes else None,
        "rework": bool(rework),
        "url": url,
        "note": note,
        "source": source,
        "created_at": isoformat_z(created_at),
    }


def deploy_link(deploy: Deploy) -> dict:
    return {"id": deploy.external_id, "ref": f"D-{deploy.id}"}


def incident_link(incident: Incident) -> dict:
    return {"id": incident.external_id, "ref": f"INC-{incident.id}"}


def _incident_link(session: Session, incident_id: int | None) -> dict | None:
    return None if incident_id is None else incident_link(session.get(Incident, incident_id))


def _link_id(link: dict | None) -> str | None:
    """A linked deploy as the import format names it: its ``id``, else its ``D-<n>`` reference."""
    return None if link is None else (link["id"] or link["ref"])


def incident_public(session: Session, incident: Incident) -> dict:
    return {
        "id": incident.external_id,
        "ref": f"INC-{incident.id}",
        "service": session.get(Service, incident.service_id).name,
        "environment": incident.environment,
        "severity": incident.severity,
        "title": incident.title,
        "state": incident.state,
        "started_at": isoformat_z(incident.started_at),
        "acknowledged_at": isoformat_z(incident.acknowledged_at),
        "resolved_at": isoformat_z(incident.resolved_at),
        "mitigated_at": isoformat_z(incident.mitigated_at),
        "status": incident.status,
        "cancel_reason": incident.cancel_reason,
        "not_caused_by_change": bool(incident.not_caused_by_change),
        "caused_by": _link_id(cause := _deploy_link(session, incident.caused_by_id)),
        "caused_by_ref": cause["ref"] if cause else None,
        "time_to_restore_seconds": incident.restore_seconds,
        "lead": incident.lead,
        "source": incident.source,
        "created_at": isoformat_z(incident.created_at),
    }
