"""The digest message and its trend chart (a PNG uploaded with Slack's files upload v2 flow)."""

from __future__ import annotations

import io
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from bot.core.metrics import CHANGE_FAILURE_PERCENT_LIMITS, LEAD_TIME_LIMITS, RESTORE_LIMITS
from bot.core.report_text import scope_label
from bot.core.timeutil import format_duration
from bot.services.digests import DigestData, describe, span_words
from bot.slack import blocks as bk


def digest_message(data: DigestData, *, now: datetime | None = None) -> tuple[str, list[dict]]:
    """The digest; ``now`` is when it is sent (its words, like "yesterday", are true then)."""
    sub = data.subscription
    label = "Weekly" if sub.cadence == "weekly" else "Daily"
    text, blocks = bk.dora_card(data.current, data.previous, title=f"{label} DORA digest")
    span = span_words(sub, data.period, now=now or data.period.scheduled)
    plural = "" if data.incidents == 1 else "s"
    facts = [f"*{data.deploys}* production deploy{'' if data.deploys == 1 else 's'} and *{data.incidents}* incident{plural} {span}"]
    if data.longest:
        incident, service = data.longest
        facts.append(f"longest incident: INC-{incident.id} `{service}` {bk.esc(bk.clip(incident.title, 80))}"
                     f" ({format_duration(incident.restore_seconds)})")
    blocks.append(bk.md(" · ".join(facts)).to_dict())
    if data.open_incidents:
        lines = [
            f"• INC-{i.id} `{name}` {bk.esc(bk.clip(i.title, 80))}"
            f" ({i.severity}, open {format_duration((data.period.scheduled - i.started_at).total_seconds())})"
            for i, name in data.open_incidents[:10]
        ]
        more = f"\n…and {len(data.open_incidents) - 10} more" if len(data.open_incidents) > 10 else ""
        blocks.append(bk.md(f"*Open incidents ({len(data.open_incidents)})*\n" + "\n".join(lines) + more).to_dict())
    else:
        blocks.append(bk.md(":white_check_mark: No open incidents.").to_dict())
    if data.firing:  # the watches that are firing in this digest's scope
        lines = [f"• :rotating_light: {bk.esc(line)}" for line in data.firing[:10]]
        more = f"\n…and {len(data.firing) - 10} more (`/dora watch list`)" if len(data.firing) > 10 else ""
        blocks.append(bk.md(f"*Watches firing ({len(data.firing)})*\n" + "\n".join(lines) + more).to_dict())
    period = f"sent on request, covering up to {data.period.key} {sub.timezone}" if data.period.manual else f"period {data.period.key}"
    blocks.append(bk.context(f"Digest {describe(sub)} · {period} · trend chart below").to_dict())
    return text, bk.dicts(blocks)


CHART_DPI = 200  # 10 x 6 inches at 2x: 2000 x 1200 pixels, sharp on HiDPI screens
DURATION_TICKS = (60, 600, 3600, 6 * 3600, 86400, 7 * 86400, 30 * 86400, 90 * 86400)


def _weeks(data: DigestData) -> list[datetime]:
    """The first local day of each trend window: the Monday for a Monday digest."""
    out = []
    for r in data.trend:
        start = datetime.fromisoformat(r["scope"]["start"].replace("Z", "+00:00"))
        out.append(start.astimezone(ZoneInfo(r["scope"]["timezone"])))
    return out


def _tier_line(ax, value: float, label: str) -> None:
    """A tier's threshold, its label inside the plot at the right edge (never past it)."""
    ax.axhline(value, color="#999999", linewidth=0.6, linestyle="--")
    ax.text(0.99, value, label, transform=ax.get_yaxis_transform(), fontsize=7, ha="right", va="bottom", color="#555555")


def _duration_axis(ax, values: list[float | None], limits) -> None:
    """Durations on a log scale (an hour and three days both readable), ticks as durations."""
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

    ax.set_yscale("log")
    shown = [v for v in values if v is not None and v > 0] + [limit for limit, _ in limits]
    lo, hi = max(min(shown) / 2, 1), max(shown) * 2
    ax.set_ylim(lo, hi)
    ax.yaxis.set_major_locator(FixedLocator([t for t in DURATION_TICKS if lo <= t <= hi]))
    ax.yaxis.set_minor_locator(NullLocator())
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: format_duration(v)))
    for limit, name in limits:
        _tier_line(ax, limit, f"{name} under {format_duration(limit)}")


def trend_figure(data: DigestData):
    """Four panels over the trend's weeks: deploys, change fail and rework rates, lead time, time to
    restore. Returns the matplotlib figure (tests read its axes; ``trend_chart_png`` renders it)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    weeks = _weeks(data)
    labels = [f"{w:%b %d}" for w in weeks]
    deploys = [r["deployment_frequency"]["deploys"] for r in data.trend]
    cfr = [None if r["change_failure_rate"]["rate"] is None else r["change_failure_rate"]["rate"] * 100 for r in data.trend]
    rework = [None if r["deployment_rework_rate"]["rate"] is None else r["deployment_rework_rate"]["rate"] * 100 for r in data.trend]
    lead = [r["lead_time"]["median_seconds"] for r in data.trend]
    ttr = [r["time_to_restore"]["median_seconds"] for r in data.trend]
    x = list(range(len(weeks)))

    def series(values):  # a gap where a week has no value; a 0s duration sits on the axis floor
        return [float("nan") if v is None else v for v in values]

    fig = Figure(figsize=(10, 6), dpi=CHART_DPI)  # no pyplot: nothing global, safe in worker threads
    FigureCanvasAgg(fig)
    axes = fig.subplots(2, 2, sharex=True)
    title = scope_label(data.current["scope"])
    last_day = datetime.fromisoformat(data.trend[-1]["scope"]["end"].replace("Z", "+00:00")) - timedelta(microseconds=1)
    last_day = last_day.astimezone(weeks[-1].tzinfo)
    fig.suptitle(f"DORA trend, {title}: {len(weeks)} weeks, {weeks[0]:%a %b %d} to {last_day:%a %b %d %Y}", fontsize=12)
    ax = axes[0][0]
    ax.bar(x, deploys, color="#457b9d")
    ax.set_title("Production deploys per week", fontsize=10)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))  # a count: no 2.5 deploys
    ax = axes[0][1]
    ax.plot(x, series(cfr), marker="o", color="#e63946", label="change fail rate")
    ax.plot(x, series(rework), marker="s", color="#6d597a", label="deployment rework rate")
    ax.set_ylim(0, max([18.0] + [v + 3 for v in cfr + rework if v is not None]))
    for limit, name in CHANGE_FAILURE_PERCENT_LIMITS:  # the change fail rate's tiers; rework has none
        _tier_line(ax, limit, f"{name} up to {limit}%")
    ax.legend(fontsize=7, loc="best")  # where it hides the fewest points
    ax.set_title("Change fail rate and rework rate (%)", fontsize=10)
    ax = axes[1][0]
    ax.plot(x, series(lead), marker="o", color="#2a9d8f")
    _duration_axis(ax, lead, LEAD_TIME_LIMITS)
    ax.set_title("Change lead time, median (log scale)", fontsize=10)
    ax = axes[1][1]
    ax.plot(x, series(ttr), marker="o", color="#f4a261")
    _duration_axis(ax, ttr, RESTORE_LIMITS)
    ax.set_title("Time to restore, median (log scale)", fontsize=10)
    for row in axes:
        for ax in row:
            ax.set_xticks(x)
            ax.set_xticklabels(labels, rotation=45, ha="right", fontsize=7)
            ax.tick_params(axis="y", labelsize=7)
            ax.grid(axis="y", alpha=0.3)
    for ax in axes[1]:
        ax.set_xlabel("week starting", fontsize=8)
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    return fig


def trend_chart_png(data: DigestData) -> bytes:
    """The trend chart as a PNG (2000 x 1200)."""
    buf = io.BytesIO()
    trend_figure(data).savefig(buf, format="png")
    return buf.getvalue()
