"""One hand-computed history per edge case of ``docs/metrics.md``.

Every expected number below is worked out in the comment next to it from the definitions, not
read back from the engine. Histories are loaded with the importer; each test runs on SQLite and,
when ``TEST_DATABASE_URL`` is set, on PostgreSQL.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from bot.core.errors import ValidationError
from tests.conftest import NOW
from tests.dbutil import load, metrics

END = datetime(2026, 11, 25, tzinfo=UTC)  # a Wednesday, midnight UTC; NOW is noon that day
H = 3600
D = 86400

SECTION_KEYS = {
    "deployment_frequency": {"deploys", "per_day", "deploy_days_per_week", "deploy_days_per_month", "tier", "reason"},
    "lead_time": {"median_seconds", "p90_seconds", "samples", "invalid_samples", "tier", "reason"},
    "change_failure_rate": {"failed", "deploys", "rate", "unlinked_incidents", "not_change_incidents", "tier", "reason"},
    "deployment_rework_rate": {"rework", "deploys", "rate", "tier", "reason"},
    "time_to_restore": {
        "median_seconds", "p90_seconds", "incidents", "open_incidents", "oldest_open_seconds", "tier", "reason",
    },
    "failed_deployment_recovery_time": {"median_seconds", "incidents", "tier", "reason"},
    "mtta": {"median_seconds", "incidents"},
}
COUNTS = {
    "deployment_frequency": ["deploys"],
    "lead_time": ["samples", "invalid_samples"],
    "change_failure_rate": ["failed", "deploys", "unlinked_incidents", "not_change_incidents"],
    "deployment_rework_rate": ["rework", "deploys"],
    "time_to_restore": ["incidents", "open_incidents"],
    "failed_deployment_recovery_time": ["incidents"],
    "mtta": ["incidents"],
}


def ts(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S") + (
        f".{value.microsecond:06d}".rstrip("0") if value.microsecond else ""
    ) + "Z"


def before(seconds: float, end: datetime = END) -> str:
    return ts(end - timedelta(seconds=seconds))


def deploy(id, at, *, service="checkout", environment="production", status="success", commits=(), **extra) -> dict:
    """A deploy line; ``commits`` are (sha, committed_at) pairs."""
    return {
        "type": "deploy",
        "id": id,
        "service": service,
        "environment": environment,
        "version": f"v-{id}",
        "deployed_at": at,
        "status": status,
        "commits": [{"sha": sha, "committed_at": c} for sha, c in commits],
        **extra,
    }


def incident(id, started, *, service="checkout", environment=None, **extra) -> dict:
    record = {"type": "incident", "id": id, "service": service, "severity": "sev2", "started_at": started, **extra}
    if environment is not None:
        record["environment"] = environment
    return record


def report(engine, records, *, days=30, end=END, production_environments=("production", "prod"), **kwargs) -> dict:
    result = load(engine, records, now=NOW, production_environments=production_environments)
    assert result.errors == [] and result.committed
    return metrics(engine, days=days, end=end, production_environments=production_environments, **kwargs)


def assert_na(section: dict) -> None:
    """n/a: no tier, and a reason in words."""
    assert section["tier"] is None
    assert isinstance(section["reason"], str) and section["reason"].strip()


# --- shape and empty data --------------------------------------------------------------------

def test_empty_database_is_na_with_reasons_zero_counts_and_every_key(engine):
    m = metrics(engine, end=END, days=30)

    assert set(m) == {"scope", "benchmark", *SECTION_KEYS}
    for section, keys in SECTION_KEYS.items():
        assert set(m[section]) == keys, section
        for key in COUNTS[section]:
            assert m[section][key] == 0 and type(m[section][key]) is int, (section, key)
    assert m["scope"] == {
        "service": None,
        "team": None,
        "environments": ["production", "prod"],
        "start": "2026-10-26T00:00:00Z",
        "end": "2026-11-25T00:00:00Z",
        "days": 30,
        "timezone": "UTC",
    }
    assert m["benchmark"] == "dora-2023"
    for section in ("deployment_frequency", "lead_time", "change_failure_rate", "time_to_restore",
                    "failed_deployment_recovery_time"):
        assert_na(m[section])
    assert m["deployment_frequency"]["per_day"] == 0.0  # always deploys / N
    assert m["deployment_frequency"]["deploy_days_per_week"] is None
    assert m["lead_time"]["median_seconds"] is None and m["lead_time"]["p90_seconds"] is None
    assert m["change_failure_rate"]["rate"] is None
    assert m["time_to_restore"]["median_seconds"] is None and m["time_to_restore"]["p90_seconds"] is None
    assert m["time_to_restore"]["oldest_open_seconds"] is None
    assert m["failed_deployment_recovery_time"]["median_seconds"] is None
    assert m["mtta"]["median_seconds"] is None
    json.dumps(m)  # serializable as it is


def test_unknown_service_is_na_everywhere_even_when_others_have_data(engine):
    records = [
        deploy("d1", before(2 * H), commits=[("aaaa1", before(3 * H))]),
        incident("i1", before(5 * H), resolved_at=before(4 * H), acknowledged_at=before(4 * H)),
        incident("i2", before(1 * H)),
    ]
    m = report(engine, records, service="No-Such-Service")

    assert m["scope"]["service"] == "No-Such-Service"  # as asked: no stored name to show
    for section in ("deployment_frequency", "lead_time", "change_failure_rate", "time_to_restore",
                    "failed_deployment_recovery_time"):
        assert_na(m[section])
        for key in COUNTS[section]:
            assert m[section][key] == 0
    assert m["deployment_frequency"]["deploy_days_per_week"] is None
    assert m["time_to_restore"]["oldest_open_seconds"] is None
    assert m["mtta"] == {"median_seconds": None, "incidents": 0}


def test_service_names_are_case_insensitive(engine):
    records = [deploy("d1", before(2 * H), service="Checkout"), deploy("d2", before(H), service="checkout")]
    m = report(engine, records, service="CHECKOUT")
    assert m["scope"]["service"] == "Checkout"  # one service, shown as it was first named
    assert m["deployment_frequency"]["deploys"] == 2


# --- lead time --------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("lead", "tier"),
    [
        (0, "elite"),
        (D - 1, "elite"),
        (D, "high"),  # exactly one day is not "under a day"
        (7 * D - 1, "high"),
        (7 * D, "medium"),
        (30 * D - 1, "medium"),
        (30 * D, "low"),
    ],
)
def test_lead_time_tier_boundaries(engine, lead, tier):
    deployed = END - timedelta(hours=1)
    records = [deploy("d1", ts(deployed), commits=[("abcd1", ts(deployed - timedelta(seconds=lead)))])]
    lt = report(engine, records)["lead_time"]
    assert lt["median_seconds"] == lead and lt["p90_seconds"] == lead
    assert lt["samples"] == 1 and lt["tier"] == tier and lt["reason"] is None


def test_lead_time_even_count_median_is_the_mean_of_the_middle_two_and_p90_interpolates(engine):
    deployed = END - timedelta(hours=1)
    leads = [1000, 100, 400, 200]
    records = [
        deploy(f"d{i}", ts(deployed), commits=[(f"abc{i}0", ts(deployed - timedelta(seconds=lead)))])
        for i, lead in enumerate(leads)
    ]
    lt = report(engine, records)["lead_time"]
    # sorted 100, 200, 400, 1000: median (200 + 400) / 2; p90 at rank 0.9 * 3 = 2.7:
    # 400 + 0.7 * (1000 - 400) = 820
    assert lt["samples"] == 4
    assert lt["median_seconds"] == 300.0
    assert lt["p90_seconds"] == pytest.approx(820.0)
    assert lt["tier"] == "elite"


def test_a_sha_counts_once_at_its_first_qualifying_deploy(engine):
    sha, committed = "c0ffee1", before(10 * H)
    records = [
        deploy("stg", before(8 * H), environment="staging", commits=[(sha, committed)]),  # not production
        deploy("bad", before(6 * H), status="failure", commits=[(sha, committed)]),  # did not succeed
        deploy("first", before(4 * H), commits=[(sha, committed)]),  # the sample: 10h - 4h = 6h
        deploy("again", before(2 * H), commits=[(sha, committed)]),  # same sha again: no sample
    ]
    lt = report(engine, records)["lead_time"]
    assert lt["samples"] == 1
    assert lt["median_seconds"] == 6 * H and lt["p90_seconds"] == 6 * H
    assert lt["invalid_samples"] == 0


def test_a_window_holding_only_the_redeploy_of_a_sha_has_no_sample(engine):
    sha = "c0ffee2"
    records = [
        deploy("first", before(3 * D), commits=[(sha, before(3 * D + H))]),
        deploy("again", before(H), commits=[(sha, before(3 * D + H))]),
    ]
    lt = report(engine, records, days=1)["lead_time"]  # [END - 1d, END) holds only "again"
    assert lt["samples"] == 0 and lt["median_seconds"] is None
    assert_na(lt)
    lt = report(engine, [], days=7)["lead_time"]  # both deploys: one sample of 1h, at "first"
    assert lt["samples"] == 1 and lt["median_seconds"] == H


def test_the_same_sha_in_two_services_gives_one_sample_per_service(engine):
    sha, committed = "c0ffee3", before(6 * H)
    records = [
        deploy("a", before(5 * H), service="checkout", commits=[(sha, committed)]),  # 1h
        deploy("b", before(3 * H), service="search", commits=[(sha, committed)]),  # 3h
    ]
    lt = report(engine, records)["lead_time"]
    assert lt["samples"] == 2 and lt["median_seconds"] == 2 * H  # mean of 1h and 3h


def test_negative_lead_samples_are_dropped_and_counted_as_invalid(engine):
    deployed = END - timedelta(hours=1)
    records = [deploy("d1", ts(deployed), commits=[("dead1", ts(deployed + timedelta(seconds=60)))])]
    lt = report(engine, records)["lead_time"]
    assert lt["samples"] == 0 and lt["invalid_samples"] == 1
    assert lt["median_seconds"] is None and lt["p90_seconds"] is None
    assert_na(lt)


def test_zero_lead_is_kept_while_a_negative_one_is_dropped(engine):
    deployed = END - timedelta(hours=1)
    records = [
        deploy(
            "d1",
            ts(deployed),
            commits=[
                ("dead1", ts(deployed + timedelta(seconds=60))),  # -60 s: invalid
                ("dead2", ts(deployed)),  # 0 s: a valid sample
                ("dead3", None),  # no commit time: no sample at all
            ],
        )
    ]
    lt = report(engine, records)["lead_time"]
    assert lt["samples"] == 1 and lt["invalid_samples"] == 1
    assert lt["median_seconds"] == 0.0 and lt["tier"] == "elite"


# --- change failure rate ---------------------------------------------------------------------

@pytest.mark.parametrize(
    ("deploys", "failed", "rate", "tier"),
    [
        (20, 0, 0.0, "elite"),
        (20, 1, 0.05, "elite"),  # exactly 5%
        (19, 1, 0.0526, "high"),  # 5.26%
        (20, 2, 0.1, "high"),  # exactly 10%
        (20, 3, 0.15, "medium"),  # exactly 15%
        (20, 4, 0.2, "low"),
        (3, 1, 0.3333, "low"),
    ],
)
def test_change_failure_rate_tier_boundaries(engine, deploys, failed, rate, tier):
    records = [
        deploy(f"d{i}", before((i + 1) * H), change_failure=True if i < failed else None) for i in range(deploys)
    ]
    cfr = report(engine, records)["change_failure_rate"]
    assert cfr["deploys"] == deploys and cfr["failed"] == failed
    assert cfr["rate"] == rate and cfr["tier"] == tier and cfr["reason"] is None


def test_no_deploys_in_the_window_is_na_not_zero(engine):
    records = [deploy("old", before(40 * D))]
    cfr = report(engine, records)["change_failure_rate"]
    assert cfr["deploys"] == 0 and cfr["failed"] == 0 and cfr["rate"] is None
    assert_na(cfr)


def test_a_rollback_marks_the_reverted_deploy_failed_unless_the_rollback_itself_failed(engine):
    records = [
        deploy("d1", before(3 * D)),
        deploy("d2", before(2 * D), rollback_of="d1"),  # reverts d1: d1 is a change failure
        deploy("d3", before(1 * D)),
        deploy("d4", before(12 * H), status="failure", rollback_of="d3"),  # a failed attempt: d3 stays good
    ]
    cfr = report(engine, records)["change_failure_rate"]
    # qualifying: d1, d2, d3 (d4 failed); failed: d1 -> 1/3
    assert cfr["deploys"] == 3 and cfr["failed"] == 1
    assert cfr["rate"] == 0.3333 and cfr["tier"] == "low"


def test_several_incidents_on_one_deploy_count_one_failure(engine):
    records = [
        deploy("d1", before(2 * D)),
        deploy("d2", before(1 * D)),
        deploy("d3", before(12 * H)),
        deploy("d4", before(6 * H)),
        incident("i1", before(40 * H), caused_by="d1"),
        incident("i2", before(30 * H), caused_by="d1", resolved_at=before(29 * H)),
        incident("i3", before(20 * H), caused_by="d1", environment="staging"),
    ]
    cfr = report(engine, records)["change_failure_rate"]
    assert cfr["deploys"] == 4 and cfr["failed"] == 1 and cfr["rate"] == 0.25


def test_an_incident_in_any_environment_and_at_any_time_marks_its_cause(engine):
    records = [
        deploy("d1", before(2 * D)),
        deploy("d2", before(1 * D)),
        incident("stg", before(20 * H), environment="staging", caused_by="d1"),
        incident("late", ts(END + timedelta(hours=1)), caused_by="d2"),  # after the window ends
    ]
    cfr = report(engine, records)["change_failure_rate"]
    assert cfr["deploys"] == 2 and cfr["failed"] == 2 and cfr["rate"] == 1.0 and cfr["tier"] == "low"
    assert cfr["unlinked_incidents"] == 0


def test_unlinked_incidents_are_production_incidents_started_in_the_window_without_a_cause(engine):
    records = [
        deploy("d1", before(3 * D)),
        incident("a", before(2 * D)),  # counts
        incident("b", before(1 * D), environment="prod", resolved_at=before(20 * H)),  # counts
        incident("c", before(1 * D), caused_by="d1"),  # linked
        incident("d", before(31 * D)),  # started before the window
        incident("e", before(1 * D), environment="staging"),  # not production
        incident("f", before(1 * D), service="search"),  # another service
    ]
    assert report(engine, records, service="checkout")["change_failure_rate"]["unlinked_incidents"] == 2
    cfr = metrics(engine, end=END, days=30)["change_failure_rate"]
    assert cfr["unlinked_incidents"] == 3  # a, b and f
    assert cfr["failed"] == 1 and cfr["deploys"] == 1  # unlinked ones count as no failure


# --- time to restore, recovery time, MTTA ------------------------------------------------------

@pytest.mark.parametrize(
    ("seconds", "tier"),
    [
        (0, "elite"),
        (3599.5, "elite"),
        (H, "high"),  # exactly an hour is not "under an hour"
        (D - 1, "high"),
        (D, "medium"),
        (7 * D - 1, "medium"),
        (7 * D, "low"),
    ],
)
def test_time_to_restore_and_recovery_tier_boundaries(engine, seconds, tier):
    resolved = END - timedelta(hours=1)
    started = resolved - timedelta(seconds=seconds)
    records = [
        deploy("cause", ts(started + timedelta(minutes=1))),  # deployed after the start: min() is the start
        incident("i1", ts(started), resolved_at=ts(resolved), caused_by="cause"),
    ]
    m = report(engine, records)
    ttr, fdrt = m["time_to_restore"], m["failed_deployment_recovery_time"]
    assert ttr["median_seconds"] == seconds and ttr["p90_seconds"] == seconds
    assert ttr["incidents"] == 1 and ttr["tier"] == tier and ttr["reason"] is None
    assert fdrt["median_seconds"] == seconds and fdrt["incidents"] == 1 and fdrt["tier"] == tier


def test_time_to_restore_median_and_p90_of_an_odd_count(engine):
    durations = [3000, 60, 240, 120, 180]
    records = [
        incident(f"i{k}", before(D + s), resolved_at=before(D)) for k, s in enumerate(durations)
    ]
    ttr = report(engine, records)["time_to_restore"]
    # sorted 60, 120, 180, 240, 3000: median 180; p90 at rank 0.9 * 4 = 3.6: 240 + 0.6 * 2760 = 1896
    assert ttr["incidents"] == 5
    assert ttr["median_seconds"] == 180.0
    assert ttr["p90_seconds"] == pytest.approx(1896.0)
    assert ttr["tier"] == "elite"


def test_open_incidents_are_not_measured_but_reported_with_the_oldest(engine):
    records = [
        incident("done", before(3 * H), resolved_at=before(3 * H - 1800)),  # 30 min
        incident("open1", before(2 * H)),
        incident("open2", before(5 * H), acknowledged_at=before(4 * H)),
        incident("later", ts(END + timedelta(hours=1))),  # starts after the window: not open in it
        incident("stg", before(9 * H), environment="staging"),  # not production
    ]
    ttr = report(engine, records)["time_to_restore"]
    assert ttr["incidents"] == 1 and ttr["median_seconds"] == 1800.0 and ttr["tier"] == "elite"
    assert ttr["open_incidents"] == 2
    assert ttr["oldest_open_seconds"] == 5 * H


def test_only_open_incidents_is_na_with_a_reason_and_still_counts_them(engine):
    ttr = report(engine, [incident("open1", before(2 * H))])["time_to_restore"]
    assert ttr["incidents"] == 0 and ttr["median_seconds"] is None and ttr["p90_seconds"] is None
    assert_na(ttr)
    assert ttr["open_incidents"] == 1 and ttr["oldest_open_seconds"] == 2 * H


def test_failed_deployment_recovery_time_starts_at_the_earlier_of_deploy_and_start(engine):
    records = [
        deploy("early", before(3 * H)),
        deploy("late", before(1 * H)),
        # caused by a deploy 30 min before impact: recovery 3h - 1.5h = 5400, restore 3600
        incident("i1", before(150 * 60), resolved_at=before(90 * 60), caused_by="early"),
        # caused by a deploy after the start (clock skew, late link): recovery = restore = 4500
        incident("i2", before(2 * H), resolved_at=before(45 * 60), caused_by="late"),
        # no cause: counts for time to restore only (600)
        incident("i3", before(20 * 60), resolved_at=before(10 * 60)),
    ]
    m = report(engine, records)
    fdrt, ttr = m["failed_deployment_recovery_time"], m["time_to_restore"]
    assert fdrt["incidents"] == 2 and fdrt["median_seconds"] == 4950.0 and fdrt["tier"] == "high"
    # restore 600, 3600, 4500: median 3600; p90 at rank 1.8: 3600 + 0.8 * 900 = 4320
    assert ttr["incidents"] == 3 and ttr["median_seconds"] == 3600.0 and ttr["tier"] == "high"
    assert ttr["p90_seconds"] == pytest.approx(4320.0)


def test_no_linked_resolved_incident_leaves_recovery_time_na(engine):
    records = [deploy("d1", before(3 * H)), incident("i1", before(2 * H), resolved_at=before(H))]
    fdrt = report(engine, records)["failed_deployment_recovery_time"]
    assert fdrt["incidents"] == 0 and fdrt["median_seconds"] is None
    assert_na(fdrt)


def test_mtta_is_the_median_time_to_acknowledge_of_incidents_acknowledged_in_the_window(engine):
    start = END - timedelta(days=7)
    records = [
        incident("a", before(D), acknowledged_at=before(D - 120)),  # 120
        incident("b", before(D), acknowledged_at=before(D - 300), resolved_at=before(D - 900)),  # 300
        incident("c", before(2 * D), acknowledged_at=before(2 * D - 600)),  # 600
        incident("d", before(600, start), acknowledged_at=before(-300, start)),  # 900, started before
        incident("e", before(2 * H, start), acknowledged_at=before(H, start)),  # acked before the window
        incident("f", before(D), acknowledged_at=before(D - 60), environment="staging"),  # staging
        incident("g", before(D), resolved_at=before(D - 60)),  # resolved, never acknowledged
    ]
    m = report(engine, records, days=7)
    assert m["mtta"] == {"median_seconds": 450.0, "incidents": 4}  # (300 + 600) / 2
    assert "tier" not in m["mtta"]


# --- deployment frequency ---------------------------------------------------------------------

def _noon_deploys(dates: list[int], month: int = 11) -> list[dict]:
    return [deploy(f"d{month}-{day}", ts(datetime(2026, month, day, 12, tzinfo=UTC))) for day in dates]


@pytest.mark.parametrize(
    ("dates", "days_per_week", "tier"),
    [
        ([24, 23, 22, 21, 20], 5.0, "elite"),
        ([24, 24, 23, 22, 21], 4.0, "high"),  # five deploys on four dates
        ([18], 1.0, "high"),  # the oldest date of the block
    ],
)
def test_deploy_days_per_week_tiers_for_one_block(engine, dates, days_per_week, tier):
    records = [
        deploy(f"d{i}", ts(datetime(2026, 11, day, 12, tzinfo=UTC) + timedelta(minutes=i)))
        for i, day in enumerate(dates)
    ]
    df = report(engine, records, days=7)["deployment_frequency"]  # D = Nov 24, block Nov 18..24
    assert df["deploys"] == len(dates)
    assert df["per_day"] == round(len(dates) / 7, 4)
    assert df["deploy_days_per_week"] == days_per_week and df["tier"] == tier and df["reason"] is None


@pytest.mark.parametrize(
    ("dates", "days_per_week", "tier"),
    [
        # blocks Nov 18..24 and Nov 11..17
        ([24, 23, 22, 21, 20, 17, 16, 15, 14, 13], 5.0, "elite"),
        ([24, 23, 22, 21, 20, 17, 16, 15, 14], 4.5, "high"),  # median of 5 and 4
        ([24], 0.5, "medium"),  # median of 1 and 0 is below 1; the 30-date block has 1 deploy day
    ],
)
def test_deploy_days_per_week_is_the_median_over_blocks(engine, dates, days_per_week, tier):
    df = report(engine, _noon_deploys(dates), days=14)["deployment_frequency"]
    assert df["deploys"] == len(dates)
    assert df["deploy_days_per_week"] == days_per_week and df["tier"] == tier


def test_leftover_dates_before_the_whole_weeks_are_ignored_by_the_week_blocks(engine):
    # N = 30: four week blocks Oct 28..Nov 24; Oct 26 and 27 are left over. The only deploy is on
    # Oct 26 (the window starts Oct 26 00:00Z): week median 0, the 30-date block has 1 -> medium.
    records = [deploy("d1", ts(datetime(2026, 10, 26, 0, 0, tzinfo=UTC)))]
    df = report(engine, records, days=30)["deployment_frequency"]
    assert df["deploys"] == 1 and df["per_day"] == 0.0333
    assert df["deploy_days_per_week"] == 0.0 and df["tier"] == "medium"


def test_deploys_only_before_the_window_give_low_not_na(engine):
    df = report(engine, [deploy("old", before(20 * D))], days=7)["deployment_frequency"]
    assert df["deploys"] == 0 and df["per_day"] == 0.0
    assert df["deploy_days_per_week"] == 0.0 and df["tier"] == "low" and df["reason"] is None


def test_no_qualifying_deploy_ever_is_na(engine):
    records = [
        deploy("stg", before(H), environment="staging"),
        deploy("failed", before(2 * H), status="failure"),
    ]
    df = report(engine, records, days=7)["deployment_frequency"]
    assert df["deploys"] == 0 and df["per_day"] == 0.0 and df["deploy_days_per_week"] is None
    assert_na(df)


def test_a_window_under_seven_days_has_per_day_but_no_frequency_tier(engine):
    records = [deploy("d1", before(H)), deploy("d2", before(2 * D)), deploy("old", before(10 * D))]
    m = report(engine, records, days=6)
    df = m["deployment_frequency"]
    assert df["deploys"] == 2 and df["per_day"] == 0.3333  # 2 / 6
    assert df["deploy_days_per_week"] is None
    assert_na(df)
    assert m["change_failure_rate"]["rate"] == 0.0  # the other keys still work


def test_a_deploy_late_in_the_utc_day_counts_on_the_next_local_date_in_berlin(engine):
    # 12:00Z on Nov 19, 20, 21, 22 and 23:30Z on Nov 22 (= 00:30 on Nov 23 in Berlin).
    # UTC: D = Nov 24, block Nov 18..24, deploy dates 19-22 -> 4 -> high.
    # Berlin: D = Nov 25 (00:59 local), block Nov 19..25, dates 19-23 -> 5 -> elite.
    records = _noon_deploys([19, 20, 21, 22]) + [deploy("late", "2026-11-22T23:30:00Z")]
    utc = report(engine, records, days=7)["deployment_frequency"]
    berlin = metrics(engine, end=END, days=7, timezone_name="Europe/Berlin")["deployment_frequency"]
    assert utc["deploys"] == berlin["deploys"] == 5
    assert (utc["deploy_days_per_week"], utc["tier"]) == (4.0, "high")
    assert (berlin["deploy_days_per_week"], berlin["tier"]) == (5.0, "elite")
    assert berlin["per_day"] == utc["per_day"] == 0.7143
    assert metrics(engine, end=END, days=7, timezone_name="Europe/Berlin")["scope"]["timezone"] == "Europe/Berlin"


def test_a_deploy_early_in_the_utc_day_falls_before_the_block_in_new_york(engine):
    # 02:00Z Nov 18 is 21:00 on Nov 17 in New York. The window [Nov 18 00:00Z, Nov 25 00:00Z)
    # holds it; in UTC its date Nov 18 is in the block -> 1 -> high. In New York D = Nov 24 and
    # the block is Nov 18..24, so the week has 0 deploy days, but the 30-date block has 1 -> medium.
    records = [deploy("d1", "2026-11-18T02:00:00Z")]
    utc = report(engine, records, days=7)["deployment_frequency"]
    ny = metrics(engine, end=END, days=7, timezone_name="America/New_York")["deployment_frequency"]
    assert (utc["deploys"], utc["deploy_days_per_week"], utc["tier"]) == (1, 1.0, "high")
    assert (ny["deploys"], ny["deploy_days_per_week"], ny["tier"]) == (1, 0.0, "medium")


def test_the_25_hour_local_day_at_the_end_of_daylight_saving_is_one_date(engine):
    # New York leaves daylight saving on Sunday Nov 1 2026: that local date runs from 04:00Z to
    # 05:00Z next day. 04:30Z Nov 1 (00:30 EDT) and 04:30Z Nov 2 (23:30 EST) are both Nov 1.
    end = datetime(2026, 11, 5, tzinfo=UTC)
    records = [deploy("a", "2026-11-01T04:30:00Z"), deploy("b", "2026-11-02T04:30:00Z")]
    utc = report(engine, records, days=7, end=end)["deployment_frequency"]
    ny = metrics(engine, end=end, days=7, timezone_name="America/New_York")["deployment_frequency"]
    assert utc["deploy_days_per_week"] == 2.0
    assert ny["deploy_days_per_week"] == 1.0


def test_environments_are_matched_case_insensitively(engine):
    records = [
        deploy("a", before(1 * H), environment="Production"),
        deploy("b", before(2 * H), environment="PROD"),
        deploy("c", before(3 * H), environment="Prod"),
        deploy("d", before(4 * H), environment="Staging"),
    ]
    assert report(engine, records)["deployment_frequency"]["deploys"] == 3


def test_the_production_set_is_configurable(engine):
    records = [
        deploy("a", before(1 * H), environment="LIVE", commits=[("beef1", before(2 * H))]),
        deploy("b", before(2 * H), environment="production", commits=[("beef2", before(3 * H))]),
        incident("i", before(5 * H), environment="live", resolved_at=before(4 * H)),
        incident("j", before(5 * H), resolved_at=before(3 * H)),
    ]
    m = report(engine, records, production_environments=("live",))
    assert m["scope"]["environments"] == ["live"]
    assert m["deployment_frequency"]["deploys"] == 1
    assert m["lead_time"]["samples"] == 1 and m["lead_time"]["median_seconds"] == H
    assert m["time_to_restore"]["incidents"] == 1 and m["time_to_restore"]["median_seconds"] == H


# --- the window --------------------------------------------------------------------------------

def test_the_window_is_half_open_for_deploys(engine):
    start = END - timedelta(days=7)
    records = [
        deploy("at-start", ts(start), commits=[("f00d1", before(H, start))]),  # included: 1h lead
        deploy("at-end", ts(END), commits=[("f00d2", before(2 * H))]),  # excluded
    ]
    m = report(engine, records, days=7)
    assert m["scope"]["start"] == "2026-11-18T00:00:00Z" and m["scope"]["end"] == "2026-11-25T00:00:00Z"
    df = m["deployment_frequency"]
    assert df["deploys"] == 1 and df["per_day"] == 0.1429  # 1 / 7
    assert df["deploy_days_per_week"] == 1.0  # Nov 18
    assert m["lead_time"]["samples"] == 1 and m["lead_time"]["median_seconds"] == H
    assert m["change_failure_rate"]["deploys"] == 1


def test_the_window_is_half_open_for_incidents(engine):
    start = END - timedelta(days=7)
    records = [
        incident("i1", before(H, start), resolved_at=ts(start)),  # resolved at start: measured (1h)
        incident("i2", before(H), resolved_at=ts(END)),  # resolved at end: not measured, still open
        incident("i3", ts(start), acknowledged_at=before(-600, start)),  # starts at start: unlinked; open
        incident("i4", ts(END), resolved_at=before(-60)),  # starts at end: outside the window
        incident("i5", before(2 * H, start), acknowledged_at=ts(start)),  # acked at start: 7200; open
    ]
    m = report(engine, records, days=7)
    ttr = m["time_to_restore"]
    assert ttr["incidents"] == 1 and ttr["median_seconds"] == H and ttr["tier"] == "high"
    assert ttr["open_incidents"] == 3  # i2, i3, i5
    assert ttr["oldest_open_seconds"] == 7 * D + 2 * H  # i5
    assert m["change_failure_rate"]["unlinked_incidents"] == 2  # i2 and i3
    assert m["mtta"] == {"median_seconds": 3900.0, "incidents": 2}  # 600 and 7200


# --- scope ------------------------------------------------------------------------------------

def test_the_org_roll_up_pools_events_instead_of_averaging_services(engine):
    records = [
        deploy("a1", before(1 * D), service="checkout", commits=[("a0001", before(1 * D + 1 * H))], change_failure=True),
        deploy("a2", before(2 * D), service="checkout", commits=[("a0002", before(2 * D + 3 * H))]),
        deploy("a3", before(3 * D), service="checkout", commits=[("a0003", before(3 * D + 5 * H))]),
        deploy("b1", before(1 * D), service="search", commits=[("b0001", before(1 * D + 10 * H))]),
        incident("ia", before(5 * H), service="checkout", resolved_at=before(5 * H - 600)),
        incident("ib1", before(9 * H), service="search", resolved_at=before(7 * H)),
        incident("ib2", before(9 * H), service="search", resolved_at=before(6 * H)),
    ]
    checkout = report(engine, records, service="checkout")
    search = metrics(engine, end=END, days=30, service="search")
    org = metrics(engine, end=END, days=30)

    # lead: checkout 1h, 3h, 5h; search 10h
    assert checkout["lead_time"]["median_seconds"] == 3 * H
    assert checkout["lead_time"]["p90_seconds"] == pytest.approx(16560.0)  # 3h + 0.8 * 2h
    assert search["lead_time"]["median_seconds"] == 10 * H
    assert org["lead_time"]["samples"] == 4
    assert org["lead_time"]["median_seconds"] == 4 * H  # (3h + 5h) / 2, not (3h + 10h) / 2
    assert org["lead_time"]["p90_seconds"] == pytest.approx(30600.0)  # 5h + 0.7 * 5h

    # change failure rate: 1/3 and 0/1 pool to 1/4, not the mean 1/6
    assert checkout["change_failure_rate"]["rate"] == 0.3333
    assert search["change_failure_rate"]["rate"] == 0.0
    assert org["change_failure_rate"]["rate"] == 0.25 and org["change_failure_rate"]["tier"] == "low"

    # deploys: 3 + 1
    assert (checkout["deployment_frequency"]["per_day"], search["deployment_frequency"]["per_day"]) == (0.1, 0.0333)
    assert org["deployment_frequency"]["deploys"] == 4 and org["deployment_frequency"]["per_day"] == 0.1333

    # time to restore: checkout 600; search 7200, 10800; all: 600, 7200, 10800 -> 7200
    assert checkout["time_to_restore"]["median_seconds"] == 600
    assert search["time_to_restore"]["median_seconds"] == 9000
    assert org["time_to_restore"]["median_seconds"] == 7200 and org["time_to_restore"]["incidents"] == 3


# --- arguments ----------------------------------------------------------------------------------

@pytest.mark.parametrize("days", [0, -1, 3661, True])
def test_window_length_must_be_a_whole_number_of_days_in_range(engine, days):
    with pytest.raises(ValidationError) as err:
        metrics(engine, end=END, days=days)
    assert err.value.field == "days"


def test_the_end_of_the_window_must_carry_a_time_zone(engine):
    with pytest.raises(ValidationError) as err:
        metrics(engine, end=datetime(2026, 11, 25), days=30)
    assert err.value.field == "end"


# --- the DORA 2024 rules: recovery at mitigation, cancelled, not a change, rework -------------

def test_an_incident_mitigated_but_not_resolved_is_recovered_and_still_open(engine):
    records = [
        deploy("d1", before(10 * H)),
        # impact 8h -> 5h before END: restored after 3h, never closed
        incident("i1", before(8 * H), mitigated_at=before(5 * H), caused_by="d1"),
    ]
    m = report(engine, records)
    ttr, fdrt = m["time_to_restore"], m["failed_deployment_recovery_time"]
    assert ttr["incidents"] == 1 and ttr["median_seconds"] == 3 * H and ttr["tier"] == "high"
    # not resolved before END: still open, for 8h
    assert ttr["open_incidents"] == 1 and ttr["oldest_open_seconds"] == 8 * H
    # recovery from the deploy (10h before END) to the mitigation (5h before): 5h
    assert fdrt["incidents"] == 1 and fdrt["median_seconds"] == 5 * H


def test_mitigated_in_the_window_and_resolved_after_it_counts_in_the_window_of_its_mitigation(engine):
    records = [
        deploy("d1", before(3 * H)),
        # mitigated 1h before END (30 min after it started), resolved 2h after END
        incident("i1", before(90 * 60), mitigated_at=before(H), resolved_at=ts(END + timedelta(hours=2)), caused_by="d1"),
    ]
    m = report(engine, records)
    ttr = m["time_to_restore"]
    assert ttr["incidents"] == 1 and ttr["median_seconds"] == 30 * 60 and ttr["tier"] == "elite"
    assert ttr["open_incidents"] == 1  # resolved after END: open at END
    assert m["failed_deployment_recovery_time"]["median_seconds"] == 2 * H  # from the deploy, 3h -> 1h
    # the next window (END to END + 30 days) holds the resolution but not the recovery: nothing
    later = metrics(engine, days=30, end=END + timedelta(days=30))["time_to_restore"]
    assert later["incidents"] == 0 and later["median_seconds"] is None


def test_a_cancelled_incident_that_names_a_cause_takes_part_in_nothing(engine):
    records = [
        deploy("d1", before(10 * H)),
        deploy("d2", before(9 * H)),
        incident("false-alarm", before(8 * H), acknowledged_at=before(7 * H), resolved_at=before(6 * H),
                 caused_by="d1", status="cancelled"),
        incident("open-cancelled", before(2 * H), status="cancelled"),
        incident("real", before(4 * H), resolved_at=before(3 * H), caused_by="d2"),
    ]
    m = report(engine, records)
    cfr = m["change_failure_rate"]
    assert cfr["failed"] == 1 and cfr["deploys"] == 2  # only d2: d1's incident was cancelled
    assert cfr["unlinked_incidents"] == 0  # the cancelled open one is not unlinked either
    ttr = m["time_to_restore"]
    assert ttr["incidents"] == 1 and ttr["median_seconds"] == H  # "real" only
    assert ttr["open_incidents"] == 0 and ttr["oldest_open_seconds"] is None
    assert m["failed_deployment_recovery_time"]["incidents"] == 1
    assert m["mtta"] == {"median_seconds": None, "incidents": 0}


def test_not_caused_by_change_incidents_are_reported_apart_from_unlinked_ones(engine):
    records = [
        deploy("d1", before(10 * H)),
        incident("unlinked", before(8 * H)),
        incident("dns", before(7 * H), not_caused_by_change=True),
        incident("power", before(6 * H), not_caused_by_change=True, status="cancelled"),  # cancelled: nothing
    ]
    cfr = report(engine, records)["change_failure_rate"]
    assert cfr["unlinked_incidents"] == 1 and cfr["not_change_incidents"] == 1 and cfr["failed"] == 0


def test_rework_rate_counts_rollbacks_fixes_and_hotfixes_once_each(engine):
    records = [
        deploy("d1", before(20 * H)),
        incident("i1", before(19 * H)),
        deploy("d2", before(18 * H), rollback_of="d1", fixes="i1"),  # a rollback that also names a fix: once
        deploy("d3", before(17 * H), fixes="i1"),
        deploy("d4", before(16 * H), rework=True),  # a hotfix, no incident named
        deploy("d5", before(15 * H)),
        deploy("stg", before(14 * H), environment="staging", rework=True),  # not qualifying
        deploy("bad", before(13 * H), status="failure", fixes="i1"),  # not qualifying
    ]
    m = report(engine, records)
    rr = m["deployment_rework_rate"]
    # qualifying: d1..d5 (5); rework: d2, d3, d4 (3) -> 0.6
    assert rr == {"rework": 3, "deploys": 5, "rate": 0.6, "tier": None, "reason": None}
    assert m["change_failure_rate"]["failed"] == 1  # d1, rolled back; a fix is not a failure


def test_rework_with_no_deploys_is_na(engine):
    records = [deploy("old", before(60 * D), rework=True), deploy("stg", before(H), environment="staging", rework=True)]
    rr = report(engine, records)["deployment_rework_rate"]
    assert rr["rework"] == 0 and rr["deploys"] == 0 and rr["rate"] is None
    assert_na(rr)


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"mitigated_at": before(9 * H)}, "mitigated_at"),  # before started_at
        ({"mitigated_at": before(2 * H), "resolved_at": before(3 * H)}, "mitigated_at"),  # after resolved_at
        ({"status": "closed"}, "status"),
        ({"not_caused_by_change": "yes"}, "not_caused_by_change"),
    ],
)
def test_bad_incident_lifecycle_fields_are_rejected_by_name(engine, extra, field):
    result = load(engine, [incident("i1", before(8 * H), **extra)], now=NOW)
    assert not result.committed and len(result.errors) == 1 and field in result.errors[0][1]


def test_a_fix_naming_an_unknown_or_later_incident_is_rejected(engine):
    records = [
        deploy("d1", before(10 * H), fixes="nope"),
        deploy("d2", before(10 * H), fixes="i-later"),
        incident("i-later", before(5 * H)),
    ]
    result = load(engine, records, now=NOW)
    assert not result.committed
    assert [line for line, _ in result.errors] == [1, 2]
    assert "no incident" in result.errors[0][1] and "started after this deploy" in result.errors[1][1]


def test_reports_one_after_another_each_get_their_own_numbers(engine):
    # PostgreSQL compiles a report's statement once per shape (org / n services, number of
    # environments, dates probed or not) and binds the values each time: every report below must
    # still count only its own scope, environments and window.
    from bot.services import teams
    from bot.services.metrics import build_metrics
    from bot.store.db import session_scope

    records = [
        deploy("c1", before(10 * D)), deploy("c2", before(1 * D)),  # checkout: one in the last 3 days, two in 30
        deploy("c3", before(2 * D), environment="staging"),
        deploy("w1", before(5 * D), service="web"),
        deploy("a1", before(4 * D), service="auth"), deploy("s1", before(2 * D), service="search"),
    ]
    assert load(engine, records, now=NOW).committed
    with session_scope(engine) as session:
        teams.set_team(session, team="shop", services=["checkout", "web"], now=NOW)
        teams.set_team(session, team="edge", services=["auth", "search"], now=NOW)

    def deploys(days=30, envs=("production",), **scope):
        with session_scope(engine, write=False) as session:
            m = build_metrics(session, days=days, end=END, timezone_name="UTC", production_environments=envs, **scope)
        return m["deployment_frequency"]["deploys"]

    asked = [
        deploys(), deploys(envs=("production", "staging")), deploys(days=3),
        deploys(service="checkout"), deploys(service="web"), deploys(service="checkout", days=3),
        deploys(service="checkout", envs=("staging", "production")),
        deploys(team="shop"), deploys(team="edge"), deploys(team="shop", days=3), deploys(team="edge", days=3),
    ]
    #        org 30 d, +staging, org 3 d, checkout, web, checkout 3 d, checkout +staging, shop, edge, shop 3 d, edge 3 d
    assert asked == [5, 6, 2, 2, 1, 1, 3, 3, 2, 1, 1]
