"""Plain-text rendering of a metrics report (CLI, demo, shell). Pure: dict in, str out."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from bot.core.timeutil import format_duration

TIER_MARK = {"elite": "elite", "high": "high", "medium": "medium", "low": "low", None: "n/a"}
NO_TIERS = "-"  # rework rate and time to acknowledge: DORA publishes no tiers for them

# DORA's current names and grouping of the five software-delivery metrics (dora.dev metrics guide,
# 2024 report): throughput and instability. Keys are the JSON sections of the report.
THROUGHPUT = (
    ("lead_time", "Change lead time"),
    ("deployment_frequency", "Deployment frequency"),
    ("failed_deployment_recovery_time", "Failed deployment recovery time"),
)
INSTABILITY = (
    ("change_failure_rate", "Change fail rate"),
    ("deployment_rework_rate", "Deployment rework rate"),
)
FACTORS = (("Throughput", THROUGHPUT), ("Instability", INSTABILITY))
FIVE_KEYS = dict(THROUGHPUT + INSTABILITY)
RESTORE_TITLE = "Time to restore (all incidents)"
BENCHMARK_NOTE = "tiers from the DORA 2023 benchmark; rework rate has none"


def counted(n: int, noun: str) -> str:
    """``1 deploy``, ``2 deploys``: a count with its noun (regular plurals only)."""
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def _pct(rate: float | None) -> str:
    return "n/a" if rate is None else f"{rate * 100:.1f}%"


def _dist(median: float | None, p90: float | None = None) -> str:
    if median is None:
        return "n/a"
    text = format_duration(median)
    if p90 is not None:
        text += f" (p90 {format_duration(p90)})"
    return text


def local_zone(scope: dict) -> str | None:
    """The report's time zone when its dates are not UTC dates (worth saying), else None."""
    tz = scope["timezone"]
    return None if tz in ("UTC", "Etc/UTC") else tz


def window_end(scope: dict) -> str:
    """The window's end on the clock of the report's time zone: ``2026-11-20 00:00 Europe/Berlin``."""
    end = datetime.fromisoformat(scope["end"].replace("Z", "+00:00"))
    if (tz := local_zone(scope)) is not None:
        end = end.astimezone(ZoneInfo(tz))
    return f"{end:%Y-%m-%d %H:%M} {scope['timezone']}"


def scope_label(scope: dict, *, code: bool = False) -> str:
    """What a report is about in words: the service, ``team payments``, or all services."""
    if scope.get("service"):
        return f"`{scope['service']}`" if code else scope["service"]
    if scope.get("team"):
        return f"team `{scope['team']}`" if code else f"team {scope['team']}"
    return "all services"


def scope_title(report: dict) -> str:
    scope = report["scope"]
    who = scope_label(scope)
    tz = local_zone(scope)
    return f"{who}, last {counted(scope['days'], 'day')} to {window_end(scope)}" + (f" (dates in {tz})" if tz else "")


def frequency_text(m: dict, days: int) -> str:
    """Deployment frequency in words, saying what gave its tier (the one wording of it, on cards,
    the CLI, digests and App Home): ``4 deploy days/week (1.37 deploys/day)`` when the weekly median
    decides; ``deploys on 2 of the last 30 days`` when the monthly fallback does (medium, low)."""
    per_day = f"{m['per_day']:.2f} deploys/day"
    week, month = m["deploy_days_per_week"], m.get("deploy_days_per_month")
    if week is None:  # no tier: too short a window, or no deploy before its end
        return f"{counted(m['deploys'], 'deploy')} ({per_day})"
    if week >= 1 or month is None:
        return f"{week:g} deploy day{'' if week == 1 else 's'}/week ({per_day})"
    if days < 30:  # one 30-date block, of which only the window's dates can have deploys
        return f"deploys on {month:g} of the last {days} days"
    if days < 60:
        return f"deploys on {month:g} of the last 30 days"
    return f"deploys on {month:g} days in 30 (median of {days // 30} blocks; {counted(m['deploys'], 'deploy')} in {days} days)"


def value_text(key: str, m: dict, *, days: int = 30, p90: bool = True) -> str:
    """One metric's value in words: ``4 deploy days/week (1.37 deploys/day)``, ``7.3% (3 of 41)``,
    ``5h (p90 2d)`` (``p90=False``: the median alone)."""
    if key == "deployment_frequency":
        return frequency_text(m, days)
    if key in ("change_failure_rate", "deployment_rework_rate"):
        text = _pct(m["rate"])
        if m["rate"] is not None:
            text += f" ({m['failed' if key == 'change_failure_rate' else 'rework']} of {m['deploys']})"
        return text
    return _dist(m["median_seconds"], m.get("p90_seconds") if p90 else None)


def sample_text(key: str, m: dict) -> str:
    """One metric's sample size: ``41 deploys``, ``120 commits``, ``3 incidents``."""
    if key == "lead_time":
        return counted(m["samples"], "commit")
    if key in ("time_to_restore", "failed_deployment_recovery_time", "mtta"):
        return counted(m["incidents"], "incident")
    return counted(m["deploys"], "deploy")


def rows(report: dict) -> list[tuple[str, str, str, str, str | None]]:
    """(metric, value, tier, sample size, reason) for each line of the table: the five keys by
    factor, then time to restore over all incidents and time to acknowledge."""
    out = []
    days = report["scope"]["days"]
    for key, title in THROUGHPUT + INSTABILITY + (("time_to_restore", RESTORE_TITLE),):
        m = report[key]
        tier = NO_TIERS if key == "deployment_rework_rate" else TIER_MARK[m["tier"]]
        out.append((title, value_text(key, m, days=days), tier, sample_text(key, m), m["reason"]))
    mtta = report["mtta"]
    out.append(("Time to acknowledge", _dist(mtta["median_seconds"]), NO_TIERS, sample_text("mtta", mtta), None))
    return out


def render_report(report: dict) -> str:
    """The five keys as an aligned table (Throughput, Instability, then the secondary lines)."""
    table = rows(report)
    lines = [f"DORA five keys: {scope_title(report)}", BENCHMARK_NOTE[0].upper() + BENCHMARK_NOTE[1:] + ".", ""]
    w0 = max(len(r[0]) for r in [("metric",), *table])  # the headers count too: a short tier column still aligns
    w1 = max(len(r[1]) for r in [("", "value"), *table])
    w2 = max(len(r[2]) for r in [("", "", "tier"), *table])
    lines.append(f"{'metric':<{w0}}  {'value':<{w1}}  {'tier':<{w2}}  sample")
    starts = {0: "Throughput", len(THROUGHPUT): "Instability", len(THROUGHPUT) + len(INSTABILITY): "Also"}
    for i, (name, value, tier, n, _) in enumerate(table):
        if i in starts:
            lines.append(f"{starts[i]}:")
        lines.append(f"{name:<{w0}}  {value:<{w1}}  {tier:<{w2}}  {n}")
    notes = [f"- {name}: {reason}" for name, _, _, _, reason in table if reason]
    ttr = report["time_to_restore"]
    cfr = report["change_failure_rate"]
    extra = []
    if ttr["open_incidents"]:
        extra.append(f"{counted(ttr['open_incidents'], 'incident')} open, oldest for {format_duration(ttr['oldest_open_seconds'])}")
    if cfr["unlinked_incidents"]:
        extra.append(f"{counted(cfr['unlinked_incidents'], 'incident')} not linked to a deploy (not counted as change failures)")
    if cfr["not_change_incidents"]:
        extra.append(f"{counted(cfr['not_change_incidents'], 'incident')} not caused by a deploy")
    if report["lead_time"]["invalid_samples"]:
        extra.append(f"ignored: {counted(report['lead_time']['invalid_samples'], 'commit')} with a commit time after the deploy")
    if extra or notes:
        lines.append("")
        lines.extend(notes)
        lines.extend(f"- {e}" for e in extra)
    return "\n".join(lines)


def render_service_table(reports: list[dict]) -> str:
    """One line per service: the five keys' values and tiers side by side."""
    header = ("service", "lead time", "deployment frequency", "recovery", "change fail", "rework")
    body = []
    for r in reports:
        lt, df, fdrt = r["lead_time"], r["deployment_frequency"], r["failed_deployment_recovery_time"]
        cfr, rework = r["change_failure_rate"], r["deployment_rework_rate"]
        body.append(
            (
                r["scope"]["service"] or (f"team {r['scope']['team']}" if r["scope"].get("team") else "all"),
                f"{_dist(lt['median_seconds'])} {TIER_MARK[lt['tier']]}",
                f"{frequency_text(df, r['scope']['days'])} {TIER_MARK[df['tier']]}",
                f"{_dist(fdrt['median_seconds'])} {TIER_MARK[fdrt['tier']]}",
                f"{_pct(cfr['rate'])} {TIER_MARK[cfr['tier']]}",
                _pct(rework["rate"]),
            )
        )
    widths = [max(len(row[i]) for row in [header, *body]) for i in range(len(header))]
    out = ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(header)).rstrip()]
    for row in body:
        out.append("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip())
    return "\n".join(out)
