"""The digest message and its trend chart (a PNG uploaded with Slack's files upload v2 flow)."""

from __future__ import annotations

import io
from datetime import datetime

from bot.core.metrics import CHANGE_FAILURE_PERCENT_LIMITS, LEAD_TIME_LIMITS, RESTORE_LIMITS
from bot.core.timeutil import format_duration
from bot.services.digests import DigestData, describe
from bot.slack import blocks as bk


def digest_message(data: DigestData) -> tuple[str, list[dict]]:
    sub = data.subscription
    label = "Weekly" if sub.cadence == "weekly" else "Daily"
    text, blocks = bk.dora_card(data.current, data.previous, title=f"{label} DORA digest")
    span = "in these 7 days" if sub.cadence == "weekly" else "yesterday"
    plural = "" if data.incidents == 1 else "s"
    facts = [f"*{data.deploys}* production deploy{'' if data.deploys == 1 else 's'} and *{data.incidents}* incident{plural} {span}"]
    if data.longest:
        incident, service = data.longest
        facts.append(f"longest incident: INC-{incident.id} `{service}` {bk.esc(bk.clip(incident.title, 80))} ({format_duration(incident.restore_seconds)})")
    blocks.append(bk.md(" · ".join(facts)).to_dict())
    if data.open_incidents:
        lines = [f"• INC-{i.id} `{name}` {bk.esc(bk.clip(i.title, 80))} ({i.severity}, open {format_duration((data.period.scheduled - i.started_at).total_seconds())})" for i, name in data.open_incidents[:10]]
        more = f"\n…and {len(data.open_incidents) - 10} more" if len(data.open_incidents) > 10 else ""
        blocks.append(bk.md(f"*Open incidents ({len(data.open_incidents)})*\n" + "\n".join(lines) + more).to_dict())
    else:
        blocks.append(bk.md(":white_check_mark: No open incidents.").to_dict())
    if data.firing:  # the watches that are firing in this digest's scope
        lines = [f"• :rotating_light: {bk.esc(line)}" for line in data.firing[:10]]
        more = f"\n…and {len(data.firing) - 10} more (`/dora watch list`)" if len(data.firing) > 10 else ""
        blocks.append(bk.md(f"*Watches firing ({len(data.firing)})*\n" + "\n".join(lines) + more).to_dict())
    blocks.append(bk.context(f"Digest {describe(sub)} · period {data.period.key} · trend chart below").to_dict())
    return text, bk.dicts(blocks)


def trend_chart_png(data: DigestData) -> bytes:
    """Four small panels over the last weeks: deploys, change fail and rework rates, lead time, time to restore."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    weeks = [datetime.fromisoformat(r["scope"]["end"].replace("Z", "+00:00")) for r in data.trend]
    labels = [f"{w:%b %d}" for w in weeks]
    deploys = [r["deployment_frequency"]["deploys"] for r in data.trend]
    cfr = [None if r["change_failure_rate"]["rate"] is None else r["change_failure_rate"]["rate"] * 100 for r in data.trend]
    rework = [None if r["deployment_rework_rate"]["rate"] is None else r["deployment_rework_rate"]["rate"] * 100 for r in data.trend]
    lead = [None if r["lead_time"]["median_seconds"] is None else r["lead_time"]["median_seconds"] / 3600 for r in data.trend]
    ttr = [None if r["time_to_restore"]["median_seconds"] is None else r["time_to_restore"]["median_seconds"] / 3600 for r in data.trend]
    x = list(range(len(weeks)))

    def series(values):
        return [v if v is not None else float("nan") for v in values]

    fig, axes = plt.subplots(2, 2, figsize=(10, 6), dpi=100, sharex=True)
    title = data.subscription.service or "all services"
    fig.suptitle(f"DORA trend, {title}: weeks ending {labels[0]} to {labels[-1]}", fontsize=12)
    ax = axes[0][0]
    ax.bar(x, deploys, color="#457b9d")
    ax.set_title("Production deploys per week", fontsize=10)
    ax = axes[0][1]
    ax.plot(x, series(cfr), marker="o", color="#e63946", label="change fail rate")
    ax.plot(x, series(rework), marker="s", color="#6d597a", label="deployment rework rate")
    for limit, name in CHANGE_FAILURE_PERCENT_LIMITS:  # the change fail rate's tiers; rework has none
        ax.axhline(limit, color="#999999", linewidth=0.6, linestyle="--")
        ax.text(x[-1] + 0.2, limit, name, fontsize=7, va="center", color="#666666")
    ax.legend(fontsize=7, loc="upper left")
    ax.set_title("Change fail rate and rework rate (%)", fontsize=10)
    ax.set_ylim(0, max([16.0] + [v + 2 for v in cfr + rework if v is not None]))
    ax = axes[1][0]
    ax.plot(x, series(lead), marker="o", color="#2a9d8f")
    elite_lead = LEAD_TIME_LIMITS[0][0] / 3600
    ax.axhline(elite_lead, color="#999999", linewidth=0.6, linestyle="--")
    ax.text(x[-1] + 0.2, elite_lead, format_duration(LEAD_TIME_LIMITS[0][0]), fontsize=7, va="center", color="#666666")
    ax.set_title("Lead time for changes, median (hours)", fontsize=10)
    ax.set_ylim(bottom=0)
    ax = axes[1][1]
    ax.plot(x, series(ttr), marker="o", color="#f4a261")
    elite_restore = RESTORE_LIMITS[0][0] / 3600
    ax.axhline(elite_restore, color="#999999", linewidth=0.6, linestyle="--")
    ax.text(x[-1] + 0.2, elite_restore, format_duration(RESTORE_LIMITS[0][0]), fontsize=7, va="center", color="#666666")
    ax.set_title("Time to restore, median (hours)", fontsize=10)
    ax.set_ylim(bottom=0)
    for row in axes:
        for ax in row:
            ax.set_xticks(x)
            ax.set_xticklabels(labels, rotation=45, ha="right", fontsize=7)
            ax.grid(axis="y", alpha=0.3)
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()
