"""``dora-bot import``: idempotent, all-or-nothing by default, line-numbered errors, any size."""

from __future__ import annotations

import io
import random
from datetime import UTC, datetime, timedelta

from sqlmodel import select

from bot.services.importer import import_jsonl
from bot.store.db import session_scope
from bot.store.models import Deploy, Incident
from tests import reference
from tests.conftest import NOW, PRODUCTION
from tests.dbutil import jsonl, load, metrics, row_counts

END = datetime(2026, 11, 25, tzinfo=UTC)
H = 3600


def ts(value: datetime) -> str:
    return reference.iso(value)


def before(seconds: float) -> str:
    return ts(END - timedelta(seconds=seconds))


def deploy(id, at, *, service="checkout", **extra) -> dict:
    return {"type": "deploy", "id": id, "service": service, "environment": "production", "deployed_at": at, **extra}


def incident(id, started, *, service="checkout", **extra) -> dict:
    return {"type": "incident", "id": id, "service": service, "severity": "sev2", "started_at": started, **extra}


GOOD = [
    deploy("d1", before(30 * H), version="1.0", commits=[{"sha": "aaaa01", "committed_at": before(40 * H)}]),
    deploy("d2", before(20 * H), version="1.1", commits=[{"sha": "aaaa02", "committed_at": before(22 * H)}]),
    deploy("d3", before(19 * H), version="1.0", rollback_of="d2"),
    incident("i1", before(20 * H - 600), acknowledged_at=before(20 * H - 900), resolved_at=before(19 * H), caused_by="d2"),
    incident("i2", before(5 * H)),
    deploy("s1", before(10 * H), service="search", commits=["bbbb01"]),
]


def _deploys(engine) -> dict[str, Deploy]:
    with session_scope(engine, write=False) as s:
        return {d.external_id: d for d in s.exec(select(Deploy)).all()}


def _incidents(engine) -> dict[str, Incident]:
    with session_scope(engine, write=False) as s:
        return {i.external_id: i for i in s.exec(select(Incident)).all()}


# --- a good file ------------------------------------------------------------------------------

def test_a_good_file_is_stored_with_its_references_and_derived_values(engine):
    report = load(engine, GOOD, now=NOW)
    assert report.committed and report.errors == [] and report.invalid == 0
    assert (report.lines, report.deploys_added, report.incidents_added, report.already_stored) == (6, 4, 2, 0)

    deploys, incidents = _deploys(engine), _incidents(engine)
    assert deploys["d3"].rollback_of_id == deploys["d2"].id
    assert deploys["d2"].change_failure and not deploys["d1"].change_failure
    assert incidents["i1"].caused_by_id == deploys["d2"].id
    assert incidents["i1"].restore_seconds == 3600 - 600
    assert incidents["i1"].ack_seconds == 300
    assert incidents["i1"].recovery_seconds == 3600  # from the deploy, 10 min before impact
    assert incidents["i2"].resolved_at is None and incidents["i2"].environment == "production"

    m = metrics(engine, end=END, days=7)
    assert m["deployment_frequency"]["deploys"] == 4
    assert m["change_failure_rate"]["failed"] == 1
    assert m["lead_time"]["samples"] == 2  # bbbb01 has no commit time


def test_reimporting_the_same_file_adds_nothing_and_changes_no_number(engine):
    first = load(engine, GOOD, now=NOW)
    assert first.committed
    counts, before_metrics = row_counts(engine), metrics(engine, end=END, days=7)

    second = load(engine, GOOD, now=NOW + timedelta(hours=1))
    assert second.committed and second.errors == []
    assert (second.deploys_added, second.incidents_added, second.already_stored) == (0, 0, 6)
    assert row_counts(engine) == counts
    assert metrics(engine, end=END, days=7) == before_metrics


def test_the_same_id_twice_in_one_file_is_stored_once(engine):
    records = [deploy("d1", before(2 * H)), deploy("d1", before(H)), incident("i1", before(H)), incident("i1", before(H))]
    report = load(engine, records, now=NOW)
    assert report.committed
    assert (report.deploys_added, report.incidents_added, report.already_stored) == (1, 1, 2)
    assert row_counts(engine)["deploy"] == 1 and row_counts(engine)["incident"] == 1


def test_lines_may_refer_to_deploys_further_down_the_file(engine):
    records = [
        incident("i1", before(H), caused_by="d2"),  # before its cause
        deploy("d3", before(2 * H), rollback_of="d1"),  # before the deploy it reverts
        deploy("d2", before(3 * H)),
        deploy("d1", before(4 * H)),
    ]
    report = load(engine, records, now=NOW)
    assert report.committed and report.errors == []
    deploys, incidents = _deploys(engine), _incidents(engine)
    assert incidents["i1"].caused_by_id == deploys["d2"].id
    assert deploys["d3"].rollback_of_id == deploys["d1"].id
    assert deploys["d1"].change_failure and deploys["d2"].change_failure and not deploys["d3"].change_failure


def test_lines_may_refer_to_deploys_stored_by_an_earlier_import(engine):
    assert load(engine, [deploy("d1", before(4 * H)), deploy("d2", before(3 * H))], now=NOW).committed
    report = load(
        engine,
        [incident("i1", before(2 * H), resolved_at=before(H), caused_by="d1"), deploy("d3", before(H), rollback_of="d2")],
        now=NOW,
    )
    assert report.committed and report.errors == []
    deploys = _deploys(engine)
    assert deploys["d1"].change_failure and deploys["d2"].change_failure
    assert _incidents(engine)["i1"].recovery_seconds == 3 * H


def test_a_later_import_of_an_earlier_deploy_moves_the_lead_sample_to_it(engine):
    sha = {"sha": "cafe01", "committed_at": before(10 * H)}
    assert load(engine, [deploy("later", before(2 * H), commits=[sha])], now=NOW).committed
    assert metrics(engine, end=END, days=1)["lead_time"]["median_seconds"] == 8 * H
    assert load(engine, [deploy("earlier", before(6 * H), commits=[sha])], now=NOW).committed
    lt = metrics(engine, end=END, days=1)["lead_time"]
    assert lt["samples"] == 1 and lt["median_seconds"] == 4 * H


def test_blank_lines_are_ignored_but_still_numbered(engine):
    data = b"\n" + jsonl([GOOD[0]]) + b"   \n\n" + b'{"type": "deploy"}\n'
    report = import_jsonl(engine, io.BytesIO(data), production_environments=PRODUCTION, now=NOW)
    assert report.lines == 5
    assert [line for line, _ in report.errors] == [5]
    report = import_jsonl(
        engine, io.BytesIO(b"\n" + jsonl([GOOD[0]]) + b"\r\n \n"), production_environments=PRODUCTION, now=NOW
    )
    assert report.committed and report.errors == [] and report.deploys_added == 1


def test_an_empty_file_commits_nothing(engine):
    report = import_jsonl(engine, io.BytesIO(b""), production_environments=PRODUCTION, now=NOW)
    assert report.committed and report.lines == 0 and report.deploys_added == 0
    assert row_counts(engine)["deploy"] == 0


# --- bad files --------------------------------------------------------------------------------

BAD_LINES = [
    # (line, must appear in the message)
    ('{"type": "deploy", "id": "x1", "service": "checkout"', "JSON"),
    (deploy("x2", before(H), service=None), "service"),
    ({"type": "deploy", "id": "x3", "service": "checkout"}, "deployed_at"),
    (incident("x4", None), "started_at"),
    ({"type": "deploy", "service": "checkout", "deployed_at": before(H)}, "id"),
    (deploy("x6", 1732000000), "deployed_at"),
    (deploy("x7", before(H), commits="aaaa01"), "commits"),
    (deploy("x8", before(H), change_failure="yes"), "change_failure"),
    (deploy("x9", before(H), colour="blue"), "colour"),
    (incident("x10", before(2 * H), resolved_at=before(3 * H)), "resolved_at"),
    (incident("x11", before(2 * H), acknowledged_at=before(3 * H)), "acknowledged_at"),
    (deploy("x12", before(25 * H), rollback_of="d2"), "rollback_of"),  # d2 is later: points forward
    (incident("x13", before(H), service="search", caused_by="d1"), "caused_by"),  # d1 is checkout's
    (incident("x14", before(H), caused_by="no-such-deploy"), "caused_by"),
    (deploy("x15", before(H), rollback_of="no-such-deploy"), "rollback_of"),
    ({"type": "change", "id": "x16"}, "type"),
    ('["a", "list"]', "object"),
    (deploy("x18", ts(NOW + timedelta(minutes=6))), "deployed_at"),
    (incident("x19", before(H), severity="critical"), "severity"),
    (deploy("x20", before(H), status="ok"), "status"),
    (deploy("x21", before(H), environment="prod env"), "environment"),
    (deploy("x22", before(H), commits=[{"sha": "not-hex"}]), "sha"),
]


def test_a_bad_file_changes_nothing_and_reports_every_bad_line_by_number(engine):
    assert load(engine, GOOD, now=NOW).committed
    counts, before_metrics = row_counts(engine), metrics(engine, end=END, days=7)

    good_new = [deploy("n1", before(H)), incident("n2", before(H), caused_by="n1")]
    lines = [good_new[0]] + [line for line, _ in BAD_LINES] + [good_new[1]]
    report = load(engine, lines, now=NOW)

    assert not report.committed
    assert report.invalid == len(BAD_LINES)
    assert [n for n, _ in report.errors] == list(range(2, 2 + len(BAD_LINES)))
    for (n, message), (_, needle) in zip(report.errors, BAD_LINES, strict=True):
        assert needle.lower() in message.lower(), (n, message)
    assert report.deploys_added == 0 and report.incidents_added == 0
    assert row_counts(engine) == counts
    assert metrics(engine, end=END, days=7) == before_metrics


def test_a_failed_import_leaves_the_importer_usable(engine):
    for _ in range(2):
        assert not load(engine, [deploy("a", before(H), rollback_of="missing")], now=NOW).committed
    report = load(engine, GOOD, now=NOW)
    assert report.committed and report.deploys_added == 4


def test_skip_invalid_keeps_the_good_lines_and_reports_the_bad(engine):
    lines = [
        deploy("d1", before(4 * H)),
        deploy("d2", before(3 * H)),
        "not json",
        deploy("bad-rollback", before(5 * H), rollback_of="d2"),  # forward in time
        incident("bad-cause", before(H), service="search", caused_by="d1"),  # another service
        incident("ok", before(2 * H), resolved_at=before(H), caused_by="d2"),
        incident("bad-times", before(2 * H), resolved_at=before(3 * H)),
    ]
    report = load(engine, lines, now=NOW, skip_invalid=True)
    assert report.committed
    assert [n for n, _ in report.errors] == [3, 4, 5, 7]
    assert (report.deploys_added, report.incidents_added, report.invalid) == (2, 1, 4)

    deploys, incidents = _deploys(engine), _incidents(engine)
    assert set(deploys) == {"d1", "d2"} and set(incidents) == {"ok"}
    assert not deploys["d1"].change_failure  # neither the skipped incident nor rollback counts
    assert deploys["d2"].change_failure
    assert incidents["ok"].caused_by_id == deploys["d2"].id and incidents["ok"].recovery_seconds == 2 * H


def test_skip_invalid_reports_a_line_that_refers_to_a_skipped_deploy(engine):
    # "bad" is rejected (its rollback_of points forward in time), so it is not stored. The
    # incident naming it as the cause must not be stored as an incident with no cause (which
    # would silently count as an unlinked incident); its reference is dangling like any other.
    lines = [
        deploy("d1", before(4 * H)),
        deploy("later", before(3 * H)),
        deploy("bad", before(5 * H), rollback_of="later"),
        incident("i1", before(2 * H), resolved_at=before(H), caused_by="bad"),
        deploy("rb", before(H), rollback_of="bad"),
    ]
    report = load(engine, lines, now=NOW, skip_invalid=True)
    assert report.committed
    assert [n for n, _ in report.errors] == [3, 4, 5], report.errors
    assert set(_deploys(engine)) == {"d1", "later"}  # not "rb" with its rollback_of dropped
    assert _incidents(engine) == {}  # not "i1" without its cause
    assert (report.deploys_added, report.incidents_added) == (2, 0)


def test_skip_invalid_keeps_lead_samples_of_the_good_deploys_only(engine):
    lines = [
        deploy("good", before(2 * H), commits=[{"sha": "abab01", "committed_at": before(5 * H)}]),
        deploy("later", before(3 * H)),
        # rejected: a rollback of a later deploy; its commit must not leave a sample behind
        deploy("bad", before(4 * H), rollback_of="later", commits=[{"sha": "abab01", "committed_at": before(5 * H)}]),
    ]
    report = load(engine, lines, now=NOW, skip_invalid=True)
    assert report.committed and [n for n, _ in report.errors] == [3]
    lt = metrics(engine, end=END, days=1)["lead_time"]
    assert lt["samples"] == 1 and lt["median_seconds"] == 3 * H  # at "good", not at the skipped "bad"


# --- size ---------------------------------------------------------------------------------------

def test_a_twenty_thousand_line_file_imports_and_its_numbers_match(engine):
    rng = random.Random(20261125)
    services = [f"svc-{k}" for k in range(8)]
    records: list[dict] = []
    deploys: list[tuple[str, str, datetime]] = []
    shipped: list[dict] = []  # commits already in a deploy: redeploys, cherry-picks, shared libraries
    for n in range(16000):
        service = rng.choice(services)
        at = END - timedelta(seconds=rng.randrange(0, 60 * 86400))
        commits = [
            {"sha": f"{n:06x}{j}", "committed_at": ts(at - timedelta(seconds=rng.randrange(-600, 5 * 86400)))}
            for j in range(rng.randrange(0, 3))
        ]
        if shipped and rng.random() < 0.3:  # a sha shipped before (by any service) ships again
            commits.append(rng.choice(shipped))
        shipped.extend(commits[:1])
        record = deploy(
            f"run-{n}",
            ts(at),
            service=service,
            environment=rng.choice(["production", "prod", "staging"]),
            status=rng.choice(["success"] * 9 + ["failure"]),
            commits=commits,
        )
        earlier = [d for d in deploys[-50:] if d[1] == service and d[2] <= at]
        if earlier and rng.random() < 0.05:
            record["rollback_of"] = rng.choice(earlier)[0]
        records.append(record)
        deploys.append((record["id"], service, at))
    for n in range(4000):
        target = rng.choice(deploys)
        started = END - timedelta(seconds=rng.randrange(0, 60 * 86400))
        record = incident(f"pd-{n}", ts(started), service=target[1])
        if rng.random() < 0.9:
            record["acknowledged_at"] = ts(started + timedelta(seconds=rng.randrange(0, 3600)))
        if rng.random() < 0.9:
            record["resolved_at"] = ts(min(started + timedelta(seconds=rng.randrange(0, 3 * 86400)), NOW))
        if rng.random() < 0.5:
            record["caused_by"] = target[0]
        records.append(record)
    rng.shuffle(records)

    report = load(engine, records, now=NOW)
    assert report.errors == [] and report.committed
    assert (report.lines, report.deploys_added, report.incidents_added) == (20000, 16000, 4000)
    counts = row_counts(engine)
    assert counts["deploy"] == 16000 and counts["incident"] == 4000
    assert counts["service"] == 8
    assert counts["deploy_commit"] == sum(len(r.get("commits", [])) for r in records if r["type"] == "deploy")

    deploy_records = [r for r in records if r["type"] == "deploy"]
    incident_records = [r for r in records if r["type"] == "incident"]
    for service in (None, "svc-3"):
        got = metrics(engine, end=END, days=30, service=service, timezone_name="Europe/Berlin")
        want = reference.metrics(
            deploy_records, incident_records, service=service, days=30, end=END, timezone_name="Europe/Berlin"
        )
        assert reference.differences(got, want) == []

    again = load(engine, records[:500], now=NOW)
    assert again.committed and again.already_stored == 500 and again.deploys_added == 0


def test_a_file_with_very_many_bad_lines_counts_them_all_and_lists_the_first_thousand(engine):
    report = load(engine, ["{oops"] * 1200 + [deploy("d1", before(H))], now=NOW)
    assert not report.committed and report.invalid == 1200
    assert [n for n, _ in report.errors] == list(range(1, 1001))
    assert row_counts(engine)["deploy"] == 0


def test_progress_is_reported_in_bytes_read(engine):
    data = jsonl(GOOD)
    seen: list[int] = []
    report = import_jsonl(engine, io.BytesIO(data), production_environments=PRODUCTION, now=NOW, progress=seen.append)
    assert report.committed and sum(seen) == len(data) and len(seen) == len(GOOD)


def test_an_import_leaves_postgresql_with_planner_statistics(pg_engine):
    # Without them PostgreSQL plans the metrics for empty tables until autovacuum gets round to it.
    from sqlalchemy import text

    from tests.conftest import _truncate_all

    _truncate_all(pg_engine)
    assert load(pg_engine, GOOD, now=NOW).committed
    with pg_engine.connect() as conn:
        analyzed = conn.execute(text(
            "SELECT relname FROM pg_stat_user_tables WHERE schemaname = current_schema() AND last_analyze IS NOT NULL"
        )).scalars().all()
    assert {"deploy", "deploy_commit", "lead_sample", "incident", "incident_event"} <= set(analyzed)


def test_fixes_and_the_dora_2024_fields_are_imported_and_a_fix_of_a_skipped_incident_is_skipped(engine):
    lines = [
        deploy("d1", before(6 * H)),
        incident("i1", before(5 * H), mitigated_at=before(4 * H), resolved_at=before(3 * H), not_caused_by_change=True),
        incident("gone", before(5 * H), caused_by="no-such-deploy"),  # rejected
        deploy("fix", before(2 * H), fixes="i1"),
        deploy("fix-gone", before(2 * H), fixes="gone"),  # names a rejected incident: rejected too
        deploy("hot", before(H), rework=True),
        incident("x", before(H), status="cancelled"),
    ]
    report = load(engine, lines, now=NOW, skip_invalid=True)
    assert report.committed and [n for n, _ in report.errors] == [3, 5], report.errors
    deploys, incidents = _deploys(engine), _incidents(engine)
    assert set(deploys) == {"d1", "fix", "hot"} and set(incidents) == {"i1", "x"}
    assert deploys["fix"].fixes_id == incidents["i1"].id and deploys["fix"].rework and deploys["hot"].rework
    assert not deploys["d1"].rework
    i1 = incidents["i1"]
    assert i1.mitigated_at == END - timedelta(hours=4) and i1.recovered_at == i1.mitigated_at
    assert i1.restore_seconds == H and i1.not_caused_by_change and i1.state == "resolved"
    assert incidents["x"].state == "cancelled"
    # imported without mitigated_at: it stays null, and the recovery is the resolution
    load(engine, [incident("i2", before(5 * H), resolved_at=before(3 * H))], now=NOW)
    i2 = _incidents(engine)["i2"]
    assert i2.mitigated_at is None and i2.recovered_at == END - timedelta(hours=3) and i2.restore_seconds == 2 * H
