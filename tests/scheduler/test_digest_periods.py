"""When digests are due: periods in the subscription's own time zone, once per period."""

from datetime import datetime, timedelta, timezone

import pytest

from bot.core.errors import NotFound, ValidationError
from bot.services import digests
from bot.store.db import session_scope
from bot.store.models import DigestSubscription

UTC = timezone.utc


def sub(**kw) -> DigestSubscription:
    base = dict(id=1, channel="C1", cadence="weekly", weekday=0, time_of_day="09:00", timezone="UTC",
                created_at=datetime(2026, 1, 1, tzinfo=UTC))
    base.update(kw)
    return DigestSubscription(**base)


def test_weekly_period_is_the_latest_monday_nine_oclock():
    # Wednesday 2026-11-25 10:00 UTC: the current period began Monday 2026-11-23 09:00.
    p = digests.current_period(sub(), datetime(2026, 11, 25, 10, 0, tzinfo=UTC))
    assert p.key == "2026-11-23"
    assert p.scheduled == datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
    assert p.window_end == datetime(2026, 11, 23, 0, 0, tzinfo=UTC)
    assert p.shift_days == 7


def test_monday_before_nine_still_belongs_to_last_week():
    p = digests.current_period(sub(), datetime(2026, 11, 23, 8, 59, tzinfo=UTC))
    assert p.key == "2026-11-16"
    p = digests.current_period(sub(), datetime(2026, 11, 23, 9, 0, tzinfo=UTC))
    assert p.key == "2026-11-23"


def test_period_is_computed_in_the_subscription_time_zone():
    # 09:00 in Berlin on Monday 2026-11-23 is 08:00 UTC (CET, UTC+1).
    s = sub(timezone="Europe/Berlin")
    assert digests.current_period(s, datetime(2026, 11, 23, 7, 59, tzinfo=UTC)).key == "2026-11-16"
    p = digests.current_period(s, datetime(2026, 11, 23, 8, 0, tzinfo=UTC))
    assert p.key == "2026-11-23"
    assert p.scheduled == datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
    assert p.window_end == datetime(2026, 11, 22, 23, 0, tzinfo=UTC)  # local midnight


def test_daily_period_and_other_weekday():
    daily = sub(cadence="daily", time_of_day="07:30")
    assert digests.current_period(daily, datetime(2026, 11, 25, 7, 29, tzinfo=UTC)).key == "2026-11-24"
    assert digests.current_period(daily, datetime(2026, 11, 25, 7, 30, tzinfo=UTC)).key == "2026-11-25"
    friday = sub(weekday=4)
    assert digests.current_period(friday, datetime(2026, 11, 25, 10, 0, tzinfo=UTC)).key == "2026-11-20"


def test_bad_subscription_values_are_refused_with_the_field():
    with pytest.raises(ValidationError) as e:
        digests.parse_weekday("someday")
    assert e.value.field == "day"
    with pytest.raises(ValidationError) as e:
        digests.parse_time_of_day("25:00")
    assert e.value.field == "time"
    with pytest.raises(ValidationError) as e:
        digests.check_timezone("Mars/Olympus")
    assert e.value.field == "tz"


def test_digest_is_due_once_per_period_and_never_for_periods_before_it_existed(engine):
    now = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
    with session_scope(engine) as s:
        created_wednesday = digests.add_subscription(s, channel="C1", now=now)
        created_last_week = digests.add_subscription(s, channel="C2", now=now - timedelta(days=8))
    with session_scope(engine) as s:
        due = {d.id: p.key for d, p in digests.due_subscriptions(s, now)}
        assert created_wednesday.id not in due  # Monday's period began before it existed
        assert due == {created_last_week.id: "2026-11-23"}  # missed while down: sent when back
        sub_ = s.get(DigestSubscription, created_last_week.id)
        assert digests.deliver(s, sub_, "2026-11-23", now=now) is True
        assert digests.deliver(s, sub_, "2026-11-23", now=now) is False  # the unique record wins
    with session_scope(engine) as s:
        assert digests.due_subscriptions(s, now) == []
        # Next Monday both are due.
        next_monday = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
        assert {d.id for d, _ in digests.due_subscriptions(s, next_monday)} == {created_wednesday.id, created_last_week.id}


def test_manual_send_does_not_use_up_the_scheduled_period(engine):
    now = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
    with session_scope(engine) as s:
        sub_ = digests.add_subscription(s, channel="C1", now=now - timedelta(days=8))
        assert digests.deliver(s, sub_, "2026-11-23", now=now, manual=True)
    with session_scope(engine) as s:
        assert [d.id for d, _ in digests.due_subscriptions(s, now)] == [sub_.id]


def test_remove_unknown_digest_says_how_to_find_them(engine):
    with session_scope(engine) as s, pytest.raises(NotFound) as e:
        digests.remove_subscription(s, "42")
    assert "/dora digest list" in e.value.message


def test_a_daily_digest_compares_week_over_week_and_counts_yesterday(engine):
    from bot.core.inputs import parse_deploy
    from bot.services.deploys import record_deploy

    now = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)
    # period 2026-11-25: the 7 days [11-18, 11-25) against [11-11, 11-18); "yesterday" is 11-24
    days = {"2026-11-24": 2, "2026-11-20": 1, "2026-11-17": 4, "2026-11-12": 2, "2026-11-10": 3}
    with session_scope(engine) as s:
        for day, n in days.items():
            for i in range(n):
                obj = {"service": "checkout", "version": f"{day}-{i}", "deployed_at": f"{day}T1{i}:00:00Z"}
                data = parse_deploy(obj, now=now, require_id=False)
                record_deploy(s, data=data, production_environments=("production",), now=now, source="slack")
        daily = digests.add_subscription(s, channel="C1", cadence="daily", time_of_day="07:30", now=now)
        data = digests.digest_data(s, daily, digests.current_period(daily, now), production_environments=("production",))
    assert data.current["deployment_frequency"]["deploys"] == 3
    assert data.previous["deployment_frequency"]["deploys"] == 6  # 11-17 and 11-12 (a window shifted a day would give 5)
    assert data.deploys == 2


def test_manual_sends_on_a_real_clock_are_recorded_each_time(engine):
    """A real clock has microseconds: a manual send's key must still fit ``digest_delivery.period``
    (a fixed test clock without them once hid that every ``/dora digest send`` failed on PostgreSQL)."""
    from bot.store.models import DigestDelivery

    with session_scope(engine) as s:
        sub_ = digests.add_subscription(s, channel="C1", now=datetime.now(UTC) - timedelta(days=8))
    sent = []
    for _ in range(2):
        now = datetime.now(UTC)  # the wall clock, as `/dora digest send` runs in production
        with session_scope(engine) as s:
            sent.append(digests.deliver(s, s.get(DigestSubscription, sub_.id), "2026-11-23", now=now, manual=True))
    assert sent == [True, True]
    with session_scope(engine, write=False) as s:
        periods = [d.period for d in digests.deliveries(s, sub_.id)]
    assert len(periods) == 2 and len(set(periods)) == 2
    assert all(p.startswith("manual-") and len(p) <= DigestDelivery.__table__.c.period.type.length for p in periods)
