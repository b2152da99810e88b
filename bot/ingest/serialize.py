"""Public JSON representations of stored records (what the API returns)."""

from __future__ import annotations

from sqlmodel import Session, select

from bot.core.timeutil import isoformat_z
from bot.store.models import Deploy, DeployCommit, Incident, Service


def _deploy_link(session: Session, deploy_id: int | None) -> dict | None:
    if deploy_id is None:
        return None
    d = session.get(Deploy, deploy_id)
    return {"id": d.external_id, "ref": f"D-{d.id}"}


def deploy_public(session: Session, deploy: Deploy, *, service: str | None = None, commits=None) -> dict:
    """The API's view of a deploy; ``service`` and ``commits`` spare the queries when known."""
    if commits is None:
        commits = session.exec(select(DeployCommit).where(DeployCommit.deploy_id == deploy.id).order_by(DeployCommit.id)).all()
    return {
        "id": deploy.external_id,
        "ref": f"D-{deploy.id}",
        "service": service or session.get(Service, deploy.service_id).name,
        "environment": deploy.environment,
        "version": deploy.version,
        "deployed_at": isoformat_z(deploy.deployed_at),
        "status": deploy.status,
        "commits": [{"sha": c.sha, "committed_at": isoformat_z(c.committed_at)} for c in commits],
        "rollback_of": _deploy_link(session, deploy.rollback_of_id),
        "change_failure": bool(deploy.change_failure),
        "url": deploy.url,
        "note": deploy.note,
        "source": deploy.source,
        "created_at": isoformat_z(deploy.created_at),
    }


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
        "caused_by": _deploy_link(session, incident.caused_by_id),
        "time_to_restore_seconds": incident.restore_seconds,
        "source": incident.source,
        "created_at": isoformat_z(incident.created_at),
    }
