"""Building the five-keys report for a scope: the one source of every number users see."""

from __future__ import annotations

from datetime import datetime
from typing import Sequence
from zoneinfo import ZoneInfo

from sqlmodel import Session

from bot.core.errors import ValidationError
from bot.core.inputs import normalize_service, normalize_team
from bot.core.metrics import Aggregates, Window, build_report
from bot.store.metrics_sql import aggregates
from bot.store.scope import ORG_SCOPE, SERVICE, TEAM, Scope, service_scope, team_scope

MAX_DAYS = 3660


def make_window(*, end: datetime, days: int, timezone_name: str) -> Window:
    if not isinstance(days, int) or isinstance(days, bool) or not 1 <= days <= MAX_DAYS:
        raise ValidationError(f"days must be a whole number from 1 to {MAX_DAYS}", field="days")
    if end.tzinfo is None:
        raise ValidationError("end must carry a time zone", field="end")
    return Window(end=end, days=days, tz=ZoneInfo(timezone_name))


def resolve_scope(session: Session, *, service: str | None = None, team: str | None = None) -> Scope:
    """The scope a request names: a service, a team or (neither) the org.

    An unknown name is a scope with no services (its numbers are n/a), named as it was asked for.
    """
    if service and team:
        raise ValidationError("give a service or a team, not both", field="team")
    conn = session.connection()
    if team:
        name = normalize_team(team)
        return team_scope(conn, name) or Scope(kind=TEAM, name=name, service_ids=())
    if service:
        name = normalize_service(service)
        return service_scope(conn, name) or Scope(kind=SERVICE, name=name, service_ids=())
    return ORG_SCOPE


def build_metrics(
    session: Session,
    *,
    service: str | None = None,
    team: str | None = None,
    scope: Scope | None = None,
    days: int,
    end: datetime,
    timezone_name: str,
    production_environments: Sequence[str],
) -> dict:
    """The metrics JSON of ``docs/metrics.md`` for one service, one team (its services' events
    pooled) or all, over ``[end - days, end)``. ``scope`` (already resolved) wins over the names."""
    window = make_window(end=end, days=days, timezone_name=timezone_name)
    if scope is None:
        scope = resolve_scope(session, service=service, team=team)
    if scope.empty:
        agg = Aggregates()  # an unknown service or a team with no service has no data: every key is n/a
    else:
        agg = aggregates(session.connection(), window, production_environments, scope)
    return build_report(
        window=window,
        service=scope.name if scope.kind == SERVICE else None,  # shown as the service is called
        team=scope.name if scope.kind == TEAM else None,
        environments=production_environments,
        timezone_name=timezone_name,
        agg=agg,
    )
