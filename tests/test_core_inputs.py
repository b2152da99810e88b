"""Validation of deploy and incident records (``bot.core.inputs``): every field and its error."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.core.errors import ValidationError
from bot.core.inputs import (
    CommitInput,
    normalize_environment,
    normalize_service,
    normalize_severity,
    normalize_sha,
    parse_deploy,
    parse_incident,
    service_key,
)

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
T = "2026-11-24T10:12:00Z"
T_DT = datetime(2026, 11, 24, 10, 12, tzinfo=UTC)


def deploy(**fields) -> dict:
    return {"type": "deploy", "id": "gh-run-1", "service": "checkout", "deployed_at": T, **fields}


def incident(**fields) -> dict:
    return {"type": "incident", "id": "pd-1", "service": "checkout", "started_at": T, **fields}


def errors_of(fn, obj, **kwargs) -> dict[str | None, str]:
    with pytest.raises(ValidationError) as err:
        fn(obj, **kwargs)
    return dict(err.value.errors)


# --- deploys ------------------------------------------------------------------------------------

def test_a_full_deploy_is_normalized():
    d = parse_deploy(
        {
            "type": "deploy",
            "id": " gh-run-9912 ",
            "service": " Checkout ",
            "environment": "Production",
            "version": "2026.11.24-1",
            "deployed_at": "2026-11-24T11:12:00+01:00",
            "status": "success",
            "commits": [{"sha": "9FCEB02", "committed_at": "2026-11-23T16:40:00Z"}],
            "rollback_of": None,
            "change_failure": False,
            "url": "https://ci.example/run/9912",
            "note": "  weekly release ",
        },
        now=NOW,
    )
    assert d.external_id == "gh-run-9912"
    assert d.service == "Checkout" and d.environment == "production" and d.status == "success"  # display form kept
    assert d.deployed_at == T_DT and d.deployed_at.tzinfo is not None
    assert d.commits == (CommitInput(sha="9fceb02", committed_at=datetime(2026, 11, 23, 16, 40, tzinfo=UTC)),)
    assert d.version == "2026.11.24-1" and d.url == "https://ci.example/run/9912" and d.note == "weekly release"
    assert d.rollback_of is None and d.change_failure is False


def test_deploy_defaults():
    d = parse_deploy(deploy())
    assert (d.environment, d.status, d.commits, d.change_failure, d.version) == (
        "production", "success", (), False, "unversioned",
    )
    assert parse_deploy(deploy(commits=["abcdef0123456789"])).version == "abcdef012345"  # the first sha, 12 digits
    assert parse_deploy(deploy(environment=None, status=None, change_failure=None)).environment == "production"


def test_a_deploy_must_be_an_object():
    for value in (None, [], "deploy", 3):
        with pytest.raises(ValidationError):
            parse_deploy(value)


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"id": None}, "id"),
        ({"id": ""}, "id"),
        ({"id": True}, "id"),
        ({"id": {"a": 1}}, "id"),
        ({"id": "x" * 201}, "id"),
        ({"service": None}, "service"),
        ({"service": "  "}, "service"),
        ({"service": "check<out"}, "service"),
        ({"service": "check*out"}, "service"),
        ({"service": "check|out"}, "service"),
        ({"service": "-checkout"}, "service"),
        ({"service": "a" * 101}, "service"),
        ({"service": 7}, "service"),
        ({"environment": "prod env"}, "environment"),
        ({"environment": 1}, "environment"),
        ({"environment": "e" * 65}, "environment"),
        ({"deployed_at": None}, "deployed_at"),
        ({"deployed_at": 1764000000}, "deployed_at"),
        ({"deployed_at": "yesterday"}, "deployed_at"),
        ({"deployed_at": "2026-13-01T00:00:00Z"}, "deployed_at"),
        ({"status": "ok"}, "status"),
        ({"status": "SUCCESS"}, "status"),
        ({"change_failure": "true"}, "change_failure"),
        ({"change_failure": 1}, "change_failure"),
        ({"commits": "abcd01"}, "commits"),
        ({"commits": {"sha": "abcd01"}}, "commits"),
        ({"commits": [5]}, "commits[0]"),
        ({"commits": [{"sha": "xyz"}]}, "commits[0].sha"),
        ({"commits": [{"sha": "abc"}]}, "commits[0].sha"),  # fewer than 4 digits
        ({"commits": [{"sha": "a" * 65}]}, "commits[0].sha"),
        ({"commits": [{"committed_at": T}]}, "commits[0].sha"),
        ({"commits": ["abcd01", {"sha": "abcd02", "committed_at": "soon"}]}, "commits[1].committed_at"),
        ({"commits": [{"sha": "abcd02", "committed_at": 5}]}, "commits[0].committed_at"),
        ({"version": "v" * 201}, "version"),
        ({"version": ["1"]}, "version"),
        ({"url": "ftp://ci.example/1"}, "url"),
        ({"url": "https://" + "x" * 2000}, "url"),
        ({"note": "n" * 2001}, "note"),
        ({"rollback_of": ["d1"]}, "rollback_of"),
        ({"rollback_of": True}, "rollback_of"),
        ({"rollback_of": "  "}, "rollback_of"),
        ({"rollback_of": "r" * 201}, "rollback_of"),
        ({"rollback_of": "gh-run-1"}, "rollback_of"),  # itself
        ({"colour": "blue"}, "colour"),
    ],
)
def test_each_bad_deploy_field_is_named(fields, field):
    errors = errors_of(parse_deploy, deploy(**fields), now=NOW)
    assert field in errors, errors
    with pytest.raises(ValidationError) as err:
        parse_deploy(deploy(**fields), now=NOW)
    assert field in err.value.message


def test_every_bad_field_is_reported_at_once():
    errors = errors_of(parse_deploy, {"id": "x", "service": "", "deployed_at": "soon", "status": "ok", "url": "x"})
    assert set(errors) == {"service", "deployed_at", "status", "url"}


def test_a_deploy_may_be_up_to_five_minutes_in_the_future():
    assert parse_deploy(deploy(deployed_at="2026-11-25T12:05:00Z"), now=NOW).deployed_at == NOW + timedelta(minutes=5)
    errors = errors_of(parse_deploy, deploy(deployed_at="2026-11-25T12:05:01Z"), now=NOW)
    assert "future" in errors["deployed_at"]
    errors = errors_of(parse_deploy, deploy(commits=[{"sha": "abcd", "committed_at": "2026-11-26T00:00:00Z"}]), now=NOW)
    assert "future" in errors["commits[0].committed_at"]
    # without a clock nothing is "in the future"
    assert parse_deploy(deploy(deployed_at="2030-01-01T00:00:00Z")).deployed_at.year == 2030


def test_commits_are_deduplicated_keeping_the_first_and_may_be_bare_shas():
    d = parse_deploy(deploy(commits=["ABCD01", {"sha": "abcd01", "committed_at": T}, {"sha": "abcd02", "committed_at": None}]))
    assert d.commits == (CommitInput("abcd01", None), CommitInput("abcd02", None))


def test_at_most_a_thousand_commits():
    assert len(parse_deploy(deploy(commits=[f"{i:06x}" for i in range(1000)])).commits) == 1000
    assert "commits" in errors_of(parse_deploy, deploy(commits=[f"{i:06x}" for i in range(1001)]))


def test_a_deploy_id_is_optional_only_when_asked():
    obj = deploy()
    del obj["id"]
    assert "id" in errors_of(parse_deploy, obj)
    assert parse_deploy(obj, require_id=False).external_id is None


def test_numeric_ids_and_references_are_read_as_strings():
    d = parse_deploy(deploy(id=9912, rollback_of=9911))
    assert d.external_id == "9912" and d.rollback_of == "9911"


def test_naive_times_are_read_as_utc():
    assert parse_deploy(deploy(deployed_at="2026-11-24T10:12:00")).deployed_at == T_DT


# --- incidents ------------------------------------------------------------------------------------

def test_a_full_incident_is_normalized():
    i = parse_incident(
        {
            "type": "incident",
            "id": "pd-Q1X",
            "service": "Checkout",
            "environment": "PROD",
            "severity": "SEV2",
            "title": " Checkout 5xx ",
            "started_at": "2026-11-24T10:30:00Z",
            "acknowledged_at": "2026-11-24T10:35:00Z",
            "resolved_at": "2026-11-24T11:10:00Z",
            "caused_by": "gh-run-9912",
        },
        now=NOW,
    )
    assert (i.external_id, i.service, i.environment, i.severity, i.title) == (
        "pd-Q1X", "Checkout", "prod", "sev2", "Checkout 5xx",
    )
    assert i.started_at == datetime(2026, 11, 24, 10, 30, tzinfo=UTC)
    assert i.acknowledged_at - i.started_at == timedelta(minutes=5)
    assert i.resolved_at - i.started_at == timedelta(minutes=40)
    assert i.caused_by == "gh-run-9912"


def test_incident_defaults():
    i = parse_incident(incident())
    assert (i.environment, i.severity, i.title, i.acknowledged_at, i.resolved_at, i.caused_by) == (
        "production", "sev3", "Incident on checkout", None, None, None,
    )


@pytest.mark.parametrize(("value", "expected"), [("sev1", "sev1"), ("SEV4", "sev4"), ("2", "sev2"), (3, "sev3"), (" sev1 ", "sev1")])
def test_severities(value, expected):
    assert parse_incident(incident(severity=value)).severity == expected


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"id": None}, "id"),
        ({"service": ""}, "service"),
        ({"environment": "pr od"}, "environment"),
        ({"started_at": None}, "started_at"),
        ({"started_at": "noon"}, "started_at"),
        ({"acknowledged_at": "noon"}, "acknowledged_at"),
        ({"resolved_at": 5}, "resolved_at"),
        ({"resolved_at": "2026-11-24T10:11:59Z"}, "resolved_at"),  # a second before it started
        ({"acknowledged_at": "2026-11-24T10:11:59Z"}, "acknowledged_at"),
        ({"started_at": "2026-11-25T12:06:00Z"}, "started_at"),  # future
        ({"resolved_at": "2026-11-26T00:00:00Z"}, "resolved_at"),  # future
        ({"severity": "critical"}, "severity"),
        ({"severity": "sev5"}, "severity"),
        ({"severity": 0}, "severity"),
        ({"title": "t" * 301}, "title"),
        ({"title": {"text": "x"}}, "title"),
        ({"caused_by": ["d1"]}, "caused_by"),
        ({"caused_by": False}, "caused_by"),
        ({"rollback_of": "d1"}, "rollback_of"),  # a deploy field, unknown on an incident
    ],
)
def test_each_bad_incident_field_is_named(fields, field):
    errors = errors_of(parse_incident, incident(**fields), now=NOW)
    assert field in errors, errors


def test_resolved_or_acknowledged_exactly_at_the_start_is_fine():
    i = parse_incident(incident(acknowledged_at=T, resolved_at=T))
    assert i.acknowledged_at == i.resolved_at == i.started_at


def test_an_incident_without_id_may_leave_the_start_to_the_caller():
    i = parse_incident({"service": "checkout"}, require_id=False)
    assert i.external_id is None and i.started_at is None
    assert "started_at" in errors_of(parse_incident, {"id": "x", "service": "checkout"})


def test_an_incident_must_be_an_object():
    with pytest.raises(ValidationError):
        parse_incident(["incident"])


# --- normalizers ----------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["node:9100", "Checkout API", ".github", "_site", "team/api", "svc@eu+1", "Zahlung-süd"])
def test_real_label_values_and_repository_names_are_service_names(name):
    assert normalize_service(name) == name
    assert parse_deploy(deploy(service=name), now=NOW).service == name


def test_one_key_matches_names_across_case_and_spaces_vs_dashes():
    assert service_key("Checkout API") == service_key("checkout-api") == service_key(" CHECKOUT  api ") == "checkout-api"
    assert service_key("node:9100") == "node:9100"
    assert service_key("_site") != service_key("site") and service_key(".github") != service_key("github")


def test_normalizers():
    assert normalize_service(" Payments/API ") == "Payments/API"
    assert normalize_service("Checkout   API") == "Checkout API"
    assert normalize_environment(None) == "production"
    assert normalize_environment(" Staging ") == "staging"
    assert normalize_severity("SEV1") == "sev1"
    assert normalize_sha(" ABCDEF ") == "abcdef"
    for fn, bad in ((normalize_service, "a<b"), (normalize_environment, "a b"), (normalize_severity, None), (normalize_sha, None)):
        with pytest.raises(ValidationError) as err:
            fn(bad)
        assert err.value.field is not None
