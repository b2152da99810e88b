"""GitHub: pushes to the default branch become pending commits; a successful deployment ships them.

Mapping (product contract): service = ``repository.name``; a ``push`` to the default branch
records its commits (``id``, ``timestamp``); a ``deployment_status`` of state ``success`` records a
deploy of ``deployment.sha`` to ``deployment.environment`` at ``deployment_status.updated_at`` that
includes the pending commits of that repository pushed up to the push whose ``after`` is that sha —
or, when no such push is known, pushed before the deploy time — that no earlier deploy included.
Only production deploys consume pending commits, so a staging deploy first does not take a
commit's lead time away from the production deploy that really ships it. ``failure``/``error``
states record a failed deploy attempt.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Sequence

from sqlalchemy import update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, select

from bot.core.errors import ValidationError
from bot.core.inputs import LIMITS, CommitInput, DeployInput, is_link, normalize_environment, normalize_service, normalize_sha
from bot.core.rules import qualifies
from bot.core.timeutil import parse_instant
from bot.services.deploys import DeployOutcome, record_deploy
from bot.services.lookup import get_or_create_service
from bot.store.models import GithubPush, PendingCommit

MAX_PUSH_COMMITS = 2048


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
    service = get_or_create_service(session, _repo_name(payload), now=now)
    after = normalize_sha(payload.get("after"))
    pushed_at = now
    stamp = repo.get("pushed_at")
    if isinstance(stamp, (int, float)) and not isinstance(stamp, bool) and 0 < stamp < 4_102_444_800:  # before 2100
        pushed_at = datetime.fromtimestamp(stamp, tz=timezone.utc)
    push = GithubPush(service_id=service.id, after_sha=after, pushed_at=pushed_at)
    session.add(push)
    session.flush()
    commits = payload.get("commits") or []
    if not isinstance(commits, list):
        raise ValidationError("commits must be a list", field="commits")
    entries = [c for c in commits[:MAX_PUSH_COMMITS] if isinstance(c, dict)]
    shas = [normalize_sha(c.get("id")) for c in entries]
    known = set(
        session.exec(select(PendingCommit.sha).where(PendingCommit.service_id == service.id, col(PendingCommit.sha).in_(shas))).all()
    ) if shas else set()
    rows = []
    for entry, sha in zip(entries, shas, strict=True):
        if sha in known:
            continue
        known.add(sha)
        ts = parse_instant(entry["timestamp"]) if isinstance(entry.get("timestamp"), str) else None
        rows.append({"service_id": service.id, "push_id": push.id, "sha": sha, "committed_at": ts, "pushed_at": pushed_at})
    if rows:
        # One multi-row insert (a push may list 2,048 commits), not an ORM object per commit; a
        # commit another push recorded meanwhile is left to that push.
        insert = (postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert)(PendingCommit.__table__)
        session.execute(insert.on_conflict_do_nothing(index_elements=["service_id", "sha"]), rows)
    return len(rows)


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
    external_id = f"github-deployment-{deployment.get('id')}-status-{status.get('id')}"
    url = status.get("target_url") or status.get("log_url") or None
    service = get_or_create_service(session, service_name, now=now)
    pending: list = []  # (id, sha, committed_at) of the commits this deploy ships
    if state == "success":
        push = session.exec(
            select(GithubPush).where(GithubPush.service_id == service.id, GithubPush.after_sha == sha).order_by(col(GithubPush.id).desc())
        ).first()
        waiting = select(PendingCommit.id, PendingCommit.sha, PendingCommit.committed_at).where(
            PendingCommit.service_id == service.id, col(PendingCommit.deploy_id).is_(None)
        )
        if push is not None:
            waiting = waiting.where(PendingCommit.push_id <= push.id)
        else:
            waiting = waiting.where(PendingCommit.pushed_at <= deployed_at)
        pending = list(session.execute(waiting.order_by(PendingCommit.id)).all())
    commits = {p.sha: CommitInput(sha=p.sha, committed_at=p.committed_at) for p in pending}
    if sha not in commits:
        head = session.exec(select(PendingCommit).where(PendingCommit.service_id == service.id, PendingCommit.sha == sha)).first()
        commits[sha] = CommitInput(sha=sha, committed_at=head.committed_at if head else None)
    data = DeployInput(
        service=service_name,
        deployed_at=deployed_at,
        version=sha,  # product contract: version and commit = deployment.sha
        environment=environment,
        status="success" if state == "success" else "failure",
        commits=tuple(commits.values()),
        external_id=external_id,
        url=url if is_link(url) else None,  # a target_url that is not a real link is dropped, not refused
        note=_description(status.get("description")),
    )
    outcome = record_deploy(session, data=data, production_environments=production_environments, now=now, source="github")
    if outcome.created and qualifies(data.status, environment, production_environments) and pending:
        ids = [p.id for p in pending]
        for start in range(0, len(ids), 1000):
            session.execute(
                update(PendingCommit.__table__).where(PendingCommit.__table__.c.id.in_(ids[start : start + 1000])).values(deploy_id=outcome.deploy.id)
            )
    return outcome


def _description(value: Any) -> str | None:
    """A status description as the deploy's note (GitHub allows 140 characters; anything that is
    not text within the note's limit is left out rather than costing the deploy)."""
    if not isinstance(value, str) or not value.strip() or len(value.strip()) > LIMITS["note"]:
        return None
    return value.strip()
