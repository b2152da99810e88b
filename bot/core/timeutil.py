"""Parsing and formatting of instants and durations.

Instants are always returned as timezone-aware UTC datetimes. Naive ISO input is read in the
configured time zone, since that is what a person typing ``2026-11-24 09:30`` means.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone, tzinfo

from bot.core.errors import ValidationError

UTC = timezone.utc
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")  # Monday first, as datetime.weekday()

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
# ASCII digits only (``\d`` would take ``٣``), at most 7 of them per unit.
_DURATION_RE = re.compile(r"^(?:([0-9]{1,7})w)?(?:([0-9]{1,7})d)?(?:([0-9]{1,7})h)?(?:([0-9]{1,7})m)?(?:([0-9]{1,7})s)?$")
# The instants this bot takes, from any sender (API, import, webhooks, query strings, Slack):
# 1970-01-01T00:00:00Z up to the end of 2100, so every instant it writes back has a 4-digit
# year and arithmetic around it (a week before, a 90-day window) cannot overflow.
MIN_INSTANT = datetime(1970, 1, 1, tzinfo=timezone.utc)
MAX_INSTANT = datetime(2101, 1, 1, tzinfo=timezone.utc)
MAX_DURATION = timedelta(days=3660)  # ten years: the longest span anyone types (``/dora days=3660``)
RANGE_TEXT = "1970-01-01T00:00:00Z to 2100-12-31T23:59:59Z"


def parse_duration(text: str) -> timedelta:
    """Parse ``90s``, ``15m``, ``1h30m``, ``2d``, ``1w`` into a positive timedelta."""
    raw = text.strip().lower()
    match = _DURATION_RE.match(raw)
    if not raw or not match or not any(match.groups()):
        raise ValidationError(
            f"`{text}` is not a duration; use a number with s, m, h, d or w, like 15m, 1h30m or 2d"
        )
    weeks, days, hours, minutes, seconds = (int(g) if g else 0 for g in match.groups())
    total = timedelta(weeks=weeks, days=days, hours=hours, minutes=minutes, seconds=seconds)
    if total <= timedelta(0):
        raise ValidationError(f"`{text}` must be longer than zero")
    if total > MAX_DURATION:
        raise ValidationError(f"`{text}` is longer than {MAX_DURATION.days} days")
    return total


def ensure_utc(value: datetime, *, tz: tzinfo = UTC) -> datetime:
    """Return ``value`` as an aware UTC datetime; naive values are read in ``tz``."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=tz)
    return value.astimezone(UTC)


class OutOfRange(ValidationError):
    """An instant that parses but lies outside ``MIN_INSTANT``..``MAX_INSTANT``."""


def check_range(value: datetime, text: str | None = None) -> datetime:
    """``value`` (aware) if it lies in ``MIN_INSTANT``..``MAX_INSTANT``, else a ValidationError."""
    if not MIN_INSTANT <= value < MAX_INSTANT:
        shown = f"`{text}`" if text is not None and len(text) <= 60 else "the time"
        raise OutOfRange(f"{shown} is outside the supported range {RANGE_TEXT}")
    return value


def parse_instant(text: str, *, tz: tzinfo = UTC) -> datetime:
    """Parse an ISO-8601 instant (``2026-11-24T09:30Z``, offsets, or naive in ``tz``).

    The one parser of instants for every way in: out of ``MIN_INSTANT``..``MAX_INSTANT`` is a
    ValidationError (never an ``OverflowError`` from the conversion to UTC).
    """
    if not isinstance(text, str):
        raise ValidationError("must be an ISO-8601 time string such as 2026-11-24T10:12:00Z")
    raw = text.strip()
    if raw.endswith(("z", "Z")):
        raw = raw[:-1] + "+00:00"
    elif raw.endswith(" UTC"):  # GitLab's webhooks write `2026-11-24 09:12:00 UTC` (and `... +0100`)
        raw = raw[:-4] + "+00:00"
    shown = text if len(text) <= 60 else text[:57] + "..."
    try:
        value = datetime.fromisoformat(raw) if raw.isascii() else None
    except ValueError:
        value = None
    if value is None:
        raise ValidationError(f"`{shown}` is not an ISO-8601 time; use e.g. 2026-11-24T09:30Z")
    # Years 1 and 9999 with an offset overflow in astimezone: refuse them before converting.
    if not MIN_INSTANT.year - 1 <= value.year <= MAX_INSTANT.year:
        raise OutOfRange(f"`{shown}` is outside the supported range {RANGE_TEXT}")
    return check_range(ensure_utc(value, tz=tz), shown)


def parse_time(text: str, *, now: datetime, tz: tzinfo = UTC) -> datetime:
    """Parse a user-typed time: ``now``, relative (``15m``, ``3h ago``, ``2d``) or ISO-8601."""
    raw = text.strip().lower()
    if raw == "now":
        return ensure_utc(now)
    if raw.endswith("ago"):
        raw = raw[: -len("ago")].strip()
    if _DURATION_RE.match(raw) and any(_DURATION_RE.match(raw).groups()):
        return ensure_utc(now) - parse_duration(raw)
    try:
        return parse_instant(text, tz=tz)
    except OutOfRange:
        raise
    except ValidationError:
        raise ValidationError(
            f"`{text}` is not a time; use ISO-8601 (2026-11-24T09:30Z) or how long ago (15m, 3h, 2d)"
        ) from None


def isoformat_z(value: datetime | None) -> str | None:
    """Format an instant as ISO-8601 UTC with a ``Z`` suffix, dropping zero microseconds."""
    if value is None:
        return None
    value = ensure_utc(value)
    text = f"{value.year:04d}-" + value.strftime("%m-%dT%H:%M:%S")  # 4 digits: strftime writes 999
    if value.microsecond:
        text += f".{value.microsecond:06d}".rstrip("0")
    return text + "Z"


def format_duration(seconds: float | None) -> str:
    """Human form of a duration: ``45s``, ``12m``, ``3h 20m``, ``2d 4h``."""
    if seconds is None:
        return "n/a"
    sign = "-" if seconds < 0 else ""
    total = int(round(abs(seconds)))
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        text = f"{days}d {hours}h" if hours else f"{days}d"
    elif hours:
        text = f"{hours}h {minutes}m" if minutes else f"{hours}h"
    elif minutes:
        text = f"{minutes}m {secs}s" if secs and minutes < 10 else f"{minutes}m"
    else:
        text = f"{secs}s"
    return sign + text
