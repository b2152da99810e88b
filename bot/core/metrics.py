"""The five keys as pure functions: percentiles, tiers, deploy-day blocks and the report shape.

The definitions are the project's (``docs/metrics.md``; the rules themselves are in
``bot.core.rules``). The tier thresholds are those of the DORA State of DevOps report 2023, the
last with per-metric thresholds: https://dora.dev/research/2023/dora-report/ (the 2024 report's
levels are clusters and the 2025 report has team profiles instead, so neither gives a per-metric
tier; deployment rework rate, new in 2024, has no tiers). The database supplies the aggregates;
this module turns them into numbers, tiers and reasons, so every adapter shows the same thing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, tzinfo
from typing import Sequence

from bot.core.timeutil import UTC, isoformat_z

DAY = 86400
WEEK = 7 * DAY
MONTH = 30 * DAY
BENCHMARK = "dora-2023"

BENCHMARK_LABEL = "DORA 2023 benchmark"

ELITE, HIGH, MEDIUM, LOW = "elite", "high", "medium", "low"
TIERS = (ELITE, HIGH, MEDIUM, LOW)

# Tier thresholds, best first: (limit, tier). Durations are "under the limit", the change fail
# rate "at most the limit" (percent). The chart's tier lines are drawn from these.
LEAD_TIME_LIMITS = ((DAY, ELITE), (WEEK, HIGH), (MONTH, MEDIUM))
RESTORE_LIMITS = ((3600, ELITE), (DAY, HIGH), (WEEK, MEDIUM))
CHANGE_FAILURE_PERCENT_LIMITS = ((5, ELITE), (10, HIGH), (15, MEDIUM))


def percentile(sorted_values: Sequence[float], p: float) -> float | None:
    """Linear-interpolated percentile (``percentile_cont``) of already sorted values."""
    if not sorted_values:
        return None
    h = (len(sorted_values) - 1) * p
    lo = math.floor(h)
    hi = math.ceil(h)
    low, high = sorted_values[lo], sorted_values[hi]
    return float(low + (h - lo) * (high - low))


def percentile_positions(n: int, p: float) -> tuple[int, int, float]:
    """Zero-based ranks of the two values ``percentile_cont(p)`` interpolates, and the weight."""
    h = (n - 1) * p
    return math.floor(h), math.ceil(h), h - math.floor(h)


# --- tiers -------------------------------------------------------------------------------

def frequency_tier(week_median: float, month_median: float) -> str:
    """Elite: deploys on >= 5 days a week; high: >= 1 day a week; medium: >= 1 day a month."""
    if week_median >= 5:
        return ELITE
    if week_median >= 1:
        return HIGH
    if month_median >= 1:
        return MEDIUM
    return LOW


def _duration_tier(seconds: float, limits) -> str:
    for limit, tier in limits:
        if seconds < limit:
            return tier
    return LOW


def lead_time_tier(seconds: float) -> str:
    """Elite under a day, high under a week, medium under 30 days, else low."""
    return _duration_tier(seconds, LEAD_TIME_LIMITS)


def change_failure_tier(failed: int, deploys: int) -> str:
    """Elite <= 5%, high <= 10%, medium <= 15%, else low; compared exactly, in integers."""
    for percent, tier in CHANGE_FAILURE_PERCENT_LIMITS:
        if failed * 100 <= percent * deploys:
            return tier
    return LOW


def restore_tier(seconds: float) -> str:
    """Elite under an hour, high under a day, medium under a week (time to restore and failed
    deployment recovery time), else low."""
    return _duration_tier(seconds, RESTORE_LIMITS)


# --- windows and local dates --------------------------------------------------------------

@dataclass(frozen=True)
class Window:
    """The half-open window ``[end - days, end)`` and the zone its dates are read in."""

    end: datetime
    days: int
    tz: tzinfo = UTC

    @property
    def start(self) -> datetime:
        return self.end - timedelta(days=self.days)

    def previous(self) -> "Window":
        """The window of the same length just before this one."""
        return Window(end=self.start, days=self.days, tz=self.tz)

    @property
    def last_local_date(self) -> date:
        """D: the local date of the last instant before ``end``."""
        return (self.end - timedelta(microseconds=1)).astimezone(self.tz).date()

    def block_dates(self) -> list[date]:
        """Every local date that a 7-day or 30-day block looks at, oldest first."""
        span = max(7 * (self.days // 7), 30 * max(1, self.days // 30))
        last = self.last_local_date
        return [last - timedelta(days=i) for i in range(span - 1, -1, -1)]

    def date_bounds(self, day: date) -> tuple[datetime, datetime] | None:
        """The UTC instants of ``day`` (local) clipped to the window, or None if outside it."""
        lo = datetime(day.year, day.month, day.day, tzinfo=self.tz).astimezone(UTC)
        nxt = day + timedelta(days=1)
        hi = datetime(nxt.year, nxt.month, nxt.day, tzinfo=self.tz).astimezone(UTC)
        lo, hi = max(lo, self.start), min(hi, self.end)
        return (lo, hi) if lo < hi else None


def block_medians(window: Window, deploy_dates: frozenset[date] | set[date]) -> tuple[float, float]:
    """Median deploy days over the 7-date blocks and over the 30-date blocks back from D."""
    last = window.last_local_date

    def median_over(size: int, count: int) -> float:
        per_block = []
        for b in range(count):
            newest = last - timedelta(days=b * size)
            per_block.append(
                sum(1 for i in range(size) if newest - timedelta(days=i) in deploy_dates)
            )
        per_block.sort()
        return percentile(per_block, 0.5) or 0.0

    return median_over(7, window.days // 7), median_over(30, max(1, window.days // 30))


# --- the report ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Distribution:
    """Count and percentiles of one set of duration samples, in seconds."""

    n: int = 0
    median: float | None = None
    p90: float | None = None


@dataclass(frozen=True)
class Aggregates:
    """Everything the database computes for one scope and window."""

    deploys: int = 0
    any_deploy_ever: bool = False
    deploy_dates: frozenset[date] = field(default_factory=frozenset)
    failed: int = 0
    rework: int = 0
    lead: Distribution = Distribution()
    invalid_lead_samples: int = 0
    unlinked_incidents: int = 0
    not_change_incidents: int = 0
    restore: Distribution = Distribution()
    recovery: Distribution = Distribution()
    open_incidents: int = 0
    oldest_open_started: datetime | None = None
    mtta: Distribution = Distribution()


def _seconds(value: float | None) -> float | None:
    return None if value is None else round(float(value), 3)


def build_report(
    *,
    window: Window,
    service: str | None,
    environments: Sequence[str],
    timezone_name: str,
    agg: Aggregates,
    team: str | None = None,
) -> dict:
    """The JSON shape of ``docs/metrics.md`` from the aggregates of one scope and window (a
    service, a ``team``'s services pooled, or every service)."""
    scope_name = f"`{service}`" if service else (f"team `{team}`" if team else "any service")
    n_days = window.days

    # Deployment frequency
    df_reason = None
    days_per_week = None
    days_per_month = None
    df_tier = None
    if not agg.any_deploy_ever:
        df_reason = f"no production deploy was recorded for {scope_name} before the end of this window"
    elif n_days < 7:
        df_reason = "a deploy-days-per-week tier needs a window of at least 7 days"
    else:
        week_median, month_median = block_medians(window, agg.deploy_dates)
        days_per_week = float(week_median)
        days_per_month = float(month_median)
        df_tier = frequency_tier(week_median, month_median)

    # Lead time for changes
    lt_reason = None
    lt_tier = None
    if agg.lead.n == 0:
        lt_reason = "no commit with a known commit time was first deployed to production in this window"
        if agg.invalid_lead_samples:
            lt_reason += (
                f" ({agg.invalid_lead_samples} dropped: commit time after the deploy)"
            )
    else:
        lt_tier = lead_time_tier(agg.lead.median)

    # Change failure rate
    cfr_reason = None
    rate = None
    cfr_tier = None
    if agg.deploys == 0:
        cfr_reason = "no production deploys in this window"
    else:
        rate = round(agg.failed / agg.deploys, 4)
        cfr_tier = change_failure_tier(agg.failed, agg.deploys)

    # Deployment rework rate: no published tiers (DORA 2024 introduced it without levels).
    rework_reason = None
    rework_rate = None
    if agg.deploys == 0:
        rework_reason = "no production deploys in this window"
    else:
        rework_rate = round(agg.rework / agg.deploys, 4)

    # Time to restore
    ttr_reason = None
    ttr_tier = None
    if agg.restore.n == 0:
        ttr_reason = "no production incident was mitigated or resolved in this window"
        if agg.open_incidents:
            ttr_reason += f"; {agg.open_incidents} still open (open incidents are never measured)"
    else:
        ttr_tier = restore_tier(agg.restore.median)
    oldest_open = None
    if agg.oldest_open_started is not None:
        oldest_open = _seconds((window.end - agg.oldest_open_started).total_seconds())

    fdrt_reason = None
    fdrt_tier = None
    if agg.recovery.n == 0:
        fdrt_reason = "no incident recovered in this window was linked to the deploy that caused it"
    else:
        fdrt_tier = restore_tier(agg.recovery.median)

    return {
        "scope": {
            "service": service,
            "team": team,
            "environments": list(environments),
            "start": isoformat_z(window.start),
            "end": isoformat_z(window.end),
            "days": n_days,
            "timezone": timezone_name,
        },
        "benchmark": BENCHMARK,
        "deployment_frequency": {
            "deploys": int(agg.deploys),
            "per_day": round(agg.deploys / n_days, 4),
            "deploy_days_per_week": days_per_week,
            "deploy_days_per_month": days_per_month,
            "tier": df_tier,
            "reason": df_reason,
        },
        "lead_time": {
            "median_seconds": _seconds(agg.lead.median),
            "p90_seconds": _seconds(agg.lead.p90),
            "samples": int(agg.lead.n),
            "invalid_samples": int(agg.invalid_lead_samples),
            "tier": lt_tier,
            "reason": lt_reason,
        },
        "change_failure_rate": {
            "failed": int(agg.failed),
            "deploys": int(agg.deploys),
            "rate": rate,
            "unlinked_incidents": int(agg.unlinked_incidents),
            "not_change_incidents": int(agg.not_change_incidents),
            "tier": cfr_tier,
            "reason": cfr_reason,
        },
        "deployment_rework_rate": {
            "rework": int(agg.rework),
            "deploys": int(agg.deploys),
            "rate": rework_rate,
            "tier": None,
            "reason": rework_reason,
        },
        "time_to_restore": {
            "median_seconds": _seconds(agg.restore.median),
            "p90_seconds": _seconds(agg.restore.p90),
            "incidents": int(agg.restore.n),
            "open_incidents": int(agg.open_incidents),
            "oldest_open_seconds": oldest_open,
            "tier": ttr_tier,
            "reason": ttr_reason,
        },
        "failed_deployment_recovery_time": {
            "median_seconds": _seconds(agg.recovery.median),
            "incidents": int(agg.recovery.n),
            "tier": fdrt_tier,
            "reason": fdrt_reason,
        },
        "mtta": {"median_seconds": _seconds(agg.mtta.median), "incidents": int(agg.mtta.n)},
    }
