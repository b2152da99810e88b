"""Validation of deploy and incident records, shared by every way in (import, API, Slack).

``parse_deploy`` and ``parse_incident`` take the JSON object of the import format (and the ingest
API) and return normalized dataclasses, or raise one ``ValidationError`` listing every bad field.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Mapping
from urllib.parse import urlsplit

from bot.core.errors import ValidationError
from bot.core.numbers import is_digits
from bot.core.timeutil import parse_instant

SEVERITIES = ("sev1", "sev2", "sev3", "sev4")
STATUSES = ("success", "failure")
# A service name in its display form, as senders spell it: Prometheus labels (`node:9100`,
# `Checkout API`), repository names (`.github`, `_site`), paths (`team/api`). Letters and digits
# of any script, spaces and `. _ - / : @ +`; nothing Slack's mrkdwn reads as markup (`<`, `>`,
# `&`, `|`, `*`, `~`, backticks). Matching goes through ``service_key``.
NAME_RE = re.compile(r"^[^\W][\w .:/@+-]{0,99}$|^[._][\w .:/@+-]{1,99}$")
_KEY_SEPARATORS = re.compile(r"[\s-]+")
ENV_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
SHA_RE = re.compile(r"^[0-9a-f]{4,64}$")
# A link as RFC 3986 allows it (unreserved, reserved and %-escapes; no spaces, quotes, ``<``, ``>``,
# ``|``, backslash or braces), http or https with a host: anything else cannot be sent to Slack as
# ``<url|label>`` without changing what the card shows (https://docs.slack.dev/messaging/formatting-message-text#linking-urls).
_URL_CHARS = re.compile(r"^[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]+$")
MAX_URL = 2000
MAX_COMMITS = 1000
# The length of every free-text field, whichever way it comes in (Slack command or modal, the API,
# the import, webhooks): longer text is refused with a message naming the field, never cut
# (docs/ingest.md, "Limits"). ``check_text`` applies them.
LIMITS = {
    "title": 300,      # an incident's title
    "note": 2000,      # a deploy's note, an incident's resolution note
    "update": 2000,    # a status update on an incident's timeline
    "reason": 2000,    # why a deploy is marked failed, why an incident is cancelled
    "version": 200,
    "id": 200,         # external ids and references to them
}
FUTURE_TOLERANCE = timedelta(minutes=5)


def outside_title(text: str, *, field: str, notes: list[str]) -> str:
    """A title sent by a monitoring tool, on one line and within ``LIMITS["title"]``.

    Nobody is there to answer a refusal, so a long one is shortened (the raw delivery keeps it
    whole) and ``notes`` says so under ``field`` (the webhook's answer, docs/ingest.md)."""
    title = " ".join(text.split())
    limit = LIMITS["title"]
    if len(title) > limit:
        notes.append(f"{field}: shortened to the title's {limit} characters")
        title = title[: limit - 1] + "…"
    return title

_DEPLOY_FIELDS = {
    "type", "id", "service", "environment", "version", "deployed_at", "status", "commits",
    "rollback_of", "change_failure", "url", "note", "fixes", "rework", "team",
}
_INCIDENT_FIELDS = {
    "type", "id", "service", "environment", "severity", "title", "started_at", "acknowledged_at",
    "resolved_at", "caused_by", "mitigated_at", "status", "not_caused_by_change", "lead",
}
INCIDENT_STATUSES = ("cancelled",)  # besides a live incident (no status)


@dataclass(frozen=True)
class CommitInput:
    sha: str
    committed_at: datetime | None = None


@dataclass(frozen=True)
class DeployInput:
    service: str
    deployed_at: datetime
    version: str
    environment: str = "production"
    status: str = "success"
    commits: tuple[CommitInput, ...] = ()
    external_id: str | None = None
    rollback_of: str | None = None
    change_failure: bool = False
    url: str | None = None
    note: str | None = None
    fixes: str | None = None  # an incident id: this deploy fixes it (rework)
    rework: bool = False  # marked as unplanned work (a hotfix)
    team: str | None = None  # the team owning the service (created, or the service moved to it)


@dataclass(frozen=True)
class IncidentInput:
    service: str
    started_at: datetime | None
    severity: str = "sev3"
    title: str = ""
    environment: str = "production"
    external_id: str | None = None
    acknowledged_at: datetime | None = None
    resolved_at: datetime | None = None
    caused_by: str | None = None
    mitigated_at: datetime | None = None
    status: str | None = None  # None (live) or "cancelled"
    not_caused_by_change: bool = False
    lead: str | None = None  # a Slack user id


def normalize_service(value: Any) -> str:
    """A service name in its display form: trimmed, runs of spaces made one; case is kept.

    Which stored service a name means is decided by ``service_key`` alone.
    """
    if not isinstance(value, str) or not value.strip():
        raise ValidationError("a service name is required", field="service")
    name = " ".join(value.split())
    if not NAME_RE.match(name):
        shown = name if len(name) <= 60 and "`" not in name else "this"
        raise ValidationError(
            f"`{shown}` is not a service name: use letters, digits, spaces and . _ - / : @ + (at most 100 characters)",
            field="service",
        )
    return name


def normalize_team(value: Any) -> str:
    """A team name in its display form: the rules of a service name (matched by ``service_key`` too)."""
    try:
        return normalize_service(value)
    except ValidationError as exc:
        raise ValidationError(str(exc).replace("service name", "team name"), field="team") from None


def service_key(name: str) -> str:
    """The one normalisation services are matched by (product spec, "Service catalogue"):
    case-insensitive, and spaces and ``-`` are the same (``Checkout API`` = ``checkout-api``)."""
    return _KEY_SEPARATORS.sub("-", name.strip().casefold())


def normalize_environment(value: Any) -> str:
    if value is None:
        return "production"
    if not isinstance(value, str) or not ENV_RE.match(value.strip().lower()):
        raise ValidationError(
            f"`{value}` is not an environment name: use letters, digits, . _ - (at most 64)",
            field="environment",
        )
    return value.strip().lower()


def is_link(value: Any) -> bool:
    """True for an http(s) URL that ``check_url`` accepts (the cards link nothing else)."""
    if not isinstance(value, str) or not value or len(value) > MAX_URL or not _URL_CHARS.match(value):
        return False
    try:
        parts = urlsplit(value)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname) and "%" not in (parts.hostname or "")


def check_url(value: Any, field: str = "url") -> str:
    """A real http(s) URL, or a ValidationError naming ``field``."""
    if not isinstance(value, str) or not value.strip():
        raise ValidationError("must be an http(s) link", field=field)
    url = value.strip()
    if len(url) > MAX_URL:
        raise ValidationError(f"must be at most {MAX_URL} characters", field=field)
    if not is_link(url):
        raise ValidationError(
            "must be an http(s) link with a host and no spaces, quotes, <, >, | or other characters a URL cannot hold"
            " (percent-encode them)",
            field=field,
        )
    return url


def normalize_severity(value: Any) -> str:
    text = str(value).strip().lower() if value is not None else ""
    if is_digits(text):
        text = "sev" + text
    if text not in SEVERITIES:
        raise ValidationError(f"`{value}` is not a severity: use sev1, sev2, sev3 or sev4", field="severity")
    return text


SLACK_USER_RE = re.compile(r"^[UW][A-Z0-9]{1,20}$")


def check_slack_user(value: Any, field: str = "lead") -> str:
    """A Slack user id (``U0123ABC``), as an incident lead or a follow-up owner is stored."""
    text = value.strip() if isinstance(value, str) else ""
    if not SLACK_USER_RE.match(text):
        raise ValidationError(f"`{value}` is not a Slack user id (like U0123ABCD)", field=field)
    return text


def normalize_sha(value: Any) -> str:
    text = value.strip().lower() if isinstance(value, str) else ""
    if not SHA_RE.match(text):
        raise ValidationError(f"`{value}` is not a commit sha (4 to 64 hex digits)", field="sha")
    return text


class _Collector:
    """Gathers field errors so one response can name every bad field."""

    def __init__(self) -> None:
        self.errors: list[tuple[str | None, str]] = []

    def take(self, name: str, fn, *args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except ValidationError as exc:
            self.errors.extend((name, message) for _, message in exc.errors)
            return None

    def add(self, name: str, message: str) -> None:
        self.errors.append((name, message))

    def raise_if_any(self) -> None:
        if self.errors:
            raise ValidationError(errors=self.errors)


def _flag(value: Any, name: str, col: _Collector) -> bool:
    if value is None:
        return False
    if not isinstance(value, bool):
        col.add(name, "must be true or false")
        return False
    return value


def _ref(value: Any, name: str, col: _Collector, *, what: str = "a deploy id") -> str | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int)) or not str(value).strip():
        col.add(name, f"must be {what} (a string)")
        return None
    text = str(value).strip()
    if len(text) > 200:
        col.add(name, "must be at most 200 characters")
        return None
    return text


def _instant(value: Any, name: str, col: _Collector, *, required: bool) -> datetime | None:
    if value is None:
        if required:
            col.add(name, "is required (an ISO-8601 time such as 2026-11-24T10:12:00Z)")
        return None
    if not isinstance(value, str):
        col.add(name, "must be an ISO-8601 time string such as 2026-11-24T10:12:00Z")
        return None
    try:
        return parse_instant(value)
    except ValidationError as exc:
        col.add(name, exc.message)
        return None


def check_text(value: Any, field: str, *, rule: str | None = None, required: bool = False) -> str | None:
    """Free text under the one limit of its field (``LIMITS[rule or field]``); trimmed; None when empty.

    Numbers are taken as their text (a version ``2``); objects, lists and booleans are refused,
    never stored as their Python repr.
    """
    limit = LIMITS[rule or field]
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise ValidationError(errors=[(field, "needs some text")])
        return None
    if not isinstance(value, (str, int, float)) or isinstance(value, bool):
        raise ValidationError(errors=[(field, "must be a string")])
    text = str(value).strip()
    if len(text) > limit:
        raise ValidationError(errors=[(field, f"must be at most {limit} characters (this is {len(text)})")])
    return text


def _text(value: Any, name: str, col: _Collector) -> str | None:
    return col.take(name, check_text, value, name)


def _check_future(value: datetime | None, name: str, now: datetime | None, col: _Collector) -> None:
    if value is not None and now is not None and value > now + FUTURE_TOLERANCE:
        col.add(name, "is in the future")


def _common(obj: Mapping[str, Any], kind: str, allowed: set[str], col: _Collector) -> tuple[str | None, str | None, str]:
    unknown = sorted(set(obj) - allowed)
    if unknown:
        col.add(unknown[0], f"unknown field for a {kind} (allowed: {', '.join(sorted(allowed - {'type'}))})")
    external_id = None
    raw_id = obj.get("id")
    if raw_id is None or isinstance(raw_id, bool) or not isinstance(raw_id, (str, int)) or not str(raw_id).strip():
        col.add("id", "is required: a unique string such as the CI run id")
    elif len(str(raw_id)) > 200:
        col.add("id", "must be at most 200 characters")
    else:
        external_id = str(raw_id).strip()
    service = col.take("service", normalize_service, obj.get("service"))
    environment = col.take("environment", normalize_environment, obj.get("environment")) or "production"
    return external_id, service, environment


def parse_deploy(obj: Any, *, now: datetime | None = None, require_id: bool = True) -> DeployInput:
    """Validate one deploy object of the import format / ingest API."""
    if not isinstance(obj, Mapping):
        raise ValidationError("a deploy must be a JSON object")
    col = _Collector()
    external_id, service, environment = _common(obj, "deploy", _DEPLOY_FIELDS, col)
    if not require_id and external_id is None:
        col.errors = [e for e in col.errors if e[0] != "id"]
    deployed_at = _instant(obj.get("deployed_at"), "deployed_at", col, required=True)
    _check_future(deployed_at, "deployed_at", now, col)
    status = obj.get("status")
    if status is None:
        status = "success"
    elif not isinstance(status, str) or status not in STATUSES:
        col.add("status", "must be \"success\" or \"failure\"")
    change_failure = obj.get("change_failure")
    if change_failure is None:
        change_failure = False
    elif not isinstance(change_failure, bool):
        col.add("change_failure", "must be true or false")
        change_failure = False
    commits: list[CommitInput] = []
    raw_commits = obj.get("commits")
    if raw_commits is not None and not isinstance(raw_commits, list):
        col.add("commits", "must be a list of {sha, committed_at} objects")
    elif raw_commits:
        if len(raw_commits) > MAX_COMMITS:
            col.add("commits", f"at most {MAX_COMMITS} commits per deploy")
        seen: set[str] = set()
        for i, item in enumerate(raw_commits[:MAX_COMMITS]):
            where = f"commits[{i}]"
            if isinstance(item, str):
                item = {"sha": item}
            if not isinstance(item, Mapping):
                col.add(where, "must be an object with sha and committed_at")
                continue
            sha = col.take(f"{where}.sha", normalize_sha, item.get("sha"))
            committed_at = _instant(item.get("committed_at"), f"{where}.committed_at", col, required=False)
            _check_future(committed_at, f"{where}.committed_at", now, col)
            if sha and sha not in seen:
                seen.add(sha)
                commits.append(CommitInput(sha=sha, committed_at=committed_at))
    version = _text(obj.get("version"), "version", col)
    url = col.take("url", check_url, obj["url"]) if obj.get("url") not in (None, "") else None
    note = _text(obj.get("note"), "note", col)
    rollback_of = _ref(obj.get("rollback_of"), "rollback_of", col)
    if rollback_of is not None and external_id is not None and rollback_of == external_id:
        col.add("rollback_of", "a deploy cannot roll back itself")
    fixes = _ref(obj.get("fixes"), "fixes", col, what="an incident id")
    rework = _flag(obj.get("rework"), "rework", col)
    team = col.take("team", normalize_team, obj["team"]) if obj.get("team") is not None else None
    col.raise_if_any()
    if not version:
        version = commits[0].sha[:12] if commits else "unversioned"
    return DeployInput(
        service=service,
        deployed_at=deployed_at,
        version=version,
        environment=environment,
        status=status,
        commits=tuple(commits),
        external_id=external_id,
        rollback_of=rollback_of,
        change_failure=change_failure,
        url=url,
        note=note,
        fixes=fixes,
        rework=rework,
        team=team,
    )


def check_mitigated(started_at: datetime | None, mitigated_at: datetime | None, resolved_at: datetime | None) -> str | None:
    """Why ``mitigated_at`` is not allowed (before the start, or after the resolution), or None."""
    if mitigated_at is None:
        return None
    if started_at is not None and mitigated_at < started_at:
        return "is before started_at: impact cannot end before it began"
    if resolved_at is not None and mitigated_at > resolved_at:
        return "is after resolved_at: an incident is mitigated at the latest when it is resolved"
    return None


def parse_incident(obj: Any, *, now: datetime | None = None, require_id: bool = True) -> IncidentInput:
    """Validate one incident object of the import format / ingest API."""
    if not isinstance(obj, Mapping):
        raise ValidationError("an incident must be a JSON object")
    col = _Collector()
    external_id, service, environment = _common(obj, "incident", _INCIDENT_FIELDS, col)
    if not require_id and external_id is None:
        col.errors = [e for e in col.errors if e[0] != "id"]
    started_at = _instant(obj.get("started_at"), "started_at", col, required=require_id)
    acknowledged_at = _instant(obj.get("acknowledged_at"), "acknowledged_at", col, required=False)
    resolved_at = _instant(obj.get("resolved_at"), "resolved_at", col, required=False)
    mitigated_at = _instant(obj.get("mitigated_at"), "mitigated_at", col, required=False)
    for name, value in (
        ("started_at", started_at), ("acknowledged_at", acknowledged_at), ("resolved_at", resolved_at),
        ("mitigated_at", mitigated_at),
    ):
        _check_future(value, name, now, col)
    if (problem := check_mitigated(started_at, mitigated_at, resolved_at)) is not None:
        col.add("mitigated_at", problem)
    if started_at and resolved_at and resolved_at < started_at:
        col.add("resolved_at", "is before started_at: an incident cannot be resolved before it started")
    if started_at and acknowledged_at and acknowledged_at < started_at:
        col.add("acknowledged_at", "is before started_at: an incident cannot be acknowledged before it started")
    severity = "sev3"
    if obj.get("severity") is not None:
        severity = col.take("severity", normalize_severity, obj.get("severity")) or "sev3"
    title = _text(obj.get("title"), "title", col)
    caused_by = _ref(obj.get("caused_by"), "caused_by", col)
    status = obj.get("status")
    if status is not None and status not in INCIDENT_STATUSES:
        col.add("status", "the only status an incident takes is \"cancelled\" (a false alarm); leave it out otherwise")
        status = None
    not_caused = _flag(obj.get("not_caused_by_change"), "not_caused_by_change", col)
    if not_caused and caused_by is not None:
        col.add("not_caused_by_change", "cannot be true for an incident with caused_by")
    lead = col.take("lead", check_slack_user, obj.get("lead"), "lead") if obj.get("lead") is not None else None
    col.raise_if_any()
    return IncidentInput(
        lead=lead,
        service=service,
        started_at=started_at,
        severity=severity,
        title=title or f"Incident on {service}",
        environment=environment,
        external_id=external_id,
        acknowledged_at=acknowledged_at,
        resolved_at=resolved_at,
        caused_by=caused_by,
        mitigated_at=mitigated_at,
        status=status,
        not_caused_by_change=not_caused,
    )
