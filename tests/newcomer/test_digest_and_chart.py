"""Digests say which days they cover (and "yesterday" only for yesterday); one sent now covers up to
now; the trend chart reads at a glance: tiers inside the plot, durations on a log scale, whole
numbers for counts, weeks by their Monday, rendered at 2x."""

from __future__ import annotations

import re
import struct
from datetime import datetime, timedelta, timezone

import pytest

from bot.services import digests
from bot.slack.digest import digest_message, trend_chart_png, trend_figure
from bot.store.db import session_scope
from tests.dbutil import load
from tests.newcomer.helpers import shell

UTC = timezone.utc
NOW = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)  # a Wednesday


def history(now: datetime) -> list[dict]:
    """Twelve weeks of deploys with lead times from an hour to days, and incidents from 10 minutes to 3 days."""
    records = []
    for week in range(12):
        for i in range(week % 4 + 1):
            at = now - timedelta(days=7 * week + i + 1, hours=3)
            records.append({"type": "deploy", "id": f"d{week}-{i}", "service": "checkout", "deployed_at": at.isoformat(),
                            "commits": [{"sha": f"{week:02x}{i:02x}abcd", "committed_at": (at - timedelta(hours=1 + 20 * i)).isoformat()}]})
        if week % 3 == 0:
            start = now - timedelta(days=7 * week + 2)
            records.append({"type": "incident", "id": f"i{week}", "service": "checkout", "started_at": start.isoformat(),
                            "resolved_at": (start + timedelta(minutes=10 if week == 0 else 60 * 24 * week // 3)).isoformat(),
                            "caused_by": f"d{week}-0"})
    return records


@pytest.fixture
def weekly(engine):
    load(engine, history(NOW), now=NOW)
    with session_scope(engine) as s:
        sub = digests.add_subscription(s, channel="C1", now=NOW - timedelta(days=100))
        data = digests.digest_data(s, sub, digests.current_period(sub, NOW), production_environments=("production",))
    return data


def test_a_daily_digest_says_yesterday_only_for_yesterday():
    daily = digests.DigestSubscription(id=1, channel="C1", cadence="daily", weekday=0, time_of_day="07:30", timezone="UTC", created_at=NOW)
    period = digests.current_period(daily, NOW)  # 2026-11-25 07:30: the counts are of Tue 24 Nov
    assert digests.span_words(daily, period, now=NOW) == "yesterday"
    assert digests.span_words(daily, period, now=NOW + timedelta(days=1)) == "on Tue 24 Nov"
    weekly = digests.DigestSubscription(id=2, channel="C1", cadence="weekly", weekday=0, time_of_day="09:00", timezone="UTC",
                                        created_at=NOW)
    assert digests.span_words(weekly, digests.current_period(weekly, NOW), now=NOW) == "from Mon 16 Nov to Sun 22 Nov"
    assert digests.span_words(weekly, digests.period_until(weekly, NOW), now=NOW) == "in the last 7 days"


def test_a_digest_sent_now_covers_up_to_now_and_lists_what_is_open_now(tmp_path):
    out = shell(tmp_path, "\n".join([
        "/deploy checkout 1.2.3",
        "/incident declare sev2 checkout Checkout 5xx",
        "/dora digest add #shell daily",
        "/dora digest send 1",
        "",
    ]))
    assert "the last 24 hours up to now, and the incidents open now" in out
    digest = out[out.index("DAILY DORA DIGEST"):]
    assert "1 production deploy and 1 incident in the last 24 hours" in digest
    assert "Open incidents (1)" in digest and "INC-1 `checkout` Checkout 5xx" in digest
    assert "No open incidents" not in digest and "yesterday" not in digest
    assert re.search(r"sent on request, covering up to \d{4}-\d\d-\d\d \d\d:\d\d UTC", digest)


def test_the_digest_message_names_its_days(weekly):
    _, blocks = digest_message(weekly, now=NOW)
    text = str(blocks)
    assert "from Mon 16 Nov to Sun 22 Nov" in text and "period 2026-11-23" in text


def test_the_trend_chart_axes(weekly):
    fig = trend_figure(weekly)
    (deploys, rates), (lead, restore) = fig.axes[0:2], fig.axes[2:4]
    # durations on a log scale, ticks named as durations
    assert lead.get_yscale() == "log" and restore.get_yscale() == "log"
    assert deploys.get_yscale() == "linear" and rates.get_yscale() == "linear"
    fig.canvas.draw()
    restore_ticks = [t.get_text() for t in restore.get_yticklabels()]
    assert "1h" in restore_ticks and "1d" in restore_ticks and all(re.fullmatch(r"\d+[smhd]", t) for t in restore_ticks)
    # counts have whole-number ticks only
    assert all(float(t).is_integer() for t in deploys.get_yticks())
    # weeks are labelled by their first day: the Monday of a Monday digest
    labels = [t.get_text() for t in restore.get_xticklabels()]
    mondays = [(datetime(2026, 11, 16, tzinfo=UTC) - timedelta(days=7 * w)).strftime("%b %d") for w in range(11, -1, -1)]
    assert labels == mondays
    assert "Mon Aug 31 to Sun Nov 22 2026" in fig._suptitle.get_text()
    # every tier label sits inside its plot
    renderer = fig.canvas.get_renderer()
    for ax in (rates, lead, restore):
        names = [t.get_text() for t in ax.texts]
        assert any(n.startswith("elite") for n in names), names
        box = ax.get_window_extent(renderer)
        for label in ax.texts:
            inner = label.get_window_extent(renderer)
            assert box.x0 <= inner.x0 and inner.x1 <= box.x1, label.get_text()
    assert {t.get_text() for t in restore.texts} == {"elite under 1h", "high under 1d", "medium under 7d"}


def test_the_chart_is_rendered_at_twice_the_size(weekly):
    png = trend_chart_png(weekly)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", png[16:24])
    assert (width, height) == (2000, 1200)
