"""GitLab: pushes to the default branch become pending commits; a finished deployment ships them.

Mapping (product contract; payloads as GitLab documents them on its "Webhook events" page,
https://docs.gitlab.com/user/project/integrations/webhook_events/):

* service = the last part of ``project.path_with_namespace`` (``acme/platform/shop-api`` ->
  ``shop-api``), through the catalogue's one normalisation;
* ``Push Hook`` to ``project.default_branch``: its ``commits`` (``id``, ``timestamp``) wait as
  pending commits, exactly as GitHub's (``bot.services.pending_commits``); a branch deletion
  (``after`` all zeros) and other branches are ignored;
* ``Deployment Hook`` with ``status`` ``success``: a deploy to ``environment`` at
  ``status_changed_at`` (GitLab writes ``2026-11-24 10:12:00 +0100``) of the commit at the end of
  ``commit_url`` — the full sha (``short_sha`` is too short to match pushed commits) — shipping
  the pending commits up to it; ``failed``: a failed attempt; ``running``/``canceled``: ignored.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Sequence

from sqlmodel import Session

from bot.core.errors import ValidationError
from bot.core.inputs import DeployInput, is_link, normalize_environment, normalize_service, normalize_sha
from bot.core.timeutil import parse_instant
from bot.services import pending_commits
from bot.services.deploys import DeployOutcome
from bot.services.github import _description, _object

EVENTS = {"Push Hook", "Deployment Hook"}
LISTED_COMMITS = 20  # GitLab's push hook lists the last 20 commits of a push
ZERO_SHA = "0" * 40


def _field(exc: ValidationError, field: str) -> ValidationError:
    return ValidationError(exc.message, field=field)


def service_of(payload: dict) -> str:
    project = _object(payload, "project")
    path = project.get("path_with_namespace")
    if not isinstance(path, str) or not path.strip("/ "):
        raise ValidationError("is required (namespace/project)", field="project.path_with_namespace")
    try:
        return normalize_service(path.strip("/ ").rsplit("/", 1)[-1])
    except ValidationError as exc:
        raise _field(exc, "project.path_with_namespace") from None


def _instant(value: Any, field: str) -> datetime:
    if not isinstance(value, str) or not value.strip():
        raise ValidationError("is required (a time such as 2026-11-24 10:12:00 +0100)", field=field)
    try:
        return parse_instant(value)
    except ValidationError as exc:
        raise _field(exc, field) from None


def record_push(session: Session, *, payload: Any, now: datetime) -> int | None:
    """Store the commits of a push to the default branch; returns the number recorded (None: ignored).

    GitLab lists at most 20 commits of a push (``total_commits_count`` says how many there were);
    the others are not known to the bot, so a deploy carries only those listed (``unlisted``)."""
    payload = _object(payload)
    project = _object(payload, "project")
    default = project.get("default_branch") or "main"
    after = payload.get("after") or payload.get("checkout_sha")
    if payload.get("ref") != f"refs/heads/{default}" or after in (None, ZERO_SHA):
        return None
    service = service_of(payload)
    try:
        after = normalize_sha(after)
    except ValidationError as exc:
        raise _field(exc, "after") from None
    commits = payload.get("commits") or []
    if not isinstance(commits, list):
        raise ValidationError("must be a list", field="commits")
    pairs = []
    for index, commit in enumerate(commits[: pending_commits.MAX_PUSH_COMMITS]):
        if not isinstance(commit, dict):
            continue
        try:
            sha = normalize_sha(commit.get("id"))
        except ValidationError as exc:
            raise _field(exc, f"commits[{index}].id") from None
        stamp = commit.get("timestamp")
        # A commit without a time still ships (its lead time is unknown), as for GitHub.
        pairs.append((sha, _instant(stamp, f"commits[{index}].timestamp") if stamp is not None else None))
    # GitLab's push hook carries no push time: the push is taken as received now.
    return pending_commits.record_push(session, source="gitlab", service=service, after=after, pushed_at=now, commits=pairs, now=now)


def unlisted(payload: Any) -> int:
    """How many commits of a push GitLab did not list (0 when it listed all)."""
    if not isinstance(payload, dict) or not isinstance(payload.get("commits"), list):
        return 0
    total = payload.get("total_commits_count")
    if isinstance(total, bool) or not isinstance(total, int):
        return 0
    return max(0, total - len(payload["commits"]))


def _environment(payload: dict) -> str:
    """``environment``; a GitLab name our rule does not take (``review/feature-x``) falls back to
    GitLab's ``environment_slug`` (lower-case letters, digits and ``-``) rather than costing the deploy."""
    name = payload.get("environment") or "production"
    try:
        return normalize_environment(name)
    except ValidationError as exc:
        slug = payload.get("environment_slug")
        if isinstance(slug, str) and slug.strip():
            try:
                return normalize_environment(slug)
            except ValidationError:
                pass
        raise _field(exc, "environment") from None


def sha_of(payload: dict) -> str:
    """The full sha at the end of ``commit_url`` (``https://gitlab.example.com/acme/shop/-/commit/<sha>``)."""
    url = payload.get("commit_url")
    if not isinstance(url, str) or "/commit/" not in url:
        raise ValidationError("is required: the deployed commit's URL, ending in its full sha", field="commit_url")
    tail = url.split("?", 1)[0].split("#", 1)[0].rstrip("/").rsplit("/", 1)[-1]
    try:
        return normalize_sha(tail)
    except ValidationError as exc:
        raise _field(exc, "commit_url") from None


def record_deployment(session: Session, *, payload: Any, production_environments: Sequence[str], now: datetime) -> DeployOutcome | None:
    """Record the deploy a ``Deployment Hook`` reports; None for states that are not final."""
    payload = _object(payload)
    state = payload.get("status")
    if state not in ("success", "failed"):
        return None
    service = service_of(payload)
    sha = sha_of(payload)
    environment = _environment(payload)
    deployed_at = _instant(payload.get("status_changed_at"), "status_changed_at")
    deployment_id = payload.get("deployment_id")
    if isinstance(deployment_id, bool) or not isinstance(deployment_id, (int, str)) or not str(deployment_id).strip():
        raise ValidationError("is required (GitLab's deployment id)", field="deployment_id")
    url = payload.get("deployable_url")
    data = DeployInput(
        service=service,
        deployed_at=deployed_at,
        version=sha,
        environment=environment,
        status="success" if state == "success" else "failure",
        external_id=f"gitlab-deployment-{str(deployment_id).strip()[:80]}-{state}",
        url=url if is_link(url) else None,  # a job link that is not a real link is dropped, not refused
        note=_description(payload.get("commit_title")),
    )
    return pending_commits.record_shipping_deploy(
        session, data=data, sha=sha, production_environments=production_environments, now=now, source="gitlab"
    )
