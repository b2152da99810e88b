"""Threshold watches: add, list, remove, and the hourly check that fires and clears them.

The rules are ``bot.core.watches`` (conditions, readings, hysteresis). Here a check reads the
scope's report for the window ending at the check's clock hour and records its outcome. Each
watch is checked in a transaction of its own that holds the watch's row (``FOR UPDATE`` on
PostgreSQL; SQLite admits one writer): the check of an hour already checked changes nothing, and
the state change and the outbox message that announces it commit together. So a watch posts
once per firing and once per clearing, however many replicas or ``dora-bot jobs run`` run the job
and across restarts.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Sequence

from sqlalchemy import Engine, func
from sqlmodel import Session, col, select

from bot.core import watches as watch_rules
from bot.core.errors import NotFound, ValidationError
from bot.core.inputs import normalize_service, service_key
from bot.core.numbers import is_digits
from bot.core.report_text import counted
from bot.core.timeutil import UTC, isoformat_z
from bot.services import outbox
from bot.services.lookup import find_service
from bot.services.metrics import MAX_DAYS, build_metrics
from bot.store.db import session_scope
from bot.store.models import Service, Watch

log = logging.getLogger(__name__)
MAX_WATCHES = 200


# --- scope ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Scope:
    """What a watch looks at: the org (all services), one service, or a team (its services pooled)."""

    kind: str  # org | service | team
    name: str | None = None
    service_id: int | None = None

    @property
    def label(self) -> str:
        return {"org": "all services", "service": f"`{self.name}`", "team": f"team `{self.name}`"}[self.kind]

    @property
    def explain_args(self) -> str:
        # by its key (``Checkout API`` -> ``checkout-api``): `/dora explain` takes the service as one word
        return {"org": "", "service": f" {service_key(self.name or '')}", "team": f" team={self.name}"}[self.kind]


def scope_of(session: Session, watch: Watch) -> Scope:
    if watch.service_id is not None:
        service = session.get(Service, watch.service_id)
        return Scope("service", service.name, service.id)
    if watch.team is not None:
        return Scope("team", watch.team)
    return Scope("org")


def _resolve_scope(session: Session, *, service: str | None, team: str | None) -> Scope:
    if service and team:
        raise ValidationError("a watch is for a service or a team, not both", field="service")
    if team:
        from bot.services.teams import find_team

        return Scope("team", find_team(session, team).name)
    if service:
        found = find_service(session, normalize_service(service))
        return Scope("service", found.name, found.id)
    return Scope("org")


def scope_report(
    session: Session, scope: Scope, *, end: datetime, days: int, timezone_name: str, production_environments: Sequence[str]
) -> dict:
    """The metrics report of the scope for ``[end - days, end)``."""
    return build_metrics(  # a team: the pooled events of its services (bot.store.scope)
        session, service=scope.name if scope.kind == "service" else None, team=scope.name if scope.kind == "team" else None,
        days=days, end=end,
        timezone_name=timezone_name, production_environments=production_environments,
    )


# --- add, list, remove ------------------------------------------------------------------------

def condition_of(watch: Watch) -> watch_rules.Condition:
    return watch_rules.Condition(metric=watch.metric, op=watch.op, threshold=watch.threshold)


def add_watch(
    session: Session, *, condition: str, channel: str, service: str | None = None, team: str | None = None,
    days: int = 30, actor: str | None = None, now: datetime,
) -> Watch:
    """Store a watch (state ok); the condition is checked for its metric, operator and unit."""
    parsed = watch_rules.parse_condition(condition)
    if not isinstance(days, int) or isinstance(days, bool) or not 1 <= days <= MAX_DAYS:
        raise ValidationError(f"days must be a whole number from 1 to {MAX_DAYS}", field="days")
    if not isinstance(channel, str) or not channel:
        raise ValidationError("a watch needs a channel to post in", field="channel")
    scope = _resolve_scope(session, service=service, team=team)
    if session.exec(select(func.count()).select_from(Watch)).one() >= MAX_WATCHES:
        raise ValidationError(f"at most {MAX_WATCHES} watches; remove one with `/dora watch remove <id>`", field="watch")
    same = session.exec(
        select(Watch.id).where(
            Watch.metric == parsed.metric, Watch.op == parsed.op, Watch.threshold == parsed.threshold, Watch.days == days,
            Watch.channel == channel,
            Watch.service_id == scope.service_id if scope.service_id is not None else col(Watch.service_id).is_(None),
            Watch.team == scope.name if scope.kind == "team" else col(Watch.team).is_(None),
        )
    ).first()
    if same is not None:
        raise ValidationError(f"watch #{same} already watches `{parsed.text}` for {scope.label} over {counted(days, 'day')}"
                              " in that channel",
                              field="watch")
    watch = Watch(
        metric=parsed.metric, op=parsed.op, threshold=parsed.threshold, service_id=scope.service_id,
        team=scope.name if scope.kind == "team" else None, days=days, channel=channel, state=watch_rules.OK,
        since=now, created_by=actor, created_at=now,
    )
    session.add(watch)
    session.flush()
    return watch


def list_watches(session: Session) -> list[Watch]:
    return list(session.exec(select(Watch).order_by(Watch.id)).all())


def get_watch(session: Session, watch_id: int | str) -> Watch:
    text = str(watch_id).strip().lstrip("#")
    watch = session.get(Watch, int(text)) if is_digits(text) and len(text) < 10 else None
    if watch is None:
        raise NotFound(f"No watch `{watch_id}`; `/dora watch list` shows them.")
    return watch


def remove_watch(session: Session, watch_id: int | str) -> tuple[Watch, str]:
    """Delete the watch; returns it with its description (read before it is gone)."""
    watch = get_watch(session, watch_id)
    text = describe(session, watch)
    session.delete(watch)
    session.flush()
    return watch, text


def describe(session: Session, watch: Watch) -> str:
    """``#3: change fail rate above 15% for `checkout` over 30 days, to <#C1> · firing since ...``."""
    condition = condition_of(watch)
    scope = scope_of(session, watch)
    text = (
        f"#{watch.id}: `{condition.text}` {condition.spec.title.lower()} {condition.described()} for {scope.label}"
        f" over {counted(watch.days, 'day')}, to <#{watch.channel}>"
    )
    if watch.state == watch_rules.FIRING:
        text += f" · :rotating_light: firing since {watch.since:%Y-%m-%d %H:%M} UTC"
    elif watch.last_check_at is None:
        text += " · not checked yet"
    else:
        text += " · ok"
    if watch.last_value:
        text += f" (last {watch.last_value})"
    return text


def explain_command(watch: Watch, scope: Scope) -> str:
    """How to see why: ``/dora explain cfr checkout days=30`` for the watch's key and scope."""
    return f"/dora explain {watch.metric}{scope.explain_args} days={watch.days}"


# --- the hourly check --------------------------------------------------------------------------

def check_hour(now: datetime) -> datetime:
    """The clock hour a check at ``now`` belongs to (UTC): its key and its window's end."""
    return now.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


@dataclass(frozen=True)
class CheckResult:
    watch_id: int
    checked: bool  # False: this hour was checked already (by this or another process)
    transition: str | None = None


def check_watch(
    session: Session, watch_id: int, *, now: datetime, timezone_name: str, production_environments: Sequence[str]
) -> CheckResult:
    """Check one watch for the hour of ``now`` inside the caller's transaction."""
    hour = check_hour(now)
    watch = session.exec(select(Watch).where(Watch.id == watch_id).with_for_update().execution_options(populate_existing=True)).first()
    if watch is None or (watch.last_check_at is not None and watch.last_check_at >= hour):
        return CheckResult(watch_id, checked=False)
    condition = condition_of(watch)
    scope = scope_of(session, watch)
    report = scope_report(session, scope, end=hour, days=watch.days, timezone_name=timezone_name,
                          production_environments=production_environments)
    reading = watch_rules.read(condition, report)
    holds = None if reading.value is None else condition.holds(reading.value)
    outcome = watch_rules.step(watch_rules.WatchState(watch.state, watch.held_checks, watch.cleared_checks), holds)
    if outcome.streak_started:
        watch.streak_since = hour
    watch.state, watch.held_checks, watch.cleared_checks = outcome.after.state, outcome.after.held, outcome.after.cleared
    watch.last_check_at = hour
    watch.last_value = reading.text[:200]
    if outcome.transition is not None:
        watch.since = watch.streak_since or hour
        outbox.enqueue(
            session, kind=outbox.Kind.WATCH_POST, key=f"watch:{watch.id}", now=now,
            payload={
                "watch": watch.id, "event": outcome.transition, "channel": watch.channel, "condition": condition.text,
                "metric": condition.spec.title, "threshold": condition.described(), "scope": scope.label,
                "value": reading.text, "days": watch.days, "since": isoformat_z(watch.since), "checked": isoformat_z(hour),
                "explain": explain_command(watch, scope),
            },
        )
        log.info("watch %s %s at %s: %s", watch.id, outcome.transition, isoformat_z(hour), reading.text)
    session.add(watch)
    session.flush()
    return CheckResult(watch.id, checked=True, transition=outcome.transition)


def check_all(engine: Engine, *, now: datetime, timezone_name: str, production_environments: Sequence[str]) -> list[CheckResult]:
    """Check every watch for the hour of ``now``, each in its own transaction (the scheduler's job)."""
    with session_scope(engine, write=False) as session:
        ids = list(session.exec(select(Watch.id).order_by(Watch.id)).all())
    results = []
    for watch_id in ids:
        try:
            with session_scope(engine) as session:
                results.append(check_watch(session, watch_id, now=now, timezone_name=timezone_name,
                                           production_environments=production_environments))
        except ValidationError as exc:  # e.g. a team scope this version cannot compute: skip it, keep the others
            log.warning("watch %s could not be checked: %s", watch_id, exc.message)
    return results


# --- what digests show -----------------------------------------------------------------------

def firing_in_scope(session: Session, *, service_id: int | None, team: str | None = None) -> list[tuple[Watch, str]]:
    """Firing watches a digest shows, with their descriptions: a service's digest shows that
    service's watches, a team's digest the team's, an all-services digest every firing watch."""
    query = select(Watch).where(Watch.state == watch_rules.FIRING).order_by(Watch.id)
    if service_id is not None:
        query = query.where(Watch.service_id == service_id)
    elif team is not None:
        query = query.where(Watch.team == team)
    out = []
    for watch in session.exec(query).all():
        condition = condition_of(watch)
        scope = scope_of(session, watch)
        text = (
            f"#{watch.id} {condition.spec.title.lower()} for {scope.label} is {watch.last_value or 'n/a'},"
            f" {condition.described()} (over {counted(watch.days, 'day')}) since {watch.since:%Y-%m-%d %H:%M} UTC"
        )
        out.append((watch, text))
    return out
