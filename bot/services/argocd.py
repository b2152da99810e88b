"""Argo CD: the body of the Notifications webhook template in docs/ingest.md becomes a deploy.

The template (product contract; Argo CD Notifications' webhook service,
https://argo-cd.readthedocs.io/en/stable/operator-manual/notifications/services/webhook/) sends::

    {"app": "{{.app.metadata.name}}", "revision": "{{.app.status.sync.revision}}",
     "finished_at": "{{.app.status.operationState.finishedAt}}",
     "phase": "{{.app.status.operationState.phase}}",
     "environment": "{{index .app.metadata.labels \\"environment\\"}}"}

``Succeeded`` is a deploy of service ``app``; ``Failed``/``Error`` a failed attempt; any other
phase (``Running``, ``Terminating``) is stored and ignored. One deploy per app + revision +
finished_at (the external id), so a notification sent again changes nothing (the delivery key
adds the phase, so an ignored ``Running`` never hides the final one). A revision that is a
git sha ships the service's pending commits (pushed through GitHub or GitLab) as a GitHub deploy
would; any other revision (a Helm chart version) is the deploy's version without commits. An
empty or missing (``<no value>``) ``environment`` label means production; an empty ``finished_at``
the time it was received.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Sequence

from sqlmodel import Session

from bot.core.errors import ValidationError
from bot.core.inputs import LIMITS, SHA_RE, DeployInput, normalize_environment, normalize_service
from bot.core.timeutil import parse_instant
from bot.services import pending_commits
from bot.services.deploys import DeployOutcome, record_deploy
from bot.services.github import _object

PHASES = {"Succeeded": "success", "Failed": "failure", "Error": "failure"}


NO_VALUE = "<no value>"  # what a Go template prints for a missing map key (a label the app lacks)


def _text(payload: dict, key: str) -> str:
    value = payload.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValidationError("must be text", field=key)
    value = value.strip()
    return "" if value == NO_VALUE else value


def deploy_key(payload: dict) -> str | None:
    """app + revision + finished_at: what makes one deploy (None without an app)."""
    try:
        app, revision, finished = _text(payload, "app"), _text(payload, "revision"), _text(payload, "finished_at")
    except ValidationError:
        return None
    return f"{app}|{revision}|{finished}"[:190] if app else None


def delivery_key(payload: dict) -> str | None:
    """The deploy's key and the phase: a notification sent again is a duplicate, while a
    ``Running`` one (stored, ignored) never hides the ``Succeeded`` that follows it."""
    key = deploy_key(payload)
    phase = payload.get("phase")
    return f"{key}|{phase if isinstance(phase, str) else ''}"[:200] if key else None


def record_operation(session: Session, *, payload: Any, production_environments: Sequence[str], now: datetime) -> DeployOutcome | None:
    payload = _object(payload)
    phase = _text(payload, "phase")
    try:
        service = normalize_service(_text(payload, "app"))
    except ValidationError as exc:
        raise ValidationError(exc.message, field="app") from None
    if phase not in PHASES:
        if not phase:
            raise ValidationError("is required (Succeeded, Failed or Error)", field="phase")
        return None
    revision = _text(payload, "revision")
    if not revision:
        raise ValidationError("is required (the synced revision)", field="revision")
    if len(revision) > LIMITS["version"]:
        raise ValidationError(f"must be at most {LIMITS['version']} characters", field="revision")
    finished = _text(payload, "finished_at")
    try:
        deployed_at = parse_instant(finished) if finished else now
    except ValidationError as exc:
        raise ValidationError(exc.message, field="finished_at") from None
    try:
        environment = normalize_environment(_text(payload, "environment") or None)
    except ValidationError as exc:
        raise ValidationError(exc.message, field="environment") from None
    data = DeployInput(
        service=service,
        deployed_at=deployed_at,
        version=revision,
        environment=environment,
        status=PHASES[phase],
        external_id=f"argocd-{deploy_key(payload)}"[:200],
        note=None if finished else "finished_at was empty: the time it was received",
    )
    sha = revision.lower()
    if SHA_RE.match(sha):
        return pending_commits.record_shipping_deploy(
            session, data=data, sha=sha, production_environments=production_environments, now=now, source="argocd"
        )
    return record_deploy(session, data=data, production_environments=production_environments, now=now, source="argocd")
