"""Threshold watches, the pure part: the conditions people write (``cfr>15%``), what a report's
value is for each of them, and the hysteresis that decides when a watch fires and clears.

A watch is checked once per clock hour. It **fires** when its condition has held at two
consecutive checks and **clears** when it has not held at two consecutive checks; any other check
changes only the counts. A check whose value is n/a (no data: ``docs/metrics.md``) neither holds
nor fails to hold: it leaves the counts as they are. Values are compared exactly (fractions of
the report's counts and seconds), never as rounded floats.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from fractions import Fraction

from bot.core.errors import ValidationError
from bot.core.timeutil import format_duration, parse_duration

OK, FIRING = "ok", "firing"
CHECKS_TO_FIRE = 2
CHECKS_TO_CLEAR = 2
OPERATORS = (">=", "<=", ">", "<")  # longest first, for parsing
OP_WORDS = {">": "above", ">=": "at or above", "<": "below", "<=": "at or below"}


@dataclass(frozen=True)
class Metric:
    """One watchable key: its short name, the report section it reads and how its unit is written."""

    key: str  # what people type: cfr, lt, ttr, df, rework
    section: str  # the report's JSON section
    title: str  # DORA's name for it
    unit: str  # "percent" | "duration" | "rate"
    example: str


METRICS = {
    m.key: m
    for m in (
        Metric("cfr", "change_failure_rate", "Change fail rate", "percent", "cfr>15%"),
        Metric("rework", "deployment_rework_rate", "Deployment rework rate", "percent", "rework>10%"),
        Metric("lt", "lead_time", "Change lead time", "duration", "lt>2d"),
        # ``ttr``: DORA's fifth key, failed deployment recovery time (from the causing deploy, or
        # the start of impact if earlier, to recovery), the one the five-keys card shows.
        Metric("ttr", "failed_deployment_recovery_time", "Failed deployment recovery time", "duration", "ttr>4h"),
        Metric("df", "deployment_frequency", "Deployment frequency", "rate", "df<1/day"),
    )
}
ALIASES = {"fdrt": "ttr", "dfr": "cfr", "lead": "lt"}
_RATE_PER = {"day": 1, "d": 1, "week": 7, "w": 7, "wk": 7}
_CONDITION_RE = re.compile(r"^([a-z]+)\s*(>=|<=|>|<)\s*(\S+)$")
_NUMBER_RE = re.compile(r"^\d+(?:\.\d+)?$")


@dataclass(frozen=True)
class Condition:
    """``<metric><op><threshold>``; ``threshold`` is the canonical text (``15%``, ``2d``, ``1/day``)."""

    metric: str
    op: str
    threshold: str

    @property
    def spec(self) -> Metric:
        return METRICS[self.metric]

    @property
    def text(self) -> str:
        return f"{self.metric}{self.op}{self.threshold}"

    def limit(self) -> Fraction:
        """The threshold in the report's base unit: a fraction for rates, seconds, deploys per day."""
        return _limit(self.spec, self.threshold)

    def holds(self, value: Fraction) -> bool:
        limit = self.limit()
        return {">": value > limit, ">=": value >= limit, "<": value < limit, "<=": value <= limit}[self.op]

    def described(self) -> str:
        """``above 15%``: the threshold in words."""
        return f"{OP_WORDS[self.op]} {self.threshold}"


def _number(text: str, what: str) -> Decimal:
    if not _NUMBER_RE.match(text):
        raise ValidationError(f"`{what}`: `{text}` is not a number", field="threshold")
    try:
        return Decimal(text)
    except InvalidOperation:  # pragma: no cover - the pattern only lets numbers through
        raise ValidationError(f"`{what}`: `{text}` is not a number", field="threshold") from None


def _canonical(spec: Metric, raw: str, whole: str) -> str:
    """Check the threshold text for the metric's unit and return it in one spelling."""
    hint = f"like `{spec.example}`"
    if spec.unit == "percent":
        if not raw.endswith("%"):
            raise ValidationError(f"`{whole}`: {spec.title.lower()} is a percentage, {hint}", field="threshold")
        value = _number(raw[:-1], whole)
        if value > 100:
            raise ValidationError(f"`{whole}`: a percentage is at most 100%", field="threshold")
        return f"{value.normalize():f}%"
    if spec.unit == "duration":
        try:
            parse_duration(raw)
        except ValidationError:
            raise ValidationError(f"`{whole}`: `{raw}` is not a duration; use m, h, d or w, {hint}", field="threshold") from None
        return raw.lower()
    count, _, per = raw.partition("/")
    if not per or per.lower() not in _RATE_PER:
        raise ValidationError(f"`{whole}`: deployment frequency is deploys per day or per week, {hint} or `df<3/week`", field="threshold")
    value = _number(count, whole)
    if value > 10000:
        raise ValidationError(f"`{whole}`: at most 10000 deploys per {per}", field="threshold")
    return f"{value.normalize():f}/{'day' if _RATE_PER[per.lower()] == 1 else 'week'}"


def _limit(spec: Metric, threshold: str) -> Fraction:
    if spec.unit == "percent":
        return Fraction(threshold[:-1]) / 100
    if spec.unit == "duration":
        return Fraction(int(parse_duration(threshold).total_seconds()))
    count, _, per = threshold.partition("/")
    return Fraction(count) / _RATE_PER[per]


def parse_condition(text: str) -> Condition:
    """``cfr>15%``, ``lt > 2d``, ``df<1/day``: the condition, or a ValidationError naming the part."""
    raw = (text or "").strip().lower()
    keys = ", ".join(m.example for m in METRICS.values())
    m = _CONDITION_RE.match(raw)
    if not m:
        if not any(op in raw for op in OPERATORS):
            raise ValidationError(f"`{text}` has no comparison; write the metric, > or <, and a value, like {keys}", field="condition")
        raise ValidationError(f"`{text}` is not a condition; write it like {keys}", field="condition")
    name, op, raw_value = m.groups()
    name = ALIASES.get(name, name)
    if name not in METRICS:
        raise ValidationError(f"`{m.group(1)}` is not a metric to watch; use one of {', '.join(METRICS)}", field="metric")
    spec = METRICS[name]
    return Condition(metric=name, op=op, threshold=_canonical(spec, raw_value, raw))


# --- a report's value -------------------------------------------------------------------------

@dataclass(frozen=True)
class Reading:
    """The value a check compares (None: n/a, with the report's reason) and how it reads."""

    value: Fraction | None
    text: str
    reason: str | None = None


def _pct(value: Fraction) -> str:
    return f"{float(value) * 100:.1f}%"


def _read_rate(m: dict, numerator: str) -> Reading:
    if not m["deploys"]:
        return Reading(None, "n/a", m["reason"])
    value = Fraction(m[numerator], m["deploys"])
    return Reading(value, f"{_pct(value)} ({m[numerator]} of {m['deploys']} deploys)")


def _read_duration(m: dict) -> Reading:
    if m["median_seconds"] is None:
        return Reading(None, "n/a", m["reason"])
    n = m.get("samples", m.get("incidents"))
    noun = "commit" if "samples" in m else "incident"
    value = Fraction(str(m["median_seconds"]))
    return Reading(value, f"{format_duration(m['median_seconds'])} (median of {n} {noun}{'' if n == 1 else 's'})")


def _read_frequency(m: dict, days: int, per: str) -> Reading:
    if m["deploys"] == 0 and m["tier"] is None and m["reason"] is not None:
        return Reading(None, "n/a", m["reason"])
    value = Fraction(m["deploys"], days)
    shown = value * 7 if per == "week" else value
    return Reading(value, f"{float(shown):.2f}/{per} ({m['deploys']} deploys in {days} days)")


def read(condition: Condition, report: dict) -> Reading:
    """The condition's metric in ``report`` (the metrics JSON), in the condition's own unit."""
    spec = condition.spec
    m = report[spec.section]
    if spec.key == "cfr":
        return _read_rate(m, "failed")
    if spec.key == "rework":
        return _read_rate(m, "rework")
    if spec.unit == "duration":
        return _read_duration(m)
    return _read_frequency(m, report["scope"]["days"], condition.threshold.partition("/")[2])


# --- hysteresis ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class WatchState:
    state: str = OK
    held: int = 0  # consecutive checks at which the condition held (while ok)
    cleared: int = 0  # consecutive checks at which it did not hold (while firing)


@dataclass(frozen=True)
class Step:
    after: WatchState
    transition: str | None  # "fired" | "cleared" | None
    streak_started: bool  # this check began a new run of holding (ok) or not holding (firing) checks


def step(before: WatchState, holds: bool | None) -> Step:
    """One check: ``holds`` is None for an n/a value (the counts stay as they are)."""
    if holds is None:
        return Step(before, None, False)
    if before.state == OK:
        if not holds:
            return Step(WatchState(OK, 0, 0), None, False)
        held = before.held + 1
        if held >= CHECKS_TO_FIRE:
            return Step(WatchState(FIRING, 0, 0), "fired", held == 1)
        return Step(WatchState(OK, held, 0), None, held == 1)
    if holds:
        return Step(WatchState(FIRING, 0, 0), None, False)
    cleared = before.cleared + 1
    if cleared >= CHECKS_TO_CLEAR:
        return Step(WatchState(OK, 0, 0), "cleared", cleared == 1)
    return Step(WatchState(FIRING, 0, cleared), None, cleared == 1)

