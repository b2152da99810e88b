"""The metrics engine agrees with the pure-Python reference on random histories.

Each example generates a small history (a few services, production / prod / staging in mixed
case, failed deploys, commits shared between deploys, commits dated after their deploy, rollbacks,
explicit change failures, deploys that fix an incident or are marked as hotfixes, incidents in
every state with and without a cause, mitigated before or without being resolved, cancelled, or
answered "not caused by a change") and a few windows
(random length, end and time zone), loads the history into the database, and compares
``build_metrics`` with ``tests.reference.metrics`` for every service together and for one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.core.inputs import parse_deploy, parse_incident
from bot.services.deploys import record_deploy
from bot.services.incidents import (
    acknowledge_incident,
    cancel_incident,
    declare_incident,
    link_cause,
    mitigate_incident,
    resolve_incident,
)
from bot.store.db import session_scope
from tests import reference
from tests.conftest import NOW, PRODUCTION
from tests.dbutil import load, metrics, wipe

SERVICES = ["checkout", "Checkout", "search", "billing"]
ENVIRONMENTS = ["production", "Production", "prod", "PROD", "staging", "Staging"]
INCIDENT_ENVIRONMENTS = [None, "production", "Production", "prod", "staging"]
TIMEZONES = ["UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata", "Pacific/Auckland", "America/St_Johns"]
SEVERITIES = ["sev1", "sev2", "sev3", "sev4"]
# Durations around every tier boundary, and anything else up to 40 days.
DURATIONS = [0, 1, 59, 60, 300, 3599, 3600, 3601, 86399, 86400, 86401, 604799, 604800, 604801, 2591999, 2592000]
SPAN_DAYS = 200

EXAMPLES = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)


def iso(value: datetime) -> str:
    return reference.iso(value)


@dataclass
class Query:
    days: int
    end: datetime
    timezone_name: str
    service: str | None  # besides the org roll-up, which every query also checks


@dataclass
class History:
    deploys: list[dict]
    incidents: list[dict]
    queries: list[Query]
    line_order: list[int] = field(default_factory=list)  # import: the order of the lines in the file
    batch_size: int = 2000
    # services layer: incident k is declared after deploy ``after[k]`` is recorded (-1: first)
    after: list[int] = field(default_factory=list)
    step_by_step: list[bool] = field(default_factory=list)  # ack / resolve / link as separate calls


def _service_key(name: str) -> str:
    return name.lower()


@st.composite
def queries(draw) -> Query:
    days = draw(st.one_of(st.integers(1, 120), st.sampled_from([1, 6, 7, 8, 13, 14, 15, 29, 30, 31, 60, 90])))
    seconds_before_now = draw(
        st.one_of(
            st.integers(0, 150 * 86400),
            st.integers(0, 150).map(lambda d: d * 86400),  # whole UTC days: ends at midnight
        )
    )
    end = NOW - timedelta(seconds=seconds_before_now)
    service = draw(st.one_of(st.sampled_from(SERVICES), st.just("unknown-service")))
    return Query(days=days, end=end, timezone_name=draw(st.sampled_from(TIMEZONES)), service=service)


def _local_midnights(q: Query) -> list[datetime]:
    """The UTC instants of local midnight at the start of D and of D - 6 (a week block's edges)."""
    tz = ZoneInfo(q.timezone_name)
    last = (q.end - timedelta(microseconds=1)).astimezone(tz).date()
    return [
        datetime(d.year, d.month, d.day, tzinfo=tz).astimezone(UTC)
        for d in (last, last - timedelta(days=6))
    ]


def _seconds_back(days: int):
    """Seconds in [0, days), drawn as a day and a time of day so that days spread out."""
    return st.tuples(st.integers(0, days - 1), st.integers(0, 86399)).map(lambda p: p[0] * 86400 + p[1])


def _chance(draw, percent: int) -> bool:
    return percent > 0 and draw(st.integers(0, 99)) < percent


@st.composite
def histories(draw) -> History:
    qs = draw(st.lists(queries(), min_size=1, max_size=3))
    q0 = qs[0]
    # Instants: anywhere in the span, packed into the first window (or its last two weeks, so
    # that frequent deployers occur), or right at a window edge.
    edges = [t for q in qs for t in (q.end, q.end - timedelta(days=q.days), *_local_midnights(q))]
    anywhere = _seconds_back(SPAN_DAYS).map(lambda s: NOW - timedelta(seconds=s))
    packed = _seconds_back(q0.days).map(lambda s: q0.end - timedelta(seconds=s))
    recent_days = min(q0.days, draw(st.sampled_from([7, 14])))
    recent = _seconds_back(recent_days).map(lambda s: q0.end - timedelta(seconds=s))
    at_edge = st.tuples(st.sampled_from(edges), st.sampled_from([-3600, -1, 0, 0, 0, 1, 3600])).map(
        lambda p: p[0] + timedelta(seconds=p[1])
    )
    if draw(st.booleans()):
        instants = st.one_of(anywhere, packed, at_edge)
    else:
        instants = st.one_of(recent, recent, recent, at_edge)
    instants = instants.map(lambda t: min(t, NOW))
    durations = st.one_of(st.sampled_from(DURATIONS), st.integers(0, 40 * 86400))
    # How failure-prone this history is (percent chances per deploy / incident).
    marked_pct = draw(st.sampled_from([0, 3, 15]))
    rollback_pct = draw(st.sampled_from([0, 5, 25]))
    cause_pct = draw(st.sampled_from([0, 30, 70]))
    mitigate_pct = draw(st.sampled_from([0, 50, 90]))
    cancel_pct = draw(st.sampled_from([0, 10, 30]))
    not_change_pct = draw(st.sampled_from([0, 30]))
    fix_pct = draw(st.sampled_from([0, 20, 50]))
    hotfix_pct = draw(st.sampled_from([0, 10]))

    # Commits: a small pool, so the same sha turns up in several deploys (and services); a sha
    # keeps one commit time wherever it appears, and some have none. Deploys also bring fresh
    # commits made shortly before (or, now and then, after) them, which join the pool.
    pool = [
        (f"{i:02x}c0ffee{i:02x}", draw(st.one_of(st.none(), instants, instants.map(lambda t: t - timedelta(days=3)))))
        for i in range(draw(st.integers(1, 8)))
    ]

    deploys: list[dict] = []
    times: list[datetime] = []
    for i in range(draw(st.integers(0, 30))):
        service = draw(st.sampled_from(SERVICES))
        at = draw(instants)
        shas = draw(st.lists(st.integers(0, len(pool) - 1), max_size=2, unique=True))
        chosen = [pool[k] for k in shas]
        for _ in range(draw(st.integers(0, 2))):
            lead = draw(st.one_of(durations, st.sampled_from([-1, -3600])))
            fresh = (f"{len(pool):04x}beef", min(at - timedelta(seconds=lead), NOW))
            pool.append(fresh)
            chosen.append(fresh)
        commits = [{"sha": sha, "committed_at": None if t is None else iso(t)} for sha, t in chosen]
        earlier = [
            j for j, d in enumerate(deploys) if _service_key(d["service"]) == _service_key(service) and times[j] <= at
        ]
        rollback_of = None
        if earlier and _chance(draw, rollback_pct):
            rollback_of = deploys[draw(st.sampled_from(earlier))]["id"]
        record = {
            "type": "deploy",
            "id": f"dep-{i}",
            "service": service,
            "environment": draw(st.sampled_from(ENVIRONMENTS)),
            "version": f"v{i}",
            "deployed_at": iso(at),
            "status": draw(st.sampled_from(["success", "success", "success", "failure"])),
            "commits": commits,
            "rollback_of": rollback_of,
            "change_failure": True if _chance(draw, marked_pct) else draw(st.sampled_from([False, None])),
        }
        if _chance(draw, hotfix_pct):
            record["rework"] = True
        deploys.append(record)
        times.append(at)

    incidents: list[dict] = []
    after: list[int] = []
    step_by_step: list[bool] = []
    for k in range(draw(st.integers(0, 12))):
        service = draw(st.sampled_from(SERVICES))
        started = draw(instants)

        def later(start: datetime) -> str | None:
            if draw(st.booleans()):
                return None
            t = start + timedelta(seconds=draw(durations))
            return iso(t) if t <= NOW else None

        resolved = later(started)
        if not _chance(draw, mitigate_pct):
            mitigated = None
        elif resolved is None:
            mitigated = later(started)
        else:  # between the start and the resolution, either end included
            span = (reference.instant(resolved) - started).total_seconds()
            mitigated = iso(started + timedelta(seconds=draw(st.sampled_from([0, span, span / 2, draw(st.floats(0, span))]))))
        record = {
            "type": "incident",
            "id": f"inc-{k}",
            "service": service,
            "severity": draw(st.sampled_from(SEVERITIES)),
            "title": f"incident {k}",
            "started_at": iso(started),
            "acknowledged_at": later(started),
            "resolved_at": resolved,
            "mitigated_at": mitigated,
        }
        if _chance(draw, cancel_pct):
            record["status"] = "cancelled"
        env = draw(st.sampled_from(INCIDENT_ENVIRONMENTS))
        if env is not None:
            record["environment"] = env
        same = [j for j, d in enumerate(deploys) if _service_key(d["service"]) == _service_key(service)]
        cause = draw(st.sampled_from(same)) if same and _chance(draw, cause_pct) else None
        record["caused_by"] = None if cause is None else deploys[cause]["id"]
        if cause is None and _chance(draw, not_change_pct):
            record["not_caused_by_change"] = True
        incidents.append(record)
        after.append(draw(st.integers(-1 if cause is None else cause, len(deploys) - 1)))
        step_by_step.append(draw(st.booleans()))

    # Fixes: a deploy names an incident that started before it (and, for the services layer, was
    # declared before it was recorded). Rollbacks may name one too (counted once as rework).
    for i, d in enumerate(deploys):
        fixable = [
            k for k, inc in enumerate(incidents) if after[k] < i and reference.instant(inc["started_at"]) <= times[i]
        ]
        if fixable and _chance(draw, fix_pct):
            d["fixes"] = incidents[draw(st.sampled_from(fixable))]["id"]

    n_lines = len(deploys) + len(incidents)
    return History(
        deploys=deploys,
        incidents=incidents,
        queries=qs,
        line_order=draw(st.permutations(list(range(n_lines)))),
        batch_size=draw(st.sampled_from([1, 3, 2000])),
        after=after,
        step_by_step=step_by_step,
    )


def assert_matches_reference(engine, history: History) -> None:
    for q in history.queries:
        for service in (None, q.service):
            got = metrics(engine, service=service, days=q.days, end=q.end, timezone_name=q.timezone_name)
            want = reference.metrics(
                history.deploys,
                history.incidents,
                service=service,
                days=q.days,
                end=q.end,
                timezone_name=q.timezone_name,
                production_environments=PRODUCTION,
            )
            problems = reference.differences(got, want)
            assert not problems, f"{service or 'all services'}, {q}:\n  " + "\n  ".join(problems)


@EXAMPLES
@given(history=histories())
def test_imported_history_gives_the_reference_metrics(engine, history):
    wipe(engine)
    lines = history.deploys + history.incidents
    report = load(engine, [lines[i] for i in history.line_order], now=NOW, batch_size=history.batch_size)
    assert report.errors == [] and report.committed
    assert report.deploys_added == len(history.deploys)
    assert report.incidents_added == len(history.incidents)
    assert_matches_reference(engine, history)


def _record(engine, deploy: dict) -> None:
    with session_scope(engine) as s:
        outcome = record_deploy(s, data=parse_deploy(deploy, now=NOW), production_environments=PRODUCTION, now=NOW)
        assert outcome.created


def _declare(engine, incident: dict, step_by_step: bool) -> None:
    if not step_by_step:
        with session_scope(engine) as s:
            declare_incident(s, data=parse_incident(incident, now=NOW), now=NOW, source="api")
        return
    # Declared open, then acknowledged, mitigated, cancelled, linked and resolved by separate calls
    # (as from Slack).
    later = ("acknowledged_at", "resolved_at", "caused_by", "mitigated_at", "status")
    opened = {k: v for k, v in incident.items() if k not in later}
    ref = incident["id"]
    with session_scope(engine) as s:
        declare_incident(s, data=parse_incident(opened, now=NOW), now=NOW, source="api")
    if incident["acknowledged_at"]:
        with session_scope(engine) as s:
            at = reference.instant(incident["acknowledged_at"])
            assert acknowledge_incident(s, ref=ref, now=NOW, actor="U1", at=at, external_first=True).changed
    if incident["mitigated_at"]:
        with session_scope(engine) as s:
            at = reference.instant(incident["mitigated_at"])
            assert mitigate_incident(s, ref=ref, now=NOW, actor="U1", at=at, external_first=True).changed
    if incident.get("status") == "cancelled":
        # A cancelled incident is never resolved afterwards; its cause may still be named.
        with session_scope(engine) as s:
            assert cancel_incident(s, ref=ref, reason="false alarm", now=NOW, actor="U1", external_first=True).changed
    elif incident["resolved_at"]:
        with session_scope(engine) as s:
            at = reference.instant(incident["resolved_at"])
            assert resolve_incident(s, ref=ref, now=NOW, actor="U1", at=at, external_first=True).changed
    if incident["caused_by"]:
        with session_scope(engine) as s:
            link_cause(s, ref=ref, deploy=incident["caused_by"], now=NOW, actor="U1", external_first=True)


@EXAMPLES
@given(history=histories())
def test_history_recorded_through_the_services_gives_the_reference_metrics(engine, history):
    wipe(engine)
    pending = sorted(range(len(history.incidents)), key=lambda k: history.after[k])
    for k in [k for k in pending if history.after[k] < 0]:
        _declare(engine, history.incidents[k], history.step_by_step[k])
    for i, deploy in enumerate(history.deploys):
        _record(engine, deploy)
        for k in [k for k in pending if history.after[k] == i]:
            _declare(engine, history.incidents[k], history.step_by_step[k])
    assert_matches_reference(engine, history)
