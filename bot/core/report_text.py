"""Plain-text rendering of a metrics report (CLI, demo, shell). Pure: dict in, str out."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from bot.core.timeutil import format_duration

TIER_MARK = {"elite": "elite", "high": "high", "medium": "medium", "low": "low", None: "-"}


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


def scope_title(report: dict) -> str:
    scope = report["scope"]
    who = scope["service"] or "all services"
    tz = local_zone(scope)
    return f"{who}, last {scope['days']} days to {window_end(scope)}" + (f" (dates in {tz})" if tz else "")


def rows(report: dict) -> list[tuple[str, str, str, str, str | None]]:
    """(metric, value, tier, sample size, reason) for each line of the table."""
    df = report["deployment_frequency"]
    lt = report["lead_time"]
    cfr = report["change_failure_rate"]
    ttr = report["time_to_restore"]
    fdrt = report["failed_deployment_recovery_time"]
    mtta = report["mtta"]
    df_value = f"{df['per_day']:.2f}/day"
    if df["deploy_days_per_week"] is not None:
        days = df["deploy_days_per_week"]
        df_value += f", {days:g} day{'' if days == 1 else 's'}/week"
    cfr_value = _pct(cfr["rate"])
    if cfr["rate"] is not None:
        cfr_value += f" ({cfr['failed']} of {cfr['deploys']})"
    return [
        ("Deployment frequency", df_value, TIER_MARK[df["tier"]], counted(df['deploys'], "deploy"), df["reason"]),
        ("Lead time for changes", _dist(lt["median_seconds"], lt["p90_seconds"]), TIER_MARK[lt["tier"]], counted(lt['samples'], "commit"), lt["reason"]),
        ("Change failure rate", cfr_value, TIER_MARK[cfr["tier"]], counted(cfr['deploys'], "deploy"), cfr["reason"]),
        ("Time to restore", _dist(ttr["median_seconds"], ttr["p90_seconds"]), TIER_MARK[ttr["tier"]], counted(ttr['incidents'], "incident"), ttr["reason"]),
        ("Failed deploy recovery", _dist(fdrt["median_seconds"]), TIER_MARK[fdrt["tier"]], counted(fdrt['incidents'], "incident"), None),
        ("Time to acknowledge", _dist(mtta["median_seconds"]), "-", counted(mtta['incidents'], "incident"), None),
    ]


def render_report(report: dict) -> str:
    """The four keys as an aligned table with a title line and footnotes."""
    table = rows(report)
    lines = [f"DORA four keys: {scope_title(report)}", ""]
    w0 = max(len(r[0]) for r in table)
    w1 = max(len(r[1]) for r in table)
    w2 = max(len(r[2]) for r in table)
    lines.append(f"{'metric':<{w0}}  {'value':<{w1}}  {'tier':<{w2}}  sample")
    for name, value, tier, n, _ in table:
        lines.append(f"{name:<{w0}}  {value:<{w1}}  {tier:<{w2}}  {n}")
    notes = [f"- {name}: {reason}" for name, _, _, _, reason in table if reason]
    ttr = report["time_to_restore"]
    cfr = report["change_failure_rate"]
    extra = []
    if ttr["open_incidents"]:
        extra.append(f"{counted(ttr['open_incidents'], 'incident')} open, oldest for {format_duration(ttr['oldest_open_seconds'])}")
    if cfr["unlinked_incidents"]:
        extra.append(f"{counted(cfr['unlinked_incidents'], 'incident')} not linked to a deploy (not counted as change failures)")
    if report["lead_time"]["invalid_samples"]:
        extra.append(f"ignored: {counted(report['lead_time']['invalid_samples'], 'commit')} with a commit time after the deploy")
    if extra or notes:
        lines.append("")
        lines.extend(notes)
        lines.extend(f"- {e}" for e in extra)
    return "\n".join(lines)


def render_service_table(reports: list[dict]) -> str:
    """One line per service: the four keys' values and tiers side by side."""
    header = ("service", "deploys/day", "lead time", "change fail", "restore")
    body = []
    for r in reports:
        df, lt, cfr, ttr = (r["deployment_frequency"], r["lead_time"], r["change_failure_rate"], r["time_to_restore"])
        body.append(
            (
                r["scope"]["service"] or "all",
                f"{df['per_day']:.2f} {TIER_MARK[df['tier']]}",
                f"{_dist(lt['median_seconds'])} {TIER_MARK[lt['tier']]}",
                f"{_pct(cfr['rate'])} {TIER_MARK[cfr['tier']]}",
                f"{_dist(ttr['median_seconds'])} {TIER_MARK[ttr['tier']]}",
            )
        )
    widths = [max(len(row[i]) for row in [header, *body]) for i in range(len(header))]
    out = ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(header)).rstrip()]
    for row in body:
        out.append("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip())
    return "\n".join(out)
