"""The pure rules of watches: conditions, the value each reads from a report, and the hysteresis."""

from __future__ import annotations

from datetime import datetime, timezone
from fractions import Fraction

import pytest

from bot.core.errors import ValidationError
from bot.core.metrics import Aggregates, Distribution, Window, build_report
from bot.core.watches import FIRING, OK, WatchState, parse_condition, read, step

END = datetime(2026, 11, 25, tzinfo=timezone.utc)


def report(days: int = 30, **agg) -> dict:
    return build_report(window=Window(end=END, days=days), service=None, environments=("production",), timezone_name="UTC",
                        agg=Aggregates(**agg))


@pytest.mark.parametrize(
    "text, canonical, limit",
    [
        ("cfr>15%", "cfr>15%", Fraction(15, 100)),
        ("CFR >= 12.50%", "cfr>=12.5%", Fraction(125, 1000)),
        ("rework>10%", "rework>10%", Fraction(1, 10)),
        ("lt>2d", "lt>2d", 2 * 86400),
        ("lt<1d12h", "lt<1d12h", 36 * 3600),
        ("ttr>4h", "ttr>4h", 4 * 3600),
        ("fdrt>4h", "ttr>4h", 4 * 3600),
        ("df<1/day", "df<1/day", 1),
        ("df<3/week", "df<3/week", Fraction(3, 7)),
        ("df<=0.5/d", "df<=0.5/day", Fraction(1, 2)),
    ],
)
def test_conditions_parse_to_one_spelling_and_an_exact_limit(text, canonical, limit):
    condition = parse_condition(text)
    assert condition.text == canonical
    assert condition.limit() == limit


@pytest.mark.parametrize(
    "text, field, says",
    [
        ("cfr15%", "condition", "no comparison"),
        ("mttr>1h", "metric", "`mttr` is not a metric"),
        ("cfr>1h", "threshold", "percentage"),
        ("cfr>-5%", "threshold", "not a number"),
        ("cfr>101%", "threshold", "at most 100%"),
        ("lt>15%", "threshold", "not a duration"),
        ("df<1", "threshold", "per day or per week"),
        ("df<1e3/day", "threshold", "not a number"),
        ("", "condition", "no comparison"),
        ("cfr>>15%", "threshold", "`>15` is not a number"),
    ],
)
def test_bad_conditions_name_the_part_that_is_wrong(text, field, says):
    with pytest.raises(ValidationError) as err:
        parse_condition(text)
    assert err.value.field == field and says in err.value.message


def test_rates_are_compared_exactly_not_rounded():
    # 2 of 13 is 15.38%: above 15.38% exactly? 2/13 = 0.153846..., so yes.
    r = report(deploys=13, failed=2, any_deploy_ever=True)
    reading = read(parse_condition("cfr>15.38%"), r)
    assert reading.value == Fraction(2, 13) and reading.text == "15.4% (2 of 13 deploys)"
    assert parse_condition("cfr>15.38%").holds(reading.value)
    assert not parse_condition("cfr>15.39%").holds(reading.value)
    # exactly on the line: > does not hold, >= does
    at = read(parse_condition("cfr>15%"), report(deploys=20, failed=3, any_deploy_ever=True)).value
    assert not parse_condition("cfr>15%").holds(at) and parse_condition("cfr>=15%").holds(at)


def test_values_read_from_the_report_and_n_a():
    empty = report()
    for text in ("cfr>15%", "rework>10%", "lt>2d", "ttr>4h", "df<1/day"):
        reading = read(parse_condition(text), empty)
        assert reading.value is None and reading.text == "n/a" and reading.reason, text
    full = report(deploys=15, failed=1, rework=3, any_deploy_ever=True, lead=Distribution(n=3, median=90000.0, p90=100000.0),
                  recovery=Distribution(n=2, median=5400.0), restore=Distribution(n=2, median=3600.0))
    assert read(parse_condition("lt>1d"), full).value == 90000
    assert read(parse_condition("ttr>1h"), full).value == 5400, "ttr is failed deployment recovery time"
    assert read(parse_condition("rework>10%"), full).value == Fraction(3, 15)
    assert read(parse_condition("df<1/day"), full).value == Fraction(15, 30)
    assert read(parse_condition("df<4/week"), full).text == "3.50/week (15 deploys in 30 days)"
    # Deployed before but not in this window: a real 0, not n/a.
    quiet = report(any_deploy_ever=True)
    assert read(parse_condition("df<1/day"), quiet).value == 0


def test_fires_after_two_holding_checks_and_clears_after_two_that_do_not_hold():
    s = WatchState()
    outcomes = []
    for holds in (True, False, True, True, True, None, False, True, False, None, False, False):
        result = step(s, holds)
        outcomes.append(result.transition)
        s = result.after
    assert outcomes == [None, None, None, "fired", None, None, None, None, None, None, "cleared", None]
    assert s == WatchState(OK, 0, 0)


def test_n_a_keeps_the_counts_between_two_holding_checks():
    first = step(WatchState(), True)
    assert first.after == WatchState(OK, 1, 0) and first.streak_started
    gap = step(first.after, None)
    assert gap.after == first.after and gap.transition is None
    assert step(gap.after, True).transition == "fired"
    firing = WatchState(FIRING, 0, 1)
    assert step(firing, None).after == firing
    assert step(firing, False).transition == "cleared"
