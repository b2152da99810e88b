"""Digest subscriptions and their periods: when each digest is due, and delivering it exactly once.

A subscription posts at a local time (``09:00``) on a weekday (weekly) or every day (daily) in its
own time zone. Its *period* starts at that scheduled instant; the delivery record
``(subscription, period)`` is unique, and it is written in the same transaction as the outbox
message that carries the digest, so a digest goes out once however many times the job runs, after
restarts and on several replicas. A digest missed while the bot was down is sent when it comes
back, as long as its period is still the current one (it always is for the latest scheduled
instant); periods that started before the subscription existed are never sent.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from bot.core.errors import NotFound, ValidationError
from bot.core.inputs import normalize_service
from bot.core.numbers import is_digits
from bot.core.timeutil import UTC, WEEKDAYS
from bot.services import outbox
from bot.services.lookup import find_service
from bot.store import rules
from bot.store.models import DigestDelivery, DigestSubscription

_TIME_RE = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")


@dataclass(frozen=True)
class Period:
    key: str  # local date of the scheduled instant, e.g. "2026-11-23"
    scheduled: datetime  # UTC instant the digest is due
    window_end: datetime  # the report window ends at local midnight of that date
    shift_days: int  # 7 for weekly, 1 for daily: the span the digest's counts cover
    manual: bool = False  # `/dora digest send`: the window ends when it was asked for, not at midnight


def parse_weekday(value: str) -> int:
    text = value.strip().lower()[:3]
    if text not in WEEKDAYS:
        raise ValidationError(f"`{value}` is not a weekday; use mon, tue, wed, thu, fri, sat or sun", field="day")
    return WEEKDAYS.index(text)


def parse_time_of_day(value: str) -> str:
    m = _TIME_RE.match(value.strip())
    if not m:
        raise ValidationError(f"`{value}` is not a time of day; use HH:MM like 09:00", field="time")
    return f"{int(m.group(1)):02d}:{m.group(2)}"


def check_timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationError(f"`{value}` is not a time zone; use an IANA name like Europe/Berlin", field="tz") from None
    return value


def add_subscription(
    session: Session, *, channel: str, cadence: str = "weekly", weekday: int = 0, time_of_day: str = "09:00",
    timezone: str = "UTC", service: str | None = None, actor: str | None = None, now: datetime,
    team: str | None = None,
) -> DigestSubscription:
    if cadence not in ("weekly", "daily"):
        raise ValidationError("cadence must be weekly or daily", field="cadence")
    if service and team:
        raise ValidationError("a digest is for a service or a team, not both", field="team")
    if service:
        service = find_service(session, normalize_service(service)).name
    if team:
        from bot.services.teams import find_team

        team = find_team(session, team).name
    sub = DigestSubscription(
        channel=channel, cadence=cadence, weekday=weekday, time_of_day=parse_time_of_day(time_of_day),
        timezone=check_timezone(timezone), service=service, team=team, created_by=actor, created_at=now,
    )
    session.add(sub)
    session.flush()
    return sub


def list_subscriptions(session: Session) -> list[DigestSubscription]:
    return list(session.exec(select(DigestSubscription).order_by(DigestSubscription.id)).all())


def get_subscription(session: Session, sub_id: int | str) -> DigestSubscription:
    text = str(sub_id).strip().lower().removeprefix("digest-").removeprefix("#")
    sub = session.get(DigestSubscription, int(text)) if is_digits(text) else None
    if sub is None:
        raise NotFound(f"No digest `{sub_id}`; `/dora digest list` shows them.")
    return sub


def remove_subscription(session: Session, sub_id: int | str) -> DigestSubscription:
    sub = get_subscription(session, sub_id)
    session.delete(sub)
    session.flush()
    return sub


def describe(sub: DigestSubscription) -> str:
    when = f"{WEEKDAYS[sub.weekday].capitalize()} {sub.time_of_day}" if sub.cadence == "weekly" else f"daily {sub.time_of_day}"
    scope = f"`{sub.service}`" if sub.service else (f"team `{sub.team}`" if sub.team else "all services")
    return f"#{sub.id}: {scope} to <#{sub.channel}>, {when} {sub.timezone}"


def current_period(sub: DigestSubscription, now: datetime) -> Period:
    """The latest scheduled instant at or before ``now`` and its report window."""
    tz = ZoneInfo(sub.timezone)
    local_now = now.astimezone(tz)
    hour, minute = map(int, sub.time_of_day.split(":"))
    day: date = local_now.date()
    if sub.cadence == "weekly":
        day -= timedelta(days=(day.weekday() - sub.weekday) % 7)
    scheduled = datetime.combine(day, time(hour, minute), tzinfo=tz)
    if scheduled > local_now:
        day -= timedelta(days=7 if sub.cadence == "weekly" else 1)
        scheduled = datetime.combine(day, time(hour, minute), tzinfo=tz)
    window_end = datetime.combine(day, time(0, 0), tzinfo=tz).astimezone(UTC)
    return Period(key=day.isoformat(), scheduled=scheduled.astimezone(UTC), window_end=window_end,
                  shift_days=7 if sub.cadence == "weekly" else 1)


def period_by_key(sub: DigestSubscription, key: str) -> Period:
    day = date.fromisoformat(key)
    tz = ZoneInfo(sub.timezone)
    hour, minute = map(int, sub.time_of_day.split(":"))
    return Period(
        key=key,
        scheduled=datetime.combine(day, time(hour, minute), tzinfo=tz).astimezone(UTC),
        window_end=datetime.combine(day, time(0, 0), tzinfo=tz).astimezone(UTC),
        shift_days=7 if sub.cadence == "weekly" else 1,
    )


def period_until(sub: DigestSubscription, until: datetime) -> Period:
    """A digest sent now (``/dora digest send``): its 7 (or 1) days end at ``until``, so it covers
    everything up to the moment it was asked for, and its open incidents are those open then."""
    local = until.astimezone(ZoneInfo(sub.timezone))
    return Period(
        key=f"{local:%Y-%m-%d %H:%M}", scheduled=until, window_end=until,
        shift_days=7 if sub.cadence == "weekly" else 1, manual=True,
    )


def span_words(sub: DigestSubscription, period: Period, *, now: datetime) -> str:
    """What the digest's counts cover, in words that stay true whenever it is read: "yesterday"
    only when that day is yesterday (in the digest's time zone) at ``now``."""
    if period.manual:
        return "in the last 7 days" if period.shift_days == 7 else "in the last 24 hours"
    tz = ZoneInfo(sub.timezone)
    last = (period.window_end - timedelta(microseconds=1)).astimezone(tz).date()
    if period.shift_days == 1:
        return "yesterday" if last == now.astimezone(tz).date() - timedelta(days=1) else f"on {last:%a %d %b}"
    first = last - timedelta(days=6)
    return f"from {first:%a %d %b} to {last:%a %d %b}"


def due_subscriptions(session: Session, now: datetime) -> list[tuple[DigestSubscription, Period]]:
    """Subscriptions whose current period has not been delivered yet."""
    due = []
    for sub in list_subscriptions(session):
        period = current_period(sub, now)
        if period.scheduled < sub.created_at:
            continue  # that period began before the subscription existed
        delivered = session.exec(
            select(DigestDelivery.id).where(DigestDelivery.subscription_id == sub.id, DigestDelivery.period == period.key)
        ).first()
        if delivered is None:
            due.append((sub, period))
    return due


def deliver(session: Session, sub: DigestSubscription, period_key: str, *, now: datetime, manual: bool = False) -> bool:
    """Record the delivery and queue the digest, atomically; False if that period was already sent."""
    # A manual send is its own "period", keyed by the instant to the microsecond in a compact UTC
    # form that fits the column (``manual-20261125T120000123456Z``, 29 of 32 characters).
    record_key = f"manual-{now.astimezone(UTC):%Y%m%dT%H%M%S%fZ}" if manual else period_key
    try:
        with session.begin_nested():
            session.add(DigestDelivery(subscription_id=sub.id, period=record_key, created_at=now))
            session.flush()
    except IntegrityError:
        return False
    payload = {"subscription": sub.id, "period": period_key, "channel": sub.channel}
    if manual:  # sent now: the digest covers the days up to this instant (period_until)
        payload["until"] = now.astimezone(UTC).isoformat()
    outbox.enqueue(session, kind=outbox.Kind.DIGEST_POST, key=f"digest:{sub.id}", payload=payload, now=now)
    return True


def deliveries(session: Session, sub_id: int) -> list[DigestDelivery]:
    return list(session.exec(select(DigestDelivery).where(DigestDelivery.subscription_id == sub_id).order_by(col(DigestDelivery.id))).all())


# --- what a digest says -------------------------------------------------------------------

TREND_WEEKS = 12


@dataclass
class DigestData:
    subscription: DigestSubscription
    period: Period
    current: dict
    previous: dict
    deploys: int
    incidents: int
    longest: tuple | None  # (incident, service name) resolved in the period with the longest restore
    open_incidents: list  # (incident, service name)
    trend: list[dict]  # one report per week, oldest first
    firing: list[str] = field(default_factory=list)  # a line per firing watch in the digest's scope


def digest_data(
    session: Session, sub: DigestSubscription, period: Period, *, production_environments, timezone_name: str | None = None
) -> DigestData:
    """The numbers of one digest: the 7 days to the period's window end, and the week before."""
    from bot.services.incidents import list_open_incidents
    from bot.services.metrics import build_metrics, resolve_scope
    from bot.store.models import Incident, Service

    tz_name = timezone_name or sub.timezone
    scope = resolve_scope(session, service=sub.service, team=sub.team)  # one scope for every number below
    kw = dict(scope=scope, timezone_name=tz_name, production_environments=production_environments)
    current = build_metrics(session, days=7, end=period.window_end, **kw)
    # week-over-week for daily digests too: the 7 days before, not the same week shifted a day
    previous = build_metrics(session, days=7, end=period.window_end - timedelta(days=7), **kw)
    span_start = period.window_end - timedelta(days=period.shift_days)
    inc_q = select(Incident, Service.name).join(Service, Service.id == Incident.service_id).where(
        rules.incident_in_scope(production_environments, scope)
    )
    started = session.exec(inc_q.where(rules.in_window(Incident.started_at, span_start, period.window_end))).all()
    # the longest restore among incidents recovered in the period (as time to restore counts them)
    longest = session.exec(
        inc_q.where(rules.in_window(Incident.recovered_at, span_start, period.window_end))
        .order_by(col(Incident.restore_seconds).desc()).limit(1)
    ).first()
    deploys = build_metrics(session, days=period.shift_days, end=period.window_end, **kw)["deployment_frequency"]["deploys"]
    open_now = [(i, name) for i, name in list_open_incidents(session, service_id=scope) if i.started_at < period.scheduled]
    trend = [build_metrics(session, days=7, end=period.window_end - timedelta(days=7 * w), **kw) for w in range(TREND_WEEKS - 1, -1, -1)]
    from bot.services.watches import firing_in_scope

    return DigestData(
        subscription=sub, period=period, current=current, previous=previous, deploys=deploys,
        incidents=len(started), longest=tuple(longest) if longest else None, open_incidents=open_now, trend=trend,
        firing=[text for _, text in firing_in_scope(
            session, service_id=(scope.single or -1) if scope.kind == "service" else None,  # an unknown service: none
            team=scope.name if scope.kind == "team" else None,
        )],
    )
