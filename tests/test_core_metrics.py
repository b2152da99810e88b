"""The pure maths of ``bot.core.metrics``: percentiles, tiers, windows, deploy-day blocks."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.core.metrics import (
    Aggregates,
    Distribution,
    Window,
    block_medians,
    build_report,
    change_failure_tier,
    frequency_tier,
    lead_time_tier,
    percentile,
    restore_tier,
)

END = datetime(2026, 11, 25, tzinfo=UTC)


def test_percentile_interpolates_linearly():
    assert percentile([], 0.5) is None
    assert percentile([7], 0.5) == 7.0 and percentile([7], 0.9) == 7.0
    assert percentile([1, 3], 0.5) == 2.0
    assert percentile([1, 2, 3, 4], 0.5) == 2.5
    assert percentile([10, 20, 30, 40, 50], 0.9) == pytest.approx(46.0)  # rank 3.6
    assert percentile(list(range(1, 11)), 0.9) == pytest.approx(9.1)  # rank 8.1
    assert percentile([1, 2, 3], 0.0) == 1.0 and percentile([1, 2, 3], 1.0) == 3.0


def test_tier_functions_at_their_boundaries():
    d, w = 86400, 7 * 86400
    assert [lead_time_tier(s) for s in (d - 0.001, d, w - 1, w, 30 * d - 1, 30 * d)] == [
        "elite", "high", "high", "medium", "medium", "low",
    ]
    assert [restore_tier(s) for s in (3599.999, 3600, d - 1, d, w - 1, w)] == [
        "elite", "high", "high", "medium", "medium", "low",
    ]
    assert [change_failure_tier(f, 100) for f in (0, 5, 6, 10, 11, 15, 16)] == [
        "elite", "elite", "high", "high", "medium", "medium", "low",
    ]
    assert change_failure_tier(1, 7) == "medium"  # 14.3%
    assert change_failure_tier(1, 20) == "elite" and change_failure_tier(3, 20) == "medium"
    assert [frequency_tier(wk, mo) for wk, mo in ((5, 0), (4.5, 0), (1, 0), (0.5, 1), (0.5, 0.5), (0, 0))] == [
        "elite", "high", "high", "medium", "low", "low",
    ]


def test_window_bounds_and_last_local_date():
    w = Window(end=END, days=7)
    assert w.start == END - timedelta(days=7)
    assert w.previous() == Window(end=w.start, days=7)
    assert w.last_local_date == date(2026, 11, 24)  # end is midnight: the last instant is the 24th
    assert Window(end=END, days=7, tz=ZoneInfo("Europe/Berlin")).last_local_date == date(2026, 11, 25)
    assert Window(end=END, days=7, tz=ZoneInfo("America/St_Johns")).last_local_date == date(2026, 11, 24)


def test_window_date_bounds_are_clipped_to_the_window():
    berlin = Window(end=END, days=7, tz=ZoneInfo("Europe/Berlin"))
    # Nov 25 in Berlin starts at Nov 24 23:00Z; the window ends at Nov 25 00:00Z
    assert berlin.date_bounds(date(2026, 11, 25)) == (
        datetime(2026, 11, 24, 23, tzinfo=UTC), datetime(2026, 11, 25, tzinfo=UTC),
    )
    assert berlin.date_bounds(date(2026, 11, 20)) == (
        datetime(2026, 11, 19, 23, tzinfo=UTC), datetime(2026, 11, 20, 23, tzinfo=UTC),
    )
    assert berlin.date_bounds(date(2026, 11, 10)) is None
    assert berlin.date_bounds(date(2026, 11, 26)) is None


def test_block_dates_cover_the_whole_weeks_and_the_month_blocks():
    assert len(Window(end=END, days=7).block_dates()) == 30  # one 30-date block is always read
    assert len(Window(end=END, days=60).block_dates()) == 60
    assert len(Window(end=END, days=66).block_dates()) == 63  # nine weeks vs two 30-date blocks
    dates = Window(end=END, days=7).block_dates()
    assert dates[-1] == date(2026, 11, 24) and dates == sorted(dates)


def test_block_medians_count_deploy_days_per_block_back_from_the_last_date():
    w = Window(end=END, days=21)  # blocks Nov 18-24, Nov 11-17, Nov 4-10
    days = {date(2026, 11, d) for d in (24, 23, 22, 17, 4, 5, 6, 7, 8)}
    week, month = block_medians(w, days)
    assert week == 3.0  # blocks have 3, 1, 5 deploy days
    assert month == 9.0
    assert block_medians(Window(end=END, days=14), {date(2026, 11, 24)}) == (0.5, 1.0)


def test_report_from_no_aggregates_is_all_na():
    r = build_report(
        window=Window(end=END, days=30), service=None, environments=["production"], timezone_name="UTC",
        agg=Aggregates(),
    )
    for section in ("deployment_frequency", "lead_time", "change_failure_rate", "time_to_restore",
                    "failed_deployment_recovery_time"):
        assert r[section]["tier"] is None and r[section]["reason"]


def test_report_mentions_dropped_samples_and_open_incidents_in_its_reasons():
    r = build_report(
        window=Window(end=END, days=30), service="checkout", environments=["production"], timezone_name="UTC",
        agg=Aggregates(invalid_lead_samples=2, open_incidents=1, oldest_open_started=END - timedelta(hours=2),
                       restore=Distribution()),
    )
    assert "2" in r["lead_time"]["reason"]
    assert "open" in r["time_to_restore"]["reason"]
    assert r["time_to_restore"]["oldest_open_seconds"] == 7200.0
    assert r["scope"]["service"] == "checkout"
