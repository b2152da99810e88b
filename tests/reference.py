"""A small, independent reference implementation of ``docs/metrics.md``, for checking the engine.

It works on raw event lists in the import format (the dicts of a JSON Lines file, times as
ISO-8601 strings or aware datetimes) and walks them in plain Python: no database, no code from
``bot``. Medians and p90 come from :mod:`statistics`, local dates from :mod:`zoneinfo`, and each
rule of the contract is written out as directly as it reads, so a disagreement with the engine
points at one of the two.

Assumptions about the input (the tests generate data that satisfies them): a commit sha has the
same ``committed_at`` wherever it appears, and every record is valid as the ingest rules define.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from fractions import Fraction
from typing import Any
from zoneinfo import ZoneInfo

DAY = 86400
HOUR = 3600
WEEK = 7 * DAY
MONTH = 30 * DAY


def instant(value: Any) -> datetime | None:
    """An aware UTC datetime from an ISO string (``Z`` or offset) or a datetime; None stays None."""
    if value is None:
        return None
    if isinstance(value, datetime):
        parsed = value
    else:
        text = value.strip()
        if text[-1] in "zZ":
            text = text[:-1] + "+00:00"
        parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        raise ValueError(f"naive time {value!r}")
    return parsed.astimezone(UTC)


def iso(value: datetime) -> str:
    """``2026-11-25T12:00:00Z`` (with microseconds only when there are some)."""
    value = value.astimezone(UTC)
    text = value.strftime("%Y-%m-%dT%H:%M:%S")
    if value.microsecond:
        text += f".{value.microsecond:06d}".rstrip("0")
    return text + "Z"


# --- statistics ------------------------------------------------------------------------------

def median(values: Sequence[float]) -> float | None:
    return float(statistics.median(values)) if values else None


def p90(values: Sequence[float]) -> float | None:
    """``percentile_cont(0.9)``: the 9th decile with the inclusive (linear) method."""
    if not values:
        return None
    if len(values) == 1:
        return float(values[0])
    return float(statistics.quantiles(values, n=10, method="inclusive")[8])


def rounded_seconds(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


# --- tiers -----------------------------------------------------------------------------------

def duration_tier(seconds: float, limits: tuple[int, int, int]) -> str:
    elite, high, medium = limits
    if seconds < elite:
        return "elite"
    if seconds < high:
        return "high"
    if seconds < medium:
        return "medium"
    return "low"


def lead_tier(seconds: float) -> str:
    return duration_tier(seconds, (DAY, WEEK, MONTH))


def restore_tier(seconds: float) -> str:
    return duration_tier(seconds, (HOUR, DAY, WEEK))


def failure_tier(failed: int, deploys: int) -> str:
    rate = Fraction(failed, deploys)
    if rate <= Fraction(5, 100):
        return "elite"
    if rate <= Fraction(10, 100):
        return "high"
    if rate <= Fraction(15, 100):
        return "medium"
    return "low"


def frequency_tier(week_median: float, month_median: float) -> str:
    if week_median >= 5:
        return "elite"
    if week_median >= 1:
        return "high"
    if month_median >= 1:
        return "medium"
    return "low"


# --- normalized events -----------------------------------------------------------------------

def _key(name: str) -> str:
    """Which service a name means: case and spaces vs ``-`` do not matter (product spec)."""
    return "-".join(name.casefold().replace("-", " ").split())


class _Deploy:
    def __init__(self, raw: Mapping[str, Any], order: int) -> None:
        self.order = order
        self.id = str(raw["id"])
        self.service = _key(raw["service"])
        self.environment = (raw.get("environment") or "production").strip().lower()
        self.status = raw.get("status") or "success"
        self.deployed_at = instant(raw["deployed_at"])
        self.rollback_of = raw.get("rollback_of")
        self.marked = bool(raw.get("change_failure"))
        self.fixes = raw.get("fixes")
        self.hotfix = bool(raw.get("rework"))
        self.commits: dict[str, datetime | None] = {}
        for item in raw.get("commits") or []:
            if isinstance(item, str):
                item = {"sha": item}
            sha = item["sha"].strip().lower()
            self.commits.setdefault(sha, instant(item.get("committed_at")))


class _Incident:
    def __init__(self, raw: Mapping[str, Any]) -> None:
        self.service = _key(raw["service"])
        self.environment = (raw.get("environment") or "production").strip().lower()
        self.started_at = instant(raw["started_at"])
        self.acknowledged_at = instant(raw.get("acknowledged_at"))
        self.resolved_at = instant(raw.get("resolved_at"))
        self.mitigated_at = instant(raw.get("mitigated_at"))
        self.caused_by = raw.get("caused_by")
        self.cancelled = raw.get("status") == "cancelled"
        self.not_caused_by_change = bool(raw.get("not_caused_by_change"))

    @property
    def recovered_at(self) -> datetime | None:
        """Service restored: when mitigated, else when resolved (DORA 2024)."""
        return self.mitigated_at or self.resolved_at


# --- the report ------------------------------------------------------------------------------

def metrics(
    deploys: Iterable[Mapping[str, Any]],
    incidents: Iterable[Mapping[str, Any]],
    *,
    service: str | None,
    days: int,
    end: datetime,
    timezone_name: str = "UTC",
    production_environments: Sequence[str] = ("production", "prod"),
    services: Iterable[str] | None = None,
) -> dict:
    """The metrics JSON of ``docs/metrics.md`` for ``service`` (None: every service) over ``[end - days, end)``.

    ``services``: a team's services instead; their raw events are pooled, as for every service."""
    tz = ZoneInfo(timezone_name)
    end = end.astimezone(UTC)
    start = end - timedelta(days=days)
    production = {e.strip().lower() for e in production_environments}
    scope = _key(service) if service else None
    pool = None if services is None else {_key(s) for s in services}

    all_deploys = [_Deploy(d, i) for i, d in enumerate(deploys)]
    # A cancelled incident takes part in nothing: not even its cause counts.
    all_incidents = [i for i in (_Incident(raw) for raw in incidents) if not i.cancelled]
    by_id = {d.id: d for d in all_deploys}

    def in_window(t: datetime | None) -> bool:
        return t is not None and start <= t < end

    def qualifying(d: _Deploy) -> bool:
        return d.status == "success" and d.environment in production

    def in_scope(svc: str) -> bool:
        if pool is not None:
            return svc in pool
        return scope is None or svc == scope

    scoped = [d for d in all_deploys if qualifying(d) and in_scope(d.service)]
    window_deploys = [d for d in scoped if in_window(d.deployed_at)]

    # Change failures: caused an incident (any environment), reverted by a successful rollback,
    # or marked.
    failed_ids = {d.id for d in all_deploys if d.marked}
    failed_ids |= {i.caused_by for i in all_incidents if i.caused_by is not None}
    failed_ids |= {d.rollback_of for d in all_deploys if d.rollback_of is not None and d.status == "success"}

    # --- deployment frequency
    n_deploys = len(window_deploys)
    ever = any(d.deployed_at < end for d in scoped)
    days_per_week = days_per_month = df_tier = None
    if ever and days >= 7:
        deploy_dates = {d.deployed_at.astimezone(tz).date() for d in window_deploys}
        last = (end - timedelta(microseconds=1)).astimezone(tz).date()

        def deploy_days(newest: date, size: int) -> int:
            return len({newest - timedelta(days=k) for k in range(size)} & deploy_dates)

        weeks = [deploy_days(last - timedelta(days=7 * b), 7) for b in range(days // 7)]
        months = [deploy_days(last - timedelta(days=30 * b), 30) for b in range(max(1, days // 30))]
        days_per_week = float(statistics.median(weeks))
        days_per_month = float(statistics.median(months))
        df_tier = frequency_tier(days_per_week, days_per_month)
    deployment_frequency = {
        "deploys": n_deploys,
        "per_day": round(n_deploys / days, 4),
        "deploy_days_per_week": days_per_week,
        "deploy_days_per_month": days_per_month,
        "tier": df_tier,
        "reason": None if df_tier else ("no production deploy ever" if not ever else "window under 7 days"),
    }

    # --- lead time: one sample per (service, sha) at its first qualifying deploy
    first: dict[tuple[str, str], _Deploy] = {}
    for d in sorted(scoped, key=lambda d: (d.deployed_at, d.order)):
        for sha in d.commits:
            first.setdefault((d.service, sha), d)
    leads, invalid = [], 0
    for (_, sha), d in first.items():
        committed = d.commits[sha]
        if committed is None or not in_window(d.deployed_at):
            continue
        lead = (d.deployed_at - committed).total_seconds()
        if lead < 0:
            invalid += 1
        else:
            leads.append(lead)
    lt_median = median(leads)
    lead_time = {
        "median_seconds": rounded_seconds(lt_median),
        "p90_seconds": rounded_seconds(p90(leads)),
        "samples": len(leads),
        "invalid_samples": invalid,
        "tier": None if lt_median is None else lead_tier(lt_median),
        "reason": "no samples" if lt_median is None else None,
    }

    # --- change failure rate
    n_failed = sum(1 for d in window_deploys if d.id in failed_ids)
    scoped_incidents = [i for i in all_incidents if in_scope(i.service) and i.environment in production]
    started_unlinked = [i for i in scoped_incidents if in_window(i.started_at) and i.caused_by is None]
    unlinked = sum(1 for i in started_unlinked if not i.not_caused_by_change)
    not_change = sum(1 for i in started_unlinked if i.not_caused_by_change)
    change_failure_rate = {
        "failed": n_failed,
        "deploys": n_deploys,
        "rate": round(n_failed / n_deploys, 4) if n_deploys else None,
        "unlinked_incidents": unlinked,
        "not_change_incidents": not_change,
        "tier": failure_tier(n_failed, n_deploys) if n_deploys else None,
        "reason": None if n_deploys else "no deploys",
    }

    # --- deployment rework rate: rollbacks, fixes and hotfixes among the window's deploys
    n_rework = sum(1 for d in window_deploys if d.rollback_of is not None or d.fixes is not None or d.hotfix)
    deployment_rework_rate = {
        "rework": n_rework,
        "deploys": n_deploys,
        "rate": round(n_rework / n_deploys, 4) if n_deploys else None,
        "tier": None,
        "reason": None if n_deploys else "no deploys",
    }

    # --- time to restore, failed deployment recovery time, MTTA
    recovered = [i for i in scoped_incidents if in_window(i.recovered_at)]
    restore = [(i.recovered_at - i.started_at).total_seconds() for i in recovered]
    recovery = [
        (i.recovered_at - min(by_id[i.caused_by].deployed_at, i.started_at)).total_seconds()
        for i in recovered
        if i.caused_by is not None
    ]
    still_open = [
        i for i in scoped_incidents if i.started_at < end and (i.resolved_at is None or i.resolved_at >= end)
    ]
    oldest = min((i.started_at for i in still_open), default=None)
    acks = [
        (i.acknowledged_at - i.started_at).total_seconds() for i in scoped_incidents if in_window(i.acknowledged_at)
    ]
    ttr_median, fdrt_median = median(restore), median(recovery)
    time_to_restore = {
        "median_seconds": rounded_seconds(ttr_median),
        "p90_seconds": rounded_seconds(p90(restore)),
        "incidents": len(restore),
        "open_incidents": len(still_open),
        "oldest_open_seconds": None if oldest is None else rounded_seconds((end - oldest).total_seconds()),
        "tier": None if ttr_median is None else restore_tier(ttr_median),
        "reason": "nothing resolved" if ttr_median is None else None,
    }
    failed_deployment_recovery_time = {
        "median_seconds": rounded_seconds(fdrt_median),
        "incidents": len(recovery),
        "tier": None if fdrt_median is None else restore_tier(fdrt_median),
        "reason": "nothing resolved with a cause" if fdrt_median is None else None,
    }
    mtta = {"median_seconds": rounded_seconds(median(acks)), "incidents": len(acks)}

    return {
        "scope": {
            "service": scope,
            "environments": list(production_environments),
            "start": iso(start),
            "end": iso(end),
            "days": days,
            "timezone": timezone_name,
        },
        "benchmark": "dora-2023",
        "deployment_frequency": deployment_frequency,
        "lead_time": lead_time,
        "change_failure_rate": change_failure_rate,
        "deployment_rework_rate": deployment_rework_rate,
        "time_to_restore": time_to_restore,
        "failed_deployment_recovery_time": failed_deployment_recovery_time,
        "mtta": mtta,
    }


SECTIONS = (
    "deployment_frequency",
    "lead_time",
    "change_failure_rate",
    "deployment_rework_rate",
    "time_to_restore",
    "failed_deployment_recovery_time",
    "mtta",
)


def differences(actual: Mapping[str, Any], expected: Mapping[str, Any], *, rel: float = 1e-9, abs_: float = 1e-6) -> list[str]:
    """Where ``actual`` (the engine's report) disagrees with ``expected`` (this reference).

    Numbers are compared with a tolerance, counts and tiers exactly, ``null`` as ``null``, and a
    ``reason`` only for being present exactly when the reference has one (its words are free).
    """
    problems: list[str] = []
    if set(actual) != set(expected):
        problems.append(f"top-level keys {sorted(actual)} != {sorted(expected)}")
    for key in ("service", "environments", "start", "end", "days", "timezone"):
        got = actual.get("scope", {}).get(key)
        if key == "service" and got is not None:
            got = _key(got)  # the engine shows the service's display name; which service is what counts
        if got != expected["scope"][key]:
            problems.append(f"scope.{key}: {actual.get('scope', {}).get(key)!r} != {expected['scope'][key]!r}")
    if actual.get("benchmark") != expected["benchmark"]:
        problems.append(f"benchmark: {actual.get('benchmark')!r}")
    for section in SECTIONS:
        got, want = actual.get(section, {}), expected[section]
        if set(got) != set(want):
            problems.append(f"{section} keys {sorted(got)} != {sorted(want)}")
        for key, value in want.items():
            other = got.get(key, "<missing>")
            where = f"{section}.{key}"
            if key == "reason":
                if (other is None) != (value is None):
                    problems.append(f"{where}: {other!r}, expected {'a reason' if value else 'null'}")
            elif value is None or other is None or isinstance(value, (str, bool)):
                if other != value:
                    problems.append(f"{where}: {other!r} != {value!r}")
            elif isinstance(value, int) and not isinstance(value, bool) and key != "per_day":
                if other != value or type(other) is not int:
                    problems.append(f"{where}: {other!r} != {value!r} (an integer count)")
            elif not isinstance(other, (int, float)) or abs(other - value) > max(abs_, rel * abs(value)):
                problems.append(f"{where}: {other!r} != {value!r}")
    return problems
