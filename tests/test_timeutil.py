"""Parsing and formatting of instants and durations (``bot.core.timeutil``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.core.errors import ValidationError
from bot.core.timeutil import (
    ensure_utc,
    format_duration,
    isoformat_z,
    parse_duration,
    parse_instant,
    parse_time,
)

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
BERLIN = ZoneInfo("Europe/Berlin")


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90s", 90),
        ("15m", 900),
        ("1h30m", 5400),
        ("2d", 172800),
        ("1w", 604800),
        ("1w2d3h4m5s", 604800 + 172800 + 10800 + 240 + 5),
        (" 2H ", 7200),
        ("0h5m", 300),
    ],
)
def test_parse_duration(text, seconds):
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "  ", "abc", "15", "m", "1h 30m", "30m1h", "-5m", "1.5h", "15 minutes"])
def test_parse_duration_rejects_what_is_not_a_duration(text):
    with pytest.raises(ValidationError) as err:
        parse_duration(text)
    assert "duration" in err.value.message


@pytest.mark.parametrize("text", ["0m", "0s", "0h0m"])
def test_parse_duration_rejects_zero(text):
    with pytest.raises(ValidationError) as err:
        parse_duration(text)
    assert "longer than zero" in err.value.message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-24T09:30Z", datetime(2026, 11, 24, 9, 30, tzinfo=UTC)),
        ("2026-11-24T09:30:00z", datetime(2026, 11, 24, 9, 30, tzinfo=UTC)),
        ("2026-11-24T10:30:00+01:00", datetime(2026, 11, 24, 9, 30, tzinfo=UTC)),
        ("2026-11-24T04:00:00-05:30", datetime(2026, 11, 24, 9, 30, tzinfo=UTC)),
        ("2026-11-24T09:30:00.250Z", datetime(2026, 11, 24, 9, 30, 0, 250000, tzinfo=UTC)),
        ("2026-11-24 09:30", datetime(2026, 11, 24, 9, 30, tzinfo=UTC)),  # naive: read in UTC
    ],
)
def test_parse_instant(text, expected):
    value = parse_instant(text)
    assert value == expected and value.tzinfo == UTC


def test_parse_instant_reads_naive_times_in_the_given_zone():
    assert parse_instant("2026-11-24 10:30", tz=BERLIN) == datetime(2026, 11, 24, 9, 30, tzinfo=UTC)
    assert parse_instant("2026-07-24 10:30", tz=BERLIN) == datetime(2026, 7, 24, 8, 30, tzinfo=UTC)  # summer time
    assert parse_instant("2026-11-24T10:30Z", tz=BERLIN) == datetime(2026, 11, 24, 10, 30, tzinfo=UTC)


@pytest.mark.parametrize("text", ["", "yesterday", "2026-11-31T00:00Z", "24/11/2026", "2026-11-24T25:00Z"])
def test_parse_instant_rejects_what_is_not_iso(text):
    with pytest.raises(ValidationError) as err:
        parse_instant(text)
    assert "ISO-8601" in err.value.message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("now", NOW),
        ("NOW", NOW),
        ("15m", NOW - timedelta(minutes=15)),
        ("3h ago", NOW - timedelta(hours=3)),
        ("2d", NOW - timedelta(days=2)),
        ("1h30mago", NOW - timedelta(minutes=90)),
        ("2026-11-24T09:30Z", datetime(2026, 11, 24, 9, 30, tzinfo=UTC)),
    ],
)
def test_parse_time(text, expected):
    assert parse_time(text, now=NOW) == expected


def test_parse_time_reads_naive_iso_in_the_zone_and_converts_now():
    assert parse_time("2026-11-24 10:30", now=NOW, tz=BERLIN) == datetime(2026, 11, 24, 9, 30, tzinfo=UTC)
    local_now = NOW.astimezone(BERLIN)
    assert parse_time("now", now=local_now).tzinfo == UTC
    assert parse_time("15m", now=local_now) == NOW - timedelta(minutes=15)


@pytest.mark.parametrize("text", ["soon", "ago", "0m", "3 hours ago", "tomorrow 9am"])
def test_parse_time_rejects_other_text_with_a_hint(text):
    with pytest.raises(ValidationError) as err:
        parse_time(text, now=NOW)
    assert err.value.message


def test_ensure_utc():
    naive = datetime(2026, 11, 24, 10, 30)
    assert ensure_utc(naive) == datetime(2026, 11, 24, 10, 30, tzinfo=UTC)
    assert ensure_utc(naive, tz=BERLIN) == datetime(2026, 11, 24, 9, 30, tzinfo=UTC)
    aware = datetime(2026, 11, 24, 10, 30, tzinfo=BERLIN)
    assert ensure_utc(aware).tzinfo == UTC and ensure_utc(aware) == aware


def test_isoformat_z():
    assert isoformat_z(None) is None
    assert isoformat_z(datetime(2026, 11, 24, 9, 30, tzinfo=UTC)) == "2026-11-24T09:30:00Z"
    assert isoformat_z(datetime(2026, 11, 24, 10, 30, tzinfo=BERLIN)) == "2026-11-24T09:30:00Z"
    assert isoformat_z(datetime(2026, 11, 24, 9, 30, 0, 250000, tzinfo=UTC)) == "2026-11-24T09:30:00.25Z"
    assert isoformat_z(datetime(2026, 11, 24, 9, 30, 0, 1, tzinfo=UTC)) == "2026-11-24T09:30:00.000001Z"
    text = isoformat_z(datetime(2026, 11, 24, 9, 30, 0, 123456, tzinfo=UTC))
    assert parse_instant(text) == datetime(2026, 11, 24, 9, 30, 0, 123456, tzinfo=UTC)  # round trip


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (None, "n/a"),
        (0, "0s"),
        (45, "45s"),
        (59.6, "1m"),
        (90, "1m 30s"),
        (540, "9m"),
        (599, "9m 59s"),
        (659, "10m"),  # from ten minutes on, seconds are dropped
        (3600, "1h"),
        (12000, "3h 20m"),
        (86400, "1d"),
        (2 * 86400 + 4 * 3600 + 59 * 60, "2d 4h"),
        (-90, "-1m 30s"),
    ],
)
def test_format_duration(seconds, text):
    assert format_duration(seconds) == text
