"""Building the five-keys report for a scope: the one source of every number users see."""

from __future__ import annotations

from datetime import datetime
from typing import Sequence
from zoneinfo import ZoneInfo

from sqlmodel import Session

from bot.core.errors import ValidationError
from bot.core.inputs import normalize_service
from bot.core.metrics import Aggregates, Window, build_report
from bot.store.metrics_sql import aggregates, service_for

MAX_DAYS = 3660


def make_window(*, end: datetime, days: int, timezone_name: str) -> Window:
    if not isinstance(days, int) or isinstance(days, bool) or not 1 <= days <= MAX_DAYS:
        raise ValidationError(f"days must be a whole number from 1 to {MAX_DAYS}", field="days")
    if end.tzinfo is None:
        raise ValidationError("end must carry a time zone", field="end")
    return Window(end=end, days=days, tz=ZoneInfo(timezone_name))


def build_metrics(
    session: Session,
    *,
    service: str | None,
    days: int,
    end: datetime,
    timezone_name: str,
    production_environments: Sequence[str],
) -> dict:
    """The metrics JSON of ``docs/metrics.md`` for one service (or all) over ``[end - days, end)``."""
    window = make_window(end=end, days=days, timezone_name=timezone_name)
    name = normalize_service(service) if service else None
    conn = session.connection()
    found = service_for(conn, name) if name else None
    service_id = found[0] if found else None
    if found:
        name = found[1]  # the scope is shown as the service is called, however it was asked for
    if name and service_id is None:
        agg = Aggregates()  # an unknown service has no data: every key is n/a
    else:
        agg = aggregates(conn, window, production_environments, service_id)
    return build_report(
        window=window,
        service=name,
        environments=production_environments,
        timezone_name=timezone_name,
        agg=agg,
    )
