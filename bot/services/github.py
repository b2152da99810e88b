"""GitHub: pushes to the default branch become pending commits; a successful deployment ships them.

Mapping (product contract): service = ``repository.name``; a ``push`` to the default branch
records its commits (``id``, ``timestamp``); a ``deployment_status`` of state ``success`` records a
deploy of ``deployment.sha`` to ``deployment.environment`` at ``deployment_status.updated_at`` that
includes the pending commits that deploy ships (the rule in ``bot.services.pending_commits``).
``failure``/``error`` states record a failed deploy attempt.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Sequence

from sqlmodel import Session

from bot.core.errors import ValidationError
from bot.core.inputs import LIMITS, DeployInput, is_link, normalize_environment, normalize_service, normalize_sha
from bot.core.timeutil import parse_instant
from bot.services import pending_commits
from bot.services.deploys import DeployOutcome
from bot.services.pending_commits import MAX_PUSH_COMMITS

EVENTS = {"push", "deployment_status"}


def _object(payload: Any, key: str | None = None) -> dict:
    """The payload (or one of its members) as an object, or a clear 422 naming it."""
    value = payload if key is None else (payload.get(key) if isinstance(payload, dict) else None)
    if value is None and key is not None:
        value = {}
    if not isinstance(value, dict):
        raise ValidationError(f"{key or 'body'} must be a JSON object", field=key)
    return value


def _repo_name(payload: dict) -> str:
    repo = _object(payload, "repository")
    try:
        return normalize_service(repo.get("name"))
    except ValidationError as exc:
        raise ValidationError(exc.message, field="repository.name") from None


def record_push(session: Session, *, payload: dict, now: datetime) -> int | None:
    """Store the commits of a push to the default branch; returns the number recorded (None: ignored)."""
    payload = _object(payload)
    repo = _object(payload, "repository")
    default = repo.get("default_branch") or repo.get("master_branch") or "main"
    if payload.get("ref") != f"refs/heads/{default}" or payload.get("deleted"):
        return None
    service = _repo_name(payload)
    after = normalize_sha(payload.get("after"))
    pushed_at = now
    stamp = repo.get("pushed_at")
    if isinstance(stamp, (int, float)) and not isinstance(stamp, bool) and 0 < stamp < 4_102_444_800:  # before 2100
        pushed_at = datetime.fromtimestamp(stamp, tz=timezone.utc)
    commits = payload.get("commits") or []
    if not isinstance(commits, list):
        raise ValidationError("commits must be a list", field="commits")
    entries = [c for c in commits[:MAX_PUSH_COMMITS] if isinstance(c, dict)]
    pairs = [
        (normalize_sha(c.get("id")), parse_instant(c["timestamp"]) if isinstance(c.get("timestamp"), str) else None)
        for c in entries
    ]
    return pending_commits.record_push(session, source="github", service=service, after=after, pushed_at=pushed_at, commits=pairs, now=now)


def record_deployment_status(
    session: Session, *, payload: dict, production_environments: Sequence[str], now: datetime
) -> DeployOutcome | None:
    """Record the deploy a ``deployment_status`` reports; None for states that are not final."""
    payload = _object(payload)
    status = _object(payload, "deployment_status")
    deployment = _object(payload, "deployment")
    state = status.get("state")
    if state not in ("success", "failure", "error"):
        return None
    service_name = _repo_name(payload)
    sha = normalize_sha(deployment.get("sha"))
    environment = normalize_environment(deployment.get("environment") or status.get("environment") or "production")
    when = status.get("updated_at") or status.get("created_at")
    if not isinstance(when, str):
        raise ValidationError("deployment_status.updated_at is missing", field="deployment_status.updated_at")
    deployed_at = parse_instant(when)
    url = status.get("target_url") or status.get("log_url") or None
    data = DeployInput(
        service=service_name,
        deployed_at=deployed_at,
        version=sha,  # product contract: version and commit = deployment.sha
        environment=environment,
        status="success" if state == "success" else "failure",
        external_id=f"github-deployment-{deployment.get('id')}-status-{status.get('id')}",
        url=url if is_link(url) else None,  # a target_url that is not a real link is dropped, not refused
        note=_description(status.get("description")),
    )
    return pending_commits.record_shipping_deploy(
        session, data=data, sha=sha, production_environments=production_environments, now=now, source="github"
    )


def _description(value: Any) -> str | None:
    """A status description as the deploy's note (GitHub allows 140 characters; anything that is
    not text within the note's limit is left out rather than costing the deploy)."""
    if not isinstance(value, str) or not value.strip() or len(value.strip()) > LIMITS["note"]:
        return None
    return value.strip()
