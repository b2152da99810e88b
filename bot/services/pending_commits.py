"""Pushed commits waiting for the deploy that ships them: one rule for every source of pushes
(GitHub, GitLab) and of deploys (their deployment events, Argo CD).

A push to the default branch records its commits (sha, commit time) once per service. A
successful deploy of a sha includes the service's waiting commits pushed up to the push whose
head (``after``) is that sha — or, when no such push is known, pushed before the deploy time —
that no earlier deploy included. Only production deploys consume them, so a staging deploy first
does not take a commit's lead time away from the production deploy that really ships it.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Sequence

from sqlalchemy import update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, select

from bot.core.inputs import CommitInput, DeployInput
from bot.core.rules import qualifies
from bot.services.deploys import DeployOutcome, record_deploy
from bot.services.lookup import get_or_create_service
from bot.store.models import CommitPush, PendingCommit

MAX_PUSH_COMMITS = 2048


def record_push(
    session: Session,
    *,
    source: str,
    service: str,
    after: str,
    pushed_at: datetime,
    commits: Sequence[tuple[str, datetime | None]],
    now: datetime,
) -> int:
    """Store a push and its commits ((sha, committed_at), already checked); returns how many were new."""
    row = get_or_create_service(session, service, now=now)
    push = CommitPush(service_id=row.id, after_sha=after, pushed_at=pushed_at, source=source)
    session.add(push)
    session.flush()
    commits = list(commits)[:MAX_PUSH_COMMITS]
    shas = [sha for sha, _ in commits]
    known = set(
        session.exec(select(PendingCommit.sha).where(PendingCommit.service_id == row.id, col(PendingCommit.sha).in_(shas))).all()
    ) if shas else set()
    rows = []
    for sha, committed_at in commits:
        if sha in known:
            continue
        known.add(sha)
        rows.append({"service_id": row.id, "push_id": push.id, "sha": sha, "committed_at": committed_at, "pushed_at": pushed_at})
    if rows:
        # One multi-row insert (a push may list 2,048 commits), not an ORM object per commit; a
        # commit another push recorded meanwhile is left to that push.
        insert = (postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert)(PendingCommit.__table__)
        session.execute(insert.on_conflict_do_nothing(index_elements=["service_id", "sha"]), rows)
    return len(rows)


def record_shipping_deploy(
    session: Session,
    *,
    data: DeployInput,
    sha: str,
    production_environments: Sequence[str],
    now: datetime,
    source: str,
) -> DeployOutcome:
    """Record ``data`` (a deploy of ``sha``) with the waiting commits it ships as its commits."""
    service = get_or_create_service(session, data.service, now=now)
    pending: list = []  # (id, sha, committed_at) of the commits this deploy ships
    if data.status == "success":
        push = session.exec(
            select(CommitPush).where(CommitPush.service_id == service.id, CommitPush.after_sha == sha).order_by(col(CommitPush.id).desc())
        ).first()
        waiting = select(PendingCommit.id, PendingCommit.sha, PendingCommit.committed_at).where(
            PendingCommit.service_id == service.id, col(PendingCommit.deploy_id).is_(None)
        )
        if push is not None:
            waiting = waiting.where(PendingCommit.push_id <= push.id)
        else:
            waiting = waiting.where(PendingCommit.pushed_at <= data.deployed_at)
        pending = list(session.execute(waiting.order_by(PendingCommit.id)).all())
    commits = {p.sha: CommitInput(sha=p.sha, committed_at=p.committed_at) for p in pending}
    if sha not in commits:
        head = session.exec(select(PendingCommit).where(PendingCommit.service_id == service.id, PendingCommit.sha == sha)).first()
        commits[sha] = CommitInput(sha=sha, committed_at=head.committed_at if head else None)
    data = replace(data, commits=tuple(commits.values()))
    outcome = record_deploy(session, data=data, production_environments=production_environments, now=now, source=source)
    if outcome.created and qualifies(data.status, data.environment, production_environments) and pending:
        ids = [p.id for p in pending]
        for start in range(0, len(ids), 1000):
            session.execute(
                update(PendingCommit.__table__)
                .where(PendingCommit.__table__.c.id.in_(ids[start : start + 1000]))
                .values(deploy_id=outcome.deploy.id)
            )
    return outcome
