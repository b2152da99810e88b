"""The services layer: recording deploys and incidents, their state changes, and what is refused."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import select

from bot.core.errors import NotFound, StateError, ValidationError
from bot.core.inputs import IncidentInput, parse_deploy, parse_incident
from bot.services.deploys import (
    list_deploys,
    mark_change_failure,
    record_deploy,
    record_rollback,
)
from bot.services.incidents import (
    acknowledge_incident,
    declare_incident,
    link_cause,
    list_open_incidents,
    post_update,
    resolve_incident,
    roll_back_cause,
    timeline,
)
from bot.store.db import session_scope
from bot.store.models import Deploy, Incident, LeadSample
from tests.conftest import NOW, PRODUCTION
from tests.dbutil import metrics, row_counts

MIN = timedelta(minutes=1)
HOUR = timedelta(hours=1)


def iso(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def add_deploy(engine, id=None, *, at=NOW - HOUR, service="checkout", now=NOW, **fields):
    obj = {"service": service, "deployed_at": iso(at), **fields}
    if id is not None:
        obj["id"] = id
    with session_scope(engine) as s:
        return record_deploy(
            s, data=parse_deploy(obj, now=now, require_id=id is not None), production_environments=PRODUCTION,
            now=now, source="api", actor="U1",
        )


def add_incident(engine, id=None, *, started=NOW - HOUR, service="checkout", source="api", **fields):
    obj = {"service": service, "started_at": iso(started), **fields}
    if id is not None:
        obj["id"] = id
    with session_scope(engine) as s:
        return declare_incident(
            s, data=parse_incident(obj, now=NOW, require_id=id is not None), now=NOW, source=source, actor="U1"
        )


def get(engine, model, row_id):
    with session_scope(engine, write=False) as s:
        return s.get(model, row_id)


def call(engine, fn, **kwargs):
    with session_scope(engine) as s:
        return fn(s, **kwargs)


# --- deploys ------------------------------------------------------------------------------------

def test_a_retried_deploy_with_the_same_id_returns_the_stored_one(engine):
    first = add_deploy(engine, "gh-run-1", version="1.0", commits=[{"sha": "abcd01", "committed_at": iso(NOW - 2 * HOUR)}])
    again = add_deploy(engine, "gh-run-1", version="1.0", commits=[{"sha": "abcd01", "committed_at": iso(NOW - 2 * HOUR)}])
    assert first.created and not again.created
    assert again.deploy.id == first.deploy.id and again.ref == first.ref == f"D-{first.deploy.id}"
    counts = row_counts(engine)
    assert counts["deploy"] == 1 and counts["deploy_commit"] == 1 and counts["lead_sample"] == 1


def test_a_deploy_records_its_commits_and_a_lead_sample_only_in_production(engine):
    prod = add_deploy(engine, "p", environment="Production", commits=["abcd01"])
    stg = add_deploy(engine, "s", environment="staging", commits=["abcd02"])
    failed = add_deploy(engine, "f", status="failure", commits=["abcd03"])
    assert prod.deploy.environment == "production" and prod.service.name == "checkout"
    assert stg.deploy.environment == "staging"
    with session_scope(engine, write=False) as s:
        samples = s.exec(select(LeadSample)).all()
    assert [(x.sha, x.deploy_id) for x in samples] == [("abcd01", prod.deploy.id)]
    assert failed.deploy.status == "failure"


def test_a_deploy_warns_about_open_incidents_of_its_service(engine):
    add_incident(engine, "i1", started=NOW - 2 * HOUR)
    add_incident(engine, "i2", started=NOW - 2 * HOUR, service="search")
    add_incident(engine, "i3", started=NOW - 3 * HOUR, resolved_at=iso(NOW - 2 * HOUR))
    outcome = add_deploy(engine, "d1")
    assert [i.external_id for i in outcome.open_incidents] == ["i1"]


def test_rollback_of_another_service_is_refused_and_nothing_is_stored(engine):
    add_deploy(engine, "s1", service="search", at=NOW - 2 * HOUR)
    before = row_counts(engine)
    with pytest.raises(ValidationError) as err:
        add_deploy(engine, "c1", service="checkout", rollback_of="s1")
    assert err.value.field == "rollback_of" and "another service" in err.value.message
    assert row_counts(engine) == before  # not even the new service


def test_rollback_of_a_later_deploy_is_refused(engine):
    add_deploy(engine, "d2", at=NOW - HOUR)
    with pytest.raises(ValidationError) as err:
        add_deploy(engine, "d1", at=NOW - 2 * HOUR, rollback_of="d2")
    assert err.value.field == "rollback_of" and "after" in err.value.message
    assert row_counts(engine)["deploy"] == 1


def test_rollback_of_an_unknown_deploy_is_refused_naming_the_field(engine):
    with pytest.raises(ValidationError) as err:
        add_deploy(engine, "d1", rollback_of="nope")
    assert err.value.field == "rollback_of" and "nope" in err.value.message
    assert row_counts(engine)["deploy"] == 0


def test_a_recorded_rollback_marks_the_reverted_deploy_as_a_change_failure(engine):
    target = add_deploy(engine, "d1", at=NOW - 2 * HOUR)
    rollback = add_deploy(engine, "d2", at=NOW - HOUR, rollback_of="d1")
    assert rollback.deploy.rollback_of_id == target.deploy.id
    assert get(engine, Deploy, target.deploy.id).change_failure
    assert not get(engine, Deploy, rollback.deploy.id).change_failure


def test_a_failed_rollback_attempt_does_not_mark_the_target(engine):
    target = add_deploy(engine, "d1", at=NOW - 2 * HOUR)
    add_deploy(engine, "d2", at=NOW - HOUR, rollback_of="d1", status="failure")
    assert not get(engine, Deploy, target.deploy.id).change_failure


def test_invalid_deploy_input_names_every_bad_field(engine):
    with pytest.raises(ValidationError) as err:
        parse_deploy({"id": "x", "service": "", "deployed_at": "yesterday", "status": "ok"}, now=NOW)
    fields = {f for f, _ in err.value.errors}
    assert fields == {"service", "deployed_at", "status"}
    for name in fields:
        assert name in err.value.message
    assert row_counts(engine)["deploy"] == 0


# --- marking change failures ---------------------------------------------------------------------

def test_mark_change_failure_flags_the_deploy_once(engine):
    d = add_deploy(engine, "d1")
    deploy, changed = call(engine, mark_change_failure, ref=d.ref, reason="broke checkout", actor="U1")
    assert changed and deploy.change_failure and deploy.marked_failed and deploy.failure_reason == "broke checkout"
    deploy, changed = call(engine, mark_change_failure, ref=d.ref, reason=None, actor="U1")
    assert not changed and deploy.change_failure and deploy.failure_reason == "broke checkout"
    cfr = metrics(engine, end=NOW, days=1)["change_failure_rate"]
    assert (cfr["failed"], cfr["deploys"]) == (1, 1)


def test_mark_change_failure_accepts_bare_numbers_and_external_ids(engine):
    d = add_deploy(engine, "gh-7")
    assert call(engine, mark_change_failure, ref=str(d.deploy.id), reason=None, actor=None)[1]
    other = add_deploy(engine, "gh-8")
    deploy, changed = call(engine, mark_change_failure, ref="gh-8", reason=None, actor=None, external_first=True)
    assert changed and deploy.id == other.deploy.id


def test_mark_change_failure_of_an_unknown_or_malformed_reference_fails(engine):
    with pytest.raises(NotFound):
        call(engine, mark_change_failure, ref="D-999", reason=None, actor=None)
    with pytest.raises(ValidationError):
        call(engine, mark_change_failure, ref="deploy seven", reason=None, actor=None)


# --- record_rollback -----------------------------------------------------------------------------

def test_record_rollback_goes_back_to_the_previous_good_version(engine):
    add_deploy(engine, "v1", at=NOW - 4 * HOUR, version="1.0")
    add_deploy(engine, "v1-stg", at=NOW - 3 * HOUR - 30 * MIN, version="0.9-stg", environment="staging")
    bad = add_deploy(engine, "v2", at=NOW - 3 * HOUR, version="2.0", change_failure=True)  # not good
    current = add_deploy(engine, "v3", at=NOW - 2 * HOUR, version="3.0")

    outcome = call(engine, record_rollback, service="Checkout", now=NOW, actor="U1")
    rb = outcome.deploy
    assert outcome.created and rb.version == "1.0"
    assert rb.rollback_of_id == current.deploy.id and rb.environment == "production" and rb.status == "success"
    assert rb.deployed_at == NOW
    assert get(engine, Deploy, current.deploy.id).change_failure
    assert get(engine, Deploy, bad.deploy.id).change_failure
    cfr = metrics(engine, end=NOW + MIN, days=1)["change_failure_rate"]
    assert (cfr["failed"], cfr["deploys"]) == (2, 4)  # v1, v2, v3 and the rollback; v2, v3 failed


def test_record_rollback_to_a_named_version(engine):
    add_deploy(engine, "v0", at=NOW - 4 * HOUR, version="0.5")
    add_deploy(engine, "v1", at=NOW - 3 * HOUR, version="1.0")
    current = add_deploy(engine, "v2", at=NOW - 2 * HOUR, version="2.0")
    outcome = call(engine, record_rollback, service="checkout", now=NOW, to_version="0.5", actor=None)
    assert outcome.deploy.version == "0.5" and outcome.deploy.rollback_of_id == current.deploy.id


def test_record_rollback_to_a_version_never_deployed_is_refused(engine):
    add_deploy(engine, "v1", at=NOW - 3 * HOUR, version="1.0")
    add_deploy(engine, "v1-stg", at=NOW - 3 * HOUR, version="0.9", environment="staging")
    add_deploy(engine, "v2", at=NOW - 2 * HOUR, version="2.0")
    for version in ("0.0.0-nonexistent", "0.9"):  # 0.9 ran in staging only
        with pytest.raises(ValidationError) as err:
            call(engine, record_rollback, service="checkout", now=NOW, to_version=version, actor=None)
        assert f"never ran version `{version}` in production" in err.value.message and "Versions it ran before: 1.0." in err.value.message
    assert row_counts(engine)["deploy"] == 3


def test_record_rollback_without_an_earlier_good_version_is_not_found(engine):
    add_deploy(engine, "v1", at=NOW - 2 * HOUR, version="1.0")
    with pytest.raises(NotFound) as err:
        call(engine, record_rollback, service="checkout", now=NOW, actor=None)
    assert "to=" in err.value.message
    assert row_counts(engine)["deploy"] == 1


def test_record_rollback_to_the_running_version_is_refused(engine):
    add_deploy(engine, "v1", at=NOW - 2 * HOUR, version="1.0")
    with pytest.raises(ValidationError):
        call(engine, record_rollback, service="checkout", now=NOW, to_version="1.0", actor=None)


def test_record_rollback_of_an_unknown_service_or_one_without_deploys_is_not_found(engine):
    with pytest.raises(NotFound):
        call(engine, record_rollback, service="nope", now=NOW, actor=None)
    add_deploy(engine, "s1", environment="staging", version="1.0")
    with pytest.raises(NotFound):
        call(engine, record_rollback, service="checkout", now=NOW, actor=None)


# --- incidents ------------------------------------------------------------------------------------

def test_a_retried_incident_with_the_same_id_changes_nothing(engine):
    first = add_incident(engine, "pd-1", severity="sev1", title="Checkout down")
    again = add_incident(engine, "pd-1", severity="sev1", title="Checkout down")
    assert first.changed and not again.changed
    assert again.incident.id == first.incident.id and again.message and first.ref in again.message
    assert row_counts(engine)["incident"] == 1


def test_an_incident_defaults_to_production_sev3_and_now(engine):
    with session_scope(engine) as s:
        outcome = declare_incident(s, data=parse_incident({"service": "Checkout"}, require_id=False), now=NOW)
    i = outcome.incident
    assert (i.environment, i.severity, i.started_at, i.state) == ("production", "sev3", NOW, "open")
    assert i.title == "Incident on Checkout"


def test_declaring_with_a_cause_of_another_service_is_refused_and_nothing_is_stored(engine):
    d = add_deploy(engine, "s1", service="search")
    before = row_counts(engine)
    with pytest.raises(ValidationError) as err:
        add_incident(engine, "i1", caused_by="s1")
    assert err.value.field == "caused_by" and "search" in err.value.message
    assert row_counts(engine) == before
    assert not get(engine, Deploy, d.deploy.id).change_failure


def test_declaring_with_an_unknown_cause_is_refused_naming_the_field(engine):
    with pytest.raises(ValidationError) as err:
        add_incident(engine, "i1", caused_by="gh-404")
    assert err.value.field == "caused_by" and "gh-404" in err.value.message
    assert row_counts(engine)["incident"] == 0 and row_counts(engine)["service"] == 0


def test_declaring_resolved_or_acknowledged_before_started_is_refused(engine):
    started = NOW - HOUR
    for name in ("resolved_at", "acknowledged_at"):
        with pytest.raises(ValidationError) as err:
            parse_incident({"id": "x", "service": "checkout", "started_at": iso(started), name: iso(started - MIN)})
        assert err.value.field == name
        # and the service refuses it too when handed the input directly
        data = IncidentInput(service="checkout", started_at=started, **{name: started - MIN})
        with pytest.raises(ValidationError) as err:
            call(engine, declare_incident, data=data, now=NOW)
        assert err.value.field == name
    assert row_counts(engine)["incident"] == 0


def test_a_declared_cause_makes_the_deploy_a_change_failure(engine):
    d = add_deploy(engine, "d1", at=NOW - 2 * HOUR)
    i = add_incident(engine, "i1", started=NOW - HOUR, caused_by="d1")
    assert i.incident.caused_by_id == d.deploy.id
    assert get(engine, Deploy, d.deploy.id).change_failure


def test_acknowledging_twice_reports_that_it_was_already_done(engine):
    ref = add_incident(engine, "i1").ref
    first = call(engine, acknowledge_incident, ref=ref, now=NOW - 50 * MIN, actor="U1")
    second = call(engine, acknowledge_incident, ref=ref, now=NOW, actor="U2")
    assert first.changed and first.incident.acknowledged_at == NOW - 50 * MIN
    assert first.incident.ack_seconds == 600
    assert not second.changed and "already acknowledged" in second.message and "U1" in second.message
    assert get(engine, Incident, first.incident.id).acknowledged_by == "U1"


def test_resolving_twice_reports_that_it_was_already_resolved(engine):
    ref = add_incident(engine, "i1").ref
    first = call(engine, resolve_incident, ref=ref, now=NOW, actor="U1", note="fixed")
    second = call(engine, resolve_incident, ref=ref, now=NOW + MIN, actor="U2")
    assert first.changed and first.incident.restore_seconds == 3600 and first.incident.state == "resolved"
    assert not second.changed and "already resolved" in second.message
    stored = get(engine, Incident, first.incident.id)
    assert stored.resolved_at == NOW and stored.resolved_by == "U1" and stored.resolution_note == "fixed"
    late_ack = call(engine, acknowledge_incident, ref=ref, now=NOW + 2 * MIN, actor="U3")
    assert not late_ack.changed and "already resolved" in late_ack.message


def test_resolving_or_acknowledging_before_the_start_is_refused(engine):
    ref = add_incident(engine, "i1", started=NOW - HOUR).ref
    with pytest.raises(ValidationError):
        call(engine, resolve_incident, ref=ref, now=NOW, actor=None, at=NOW - 2 * HOUR)
    with pytest.raises(ValidationError):
        call(engine, acknowledge_incident, ref=ref, now=NOW, actor=None, at=NOW - 2 * HOUR)
    stored = get(engine, Incident, int(ref.split("-")[1]))
    assert stored.resolved_at is None and stored.acknowledged_at is None


def test_resolving_or_acknowledging_in_the_future_is_refused(engine):
    ref = add_incident(engine, "i1", started=NOW - HOUR).ref
    for fn, name in ((acknowledge_incident, "acknowledged_at"), (resolve_incident, "resolved_at")):
        with pytest.raises(ValidationError) as err:
            call(engine, fn, ref=ref, now=NOW, actor=None, at=NOW + 6 * MIN)
        assert err.value.field == name
    assert call(engine, resolve_incident, ref=ref, now=NOW, actor=None, at=NOW + 5 * MIN).changed  # tolerance


def test_an_unknown_incident_is_not_found(engine):
    with pytest.raises(NotFound):
        call(engine, resolve_incident, ref="INC-42", now=NOW, actor=None)
    with pytest.raises(ValidationError):
        call(engine, acknowledge_incident, ref="incident forty-two", now=NOW, actor=None)


def test_linking_a_new_cause_moves_the_change_failure_flag(engine):
    old = add_deploy(engine, "d1", at=NOW - 3 * HOUR)
    new = add_deploy(engine, "d2", at=NOW - 2 * HOUR)
    i = add_incident(engine, "i1", started=NOW - HOUR, caused_by="d1", resolved_at=iso(NOW - 30 * MIN))
    assert get(engine, Deploy, old.deploy.id).change_failure
    assert i.incident.recovery_seconds == 150 * 60

    moved = call(engine, link_cause, ref=i.ref, deploy=new.ref, now=NOW, actor="U1")
    assert moved.changed and moved.incident.caused_by_id == new.deploy.id
    assert not get(engine, Deploy, old.deploy.id).change_failure
    assert get(engine, Deploy, new.deploy.id).change_failure
    assert get(engine, Incident, i.incident.id).recovery_seconds == 90 * 60  # from d2's deploy

    same = call(engine, link_cause, ref=i.ref, deploy=new.ref, now=NOW, actor="U1")
    assert not same.changed and "already linked" in same.message


def test_moving_a_cause_keeps_the_old_deploy_failed_when_something_else_still_says_so(engine):
    old = add_deploy(engine, "d1", at=NOW - 3 * HOUR, change_failure=True)
    new = add_deploy(engine, "d2", at=NOW - 2 * HOUR)
    i = add_incident(engine, "i1", caused_by="d1")
    add_incident(engine, "i2", caused_by="d1")
    call(engine, link_cause, ref=i.ref, deploy=new.ref, now=NOW, actor=None)
    assert get(engine, Deploy, old.deploy.id).change_failure  # marked, and i2 still points at it


def test_linking_a_deploy_of_another_service_is_refused(engine):
    other = add_deploy(engine, "s1", service="search")
    i = add_incident(engine, "i1")
    with pytest.raises(ValidationError) as err:
        call(engine, link_cause, ref=i.ref, deploy=other.ref, now=NOW, actor=None)
    assert err.value.field == "caused_by"
    assert get(engine, Incident, i.incident.id).caused_by_id is None
    assert not get(engine, Deploy, other.deploy.id).change_failure


def test_post_update_adds_to_the_timeline_and_refuses_empty_text(engine):
    i = add_incident(engine, "i1")
    call(engine, post_update, ref=i.ref, text="  rolled back, watching  ", now=NOW, actor="U1")
    with pytest.raises(ValidationError) as err:
        call(engine, post_update, ref=i.ref, text="   ", now=NOW, actor="U1")
    assert err.value.field == "update"  # the PATCH field it comes in as
    with pytest.raises(ValidationError):
        call(engine, post_update, ref=i.ref, text="x" * 2001, now=NOW, actor="U1")
    with session_scope(engine, write=False) as s:
        events = [(e.kind, e.text) for e in timeline(s, i.incident.id)]
    assert events[0][0] == "declared" and events[-1] == ("update", "rolled back, watching")


def test_roll_back_cause_records_the_rollback_and_links_the_suspect(engine):
    add_deploy(engine, "v1", at=NOW - 3 * HOUR, version="1.0")
    suspect = add_deploy(engine, "v2", at=NOW - 2 * HOUR, version="2.0")
    with session_scope(engine) as s:
        i = declare_incident(
            s, data=parse_incident({"id": "i1", "service": "checkout", "started_at": iso(NOW - HOUR)}), now=NOW,
            suspect=suspect.ref,
        )
    assert not get(engine, Deploy, suspect.deploy.id).change_failure  # only a suspect so far

    outcome = call(engine, roll_back_cause, ref=i.ref, now=NOW, actor="U1")
    assert outcome.changed and outcome.incident.caused_by_id == suspect.deploy.id
    assert get(engine, Deploy, suspect.deploy.id).change_failure
    with session_scope(engine, write=False) as s:
        rollbacks = s.exec(select(Deploy).where(Deploy.rollback_of_id == suspect.deploy.id)).all()
    assert [r.version for r in rollbacks] == ["1.0"]

    again = call(engine, roll_back_cause, ref=i.ref, now=NOW, actor="U1")
    assert not again.changed and "already rolled back" in again.message


def test_roll_back_cause_without_a_suspect_is_a_state_error(engine):
    i = add_incident(engine, "i1")
    with pytest.raises(StateError):
        call(engine, roll_back_cause, ref=i.ref, now=NOW, actor=None)


def test_listings_show_open_incidents_and_latest_deploys(engine):
    add_incident(engine, "i1", severity="sev2")
    add_incident(engine, "i2", severity="sev1")
    add_incident(engine, "i3", resolved_at=iso(NOW - MIN))
    add_deploy(engine, "d1", at=NOW - 2 * HOUR)
    add_deploy(engine, "d2", at=NOW - HOUR, environment="staging")
    with session_scope(engine, write=False) as s:
        assert [i.external_id for i, _ in list_open_incidents(s)] == ["i2", "i1"]
        assert [d.external_id for d, _ in list_deploys(s)] == ["d2", "d1"]
        assert [d.external_id for d, _ in list_deploys(s, environment="Staging")] == ["d2"]
        assert list_deploys(s, service="search") == []


# --- mitigation and cancellation --------------------------------------------------------------

def test_mitigating_is_refused_before_the_start_in_the_future_and_once_done(engine):
    from bot.services.incidents import mitigate_incident

    ref = add_incident(engine, "i1", started=NOW - HOUR).ref
    for at, field in ((NOW - 2 * HOUR, "mitigated_at"), (NOW + 6 * MIN, "mitigated_at")):
        with pytest.raises(ValidationError) as err:
            call(engine, mitigate_incident, ref=ref, now=NOW, actor=None, at=at)
        assert err.value.field == field
    done = call(engine, mitigate_incident, ref=ref, now=NOW, actor="U1", at=NOW - 30 * MIN, note="flag off")
    assert done.changed and done.incident.restore_seconds == 30 * 60 and done.incident.recovered_at == NOW - 30 * MIN
    again = call(engine, mitigate_incident, ref=ref, now=NOW, actor="U2")
    assert not again.changed and "already mitigated" in again.message
    # a resolution before the mitigation is refused; after it, the restore time stays at the mitigation
    with pytest.raises(ValidationError):
        call(engine, resolve_incident, ref=ref, now=NOW, actor=None, at=NOW - 40 * MIN)
    resolved = call(engine, resolve_incident, ref=ref, now=NOW, actor=None)
    assert resolved.incident.mitigated_at == NOW - 30 * MIN and resolved.incident.restore_seconds == 30 * 60
    assert [e.kind for e in call(engine, timeline, incident_id=resolved.incident.id)][-2:] == ["mitigated", "resolved"]


def test_a_cancelled_incident_leaves_the_open_lists_and_its_cause(engine):
    from bot.services.incidents import cancel_incident

    d = add_deploy(engine, "d1", at=NOW - 2 * HOUR)
    ref = add_incident(engine, "i1", caused_by="d1").ref
    assert get(engine, Deploy, d.deploy.id).change_failure
    with pytest.raises(ValidationError):
        call(engine, cancel_incident, ref=ref, reason="  ", now=NOW, actor="U1")
    out = call(engine, cancel_incident, ref=ref, reason="false alarm", now=NOW, actor="U1")
    assert out.changed and out.incident.state == "cancelled"
    assert not get(engine, Deploy, d.deploy.id).change_failure
    with session_scope(engine, write=False) as s:
        assert list_open_incidents(s) == []
    assert add_deploy(engine, "d2").open_incidents == [], "a cancelled incident is no warning on a deploy"
    later = call(engine, resolve_incident, ref=ref, now=NOW, actor="U1")
    assert not later.changed and "cancelled" in later.message
    resolved = add_incident(engine, "i2", resolved_at=iso(NOW)).ref
    with pytest.raises(StateError):
        call(engine, cancel_incident, ref=resolved, reason="oops", now=NOW, actor="U1")
