"""POST /api/v1/incidents and PATCH /api/v1/incidents/{id} over real HTTP, with what they queue for Slack (the outbox)."""

from __future__ import annotations

import threading

I = "/api/v1/incidents"
D = "/api/v1/deploys"
_DROP = object()


def incident(**over):
    body = {
        "id": "pd-Q1X",
        "service": "checkout",
        "environment": "production",
        "severity": "sev2",
        "title": "Checkout 5xx",
        "started_at": "2026-11-25T10:30:00Z",
    }
    body.update(over)
    return {k: v for k, v in body.items() if v is not _DROP}


def ref_id(body) -> int:
    assert body["ref"].startswith("INC-")
    return int(body["ref"][4:])


def seed_deploys(ingest):
    for body in (
        {"id": "co-1", "service": "checkout", "deployed_at": "2026-11-25T10:00:00Z"},
        {"id": "pay-1", "service": "payments", "deployed_at": "2026-11-25T10:00:00Z"},
    ):
        assert ingest.client.post(D, body).status == 201


def test_declare_is_201_notifies_and_a_retry_is_200_without_a_second_notice(ingest):
    r = ingest.client.post(I, incident())
    assert r.status == 201, r
    body = r.json()
    assert body["id"] == "pd-Q1X"
    assert body["service"] == "checkout" and body["severity"] == "sev2" and body["title"] == "Checkout 5xx"
    assert body["state"] == "open"
    assert body["started_at"] == "2026-11-25T10:30:00Z"
    assert body["acknowledged_at"] is None and body["resolved_at"] is None and body["caused_by"] is None
    assert body["source"] == "api"
    assert ingest.events == [("incident.declared", ref_id(body))]

    again = ingest.client.post(I, incident(title="changed title"))
    assert again.status == 200, again
    assert again.json() == body
    assert ingest.count("incident") == 1
    assert ingest.events == [("incident.declared", ref_id(body))]


def test_a_backfilled_resolved_incident_carries_its_time_to_restore(ingest):
    seed_deploys(ingest)
    r = ingest.client.post(I, incident(acknowledged_at="2026-11-25T10:35:00Z", resolved_at="2026-11-25T11:10:00Z", caused_by="co-1"))
    assert r.status == 201, r
    body = r.json()
    assert body["state"] == "resolved"
    assert body["time_to_restore_seconds"] == 2400
    assert body["caused_by"] == "co-1" and body["caused_by_ref"].startswith("D-")
    deploys = {d["id"]: d for d in ingest.client.get(D).json()["items"]}
    assert deploys["co-1"]["change_failure"] is True


def test_minimal_incident_starts_now_with_default_severity(ingest):
    r = ingest.client.post(I, {"id": "m-1", "service": "checkout"})
    assert r.status == 201, r
    body = r.json()
    assert body["started_at"] == "2026-11-25T12:00:00Z"  # the runtime clock
    assert body["severity"] == "sev3"
    assert body["title"]
    assert body["environment"] == "production"


def test_concurrent_retries_of_one_incident_never_create_a_duplicate(ingest):
    results: list = []
    barrier = threading.Barrier(8)

    def worker():
        conn = ingest.client.connection()
        conn.connect()
        barrier.wait()
        results.append(ingest.client.post(I, incident(service="new-svc"), conn=conn))
        conn.close()

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(r.status for r in results) == [200] * 7 + [201], results
    assert ingest.count("incident") == 1
    assert len([e for e in ingest.events if e[0] == "incident.declared"]) == 1


BAD = [
    ("id-missing", {"id": _DROP}, "id"),
    ("id-empty", {"id": ""}, "id"),
    ("id-too-long", {"id": "i" * 201}, "id"),
    ("service-missing", {"service": _DROP}, "service"),
    ("service-bad", {"service": "Check|Out"}, "service"),
    ("environment-bad", {"environment": "prod/eu west"}, "environment"),
    ("severity-unknown", {"severity": "sev9"}, "severity"),
    ("severity-word", {"severity": "critical"}, "severity"),
    ("title-too-long", {"title": "t" * 301}, "title"),
    ("title-object", {"title": {"a": 1}}, "title"),
    ("started_at-garbage", {"started_at": "this morning"}, "started_at"),
    ("started_at-future", {"started_at": "2026-11-26T00:00:00Z"}, "started_at"),
    ("acknowledged_at-garbage", {"acknowledged_at": "later"}, "acknowledged_at"),
    ("acknowledged_at-before-start", {"acknowledged_at": "2026-11-25T10:00:00Z"}, "acknowledged_at"),
    ("resolved_at-before-start", {"resolved_at": "2026-11-25T10:29:59Z"}, "resolved_at"),
    ("resolved_at-before-default-start", {"started_at": _DROP, "resolved_at": "2026-11-25T11:00:00Z"}, "resolved_at"),
    ("resolved_at-future", {"resolved_at": "2026-12-01T00:00:00Z"}, "resolved_at"),
    ("caused_by-other-service", {"caused_by": "pay-1"}, "caused_by"),
    ("caused_by-unknown", {"caused_by": "no-such-deploy"}, "caused_by"),
    ("caused_by-bool", {"caused_by": False}, "caused_by"),
    ("unknown-field", {"priority": "P1"}, "priority"),
    ("type-deploy", {"type": "deploy"}, "type"),
]


def test_bad_incident_input_is_422_naming_the_field_and_stores_nothing(ingest, subtests):
    seed_deploys(ingest)
    before = ingest.stored_counts()
    for case, overrides, field in BAD:
        with subtests.test(case=case, field=field):
            r = ingest.client.post(I, incident(**overrides))
            assert r.status == 422, r
            assert field in r.fields(), r
            assert ingest.stored_counts() == before
    assert ingest.events == []


def test_invalid_json_and_oversized_bodies(ingest):
    assert ingest.client.post(I, raw=b"{'id': 1}").status == 422
    assert ingest.client.post(I, incident(title="t" * 1_000_001)).status == 413
    assert ingest.count("incident") == 0
    declared(ingest)
    events = ingest.count("incident_event")
    assert ingest.client.patch(f"{I}/pd-Q1X", {"update": "u" * 1_000_001}).status == 413
    assert ingest.client.patch(f"{I}/pd-Q1X", raw=b'{"update": ').status == 422
    assert ingest.count("incident_event") == events and ingest.events == []


# --- PATCH --------------------------------------------------------------------------------------

def declared(ingest, **over) -> dict:
    r = ingest.client.post(I, incident(**over))
    assert r.status == 201, r
    ingest.events.clear()
    return r.json()


def test_ack_and_resolve_with_now_use_the_runtime_clock(ingest):
    inc = declared(ingest, started_at=None)  # started "now": 12:00
    ingest.clock.advance(minutes=4)
    r = ingest.client.patch(f"{I}/pd-Q1X", {"acknowledged_at": "now"})
    assert r.status == 200, r
    assert r.json()["state"] == "acknowledged"
    assert r.json()["acknowledged_at"] == "2026-11-25T12:04:00Z"
    assert ingest.events == [("incident.changed", ref_id(inc))]
    ingest.clock.advance(minutes=41)
    r = ingest.client.patch(f"{I}/pd-Q1X", {"resolved_at": "now", "note": "rolled back"})
    assert r.status == 200, r
    body = r.json()
    assert body["state"] == "resolved"
    assert body["resolved_at"] == "2026-11-25T12:45:00Z"
    assert body["time_to_restore_seconds"] == 45 * 60
    assert ingest.events == [("incident.changed", ref_id(inc))] * 2


def test_patch_accepts_explicit_times_and_the_inc_reference(ingest):
    inc = declared(ingest)
    r = ingest.client.patch(f"{I}/{inc['ref']}", {"acknowledged_at": "2026-11-25T10:40:00Z", "resolved_at": "2026-11-25T11:30:00+01:00"})
    assert r.status == 200, r
    body = r.json()
    assert body["acknowledged_at"] == "2026-11-25T10:40:00Z"
    assert body["resolved_at"] == "2026-11-25T10:30:00Z"
    assert body["time_to_restore_seconds"] == 0
    assert ingest.events == [("incident.changed", ref_id(inc))] * 2  # a thread line for each change: acknowledged, resolved


def test_patch_caused_by_links_the_deploy_and_makes_it_a_change_failure(ingest):
    seed_deploys(ingest)
    inc = declared(ingest)
    r = ingest.client.patch(f"{I}/pd-Q1X", {"caused_by": "co-1"})
    assert r.status == 200, r
    assert r.json()["caused_by"] == "co-1"
    assert ingest.events == [("incident.changed", ref_id(inc))]
    deploys = {d["id"]: d for d in ingest.client.get(D).json()["items"]}
    assert deploys["co-1"]["change_failure"] is True
    # linking the same cause again changes nothing and notifies nobody
    assert ingest.client.patch(f"{I}/pd-Q1X", {"caused_by": "co-1"}).status == 200
    assert len(ingest.events) == 1


def test_patch_update_adds_a_timeline_line_and_notifies(ingest):
    inc = declared(ingest)
    before = ingest.count("incident_event")
    r = ingest.client.patch(f"{I}/pd-Q1X", {"update": "Mitigation in progress"})
    assert r.status == 200, r
    assert ingest.count("incident_event") == before + 1
    assert ingest.rows("SELECT kind, text FROM incident_event ORDER BY id DESC")[0] == ("update", "Mitigation in progress")
    assert ingest.events == [("incident.changed", ref_id(inc))]


def test_a_patch_that_changes_nothing_is_200_and_notifies_nobody(ingest):
    declared(ingest, resolved_at="2026-11-25T11:00:00Z")
    for body in ({"resolved_at": "now"}, {"acknowledged_at": "now"}):
        r = ingest.client.patch(f"{I}/pd-Q1X", body)
        assert r.status == 200, r
        assert r.json()["resolved_at"] == "2026-11-25T11:00:00Z"
    assert ingest.events == []


def test_patch_unknown_fields_and_bad_bodies_are_422(ingest, subtests):
    declared(ingest)
    before = ingest.stored_counts()
    cases = [
        ("unknown-field", {"state": "resolved"}, "state"),
        ("unknown-and-known", {"resolved_at": "now", "colour": "red"}, "colour"),
        ("severity-garbage", {"severity": "sev9"}, "severity"),
        ("mitigated_at-before-start", {"mitigated_at": "2026-11-25T10:00:00Z"}, "mitigated_at"),
        ("mitigated_at-garbage", {"mitigated_at": "soon"}, "mitigated_at"),
        ("status-not-cancelled", {"status": "resolved"}, "status"),
        ("cancel-without-reason", {"status": "cancelled"}, "reason"),
        ("cancel-blank-reason", {"status": "cancelled", "reason": "  "}, "reason"),
        ("reason-without-status", {"reason": "oops"}, "reason"),
        ("resolved_at-garbage", {"resolved_at": "soon"}, "resolved_at"),
        ("resolved_at-number", {"resolved_at": 1764072000}, "resolved_at"),
        ("acknowledged_at-garbage", {"acknowledged_at": "tomorrow"}, "acknowledged_at"),
        ("resolved_at-before-start", {"resolved_at": "2026-11-25T10:00:00Z"}, "resolved_at"),
        ("acknowledged_at-before-start", {"acknowledged_at": "2026-11-25T10:00:00Z"}, "acknowledged_at"),
        ("caused_by-unknown", {"caused_by": "no-such-deploy"}, "caused_by"),
    ]
    for case, body, field in cases:
        with subtests.test(case=case, field=field):
            r = ingest.client.patch(f"{I}/pd-Q1X", body)
            assert r.status == 422, r
            assert field in r.fields(), r
            assert ingest.stored_counts() == before
    for case, body in (("empty-object", {}), ("list", ["resolved_at"]), ("string", "now")):
        with subtests.test(case=case):
            assert ingest.client.patch(f"{I}/pd-Q1X", body).status == 422
    with subtests.test(case="invalid-json"):
        assert ingest.client.patch(f"{I}/pd-Q1X", raw=b"{resolved_at: now}").status == 422
    assert ingest.client.get(f"{I}?state=open").json()["items"][0]["state"] == "open"
    assert ingest.events == []


def test_patch_rejects_times_in_the_future_like_post_does(ingest, subtests):
    """POST refuses instants more than 5 minutes ahead; PATCH must not let them in either."""
    declared(ingest)
    for field in ("acknowledged_at", "resolved_at"):
        with subtests.test(field=field):
            r = ingest.client.patch(f"{I}/pd-Q1X", {field: "2027-01-01T00:00:00Z"})
            assert r.status == 422, r
            assert field in r.fields(), r
    item = ingest.client.get(I).json()["items"][0]
    assert item["acknowledged_at"] is None and item["resolved_at"] is None


def test_a_patch_is_all_or_nothing(ingest):
    """A valid cause with an invalid resolve time: 422, and the cause is not linked either."""
    seed_deploys(ingest)
    declared(ingest)
    r = ingest.client.patch(f"{I}/pd-Q1X", {"caused_by": "co-1", "resolved_at": "2026-11-25T09:00:00Z"})
    assert r.status == 422, r
    item = ingest.client.get(I).json()["items"][0]
    assert item["caused_by"] is None and item["resolved_at"] is None
    deploys = {d["id"]: d for d in ingest.client.get(D).json()["items"]}
    assert deploys["co-1"]["change_failure"] is False
    assert ingest.events == []


def test_patch_caused_by_of_another_service_is_422(ingest):
    seed_deploys(ingest)
    declared(ingest)
    r = ingest.client.patch(f"{I}/pd-Q1X", {"caused_by": "pay-1"})
    assert r.status == 422 and "caused_by" in r.fields(), r


def test_patch_of_an_unknown_incident_is_404(ingest):
    declared(ingest)
    for ref in ("pd-nope", "INC-999", "999"):
        r = ingest.client.patch(f"{I}/{ref}", {"resolved_at": "now"})
        assert r.status == 404, (ref, r)
        assert r.json()["error"]
    assert ingest.client.get(f"{I}?state=open").json()["items"][0]["id"] == "pd-Q1X"
    assert ingest.events == []


# --- the DORA 2024 fields: mitigation, severity, cancellation, not a change ----------------------

def test_patch_mitigated_at_ends_the_time_to_restore_and_keeps_the_incident_open(ingest):
    inc = declared(ingest)  # started 10:30
    r = ingest.client.patch(f"{I}/pd-Q1X", {"mitigated_at": "2026-11-25T11:00:00Z"})
    assert r.status == 200, r
    body = r.json()
    assert body["state"] == "mitigated" and body["mitigated_at"] == "2026-11-25T11:00:00Z" and body["resolved_at"] is None
    assert body["time_to_restore_seconds"] == 30 * 60
    assert ingest.events == [("incident.changed", ref_id(inc))]
    # resolving later keeps the mitigation instant and the time to restore measured to it
    body = ingest.client.patch(f"{I}/pd-Q1X", {"resolved_at": "2026-11-25T11:45:00Z"}).json()
    assert body["state"] == "resolved" and body["mitigated_at"] == "2026-11-25T11:00:00Z"
    assert body["time_to_restore_seconds"] == 30 * 60
    # a resolution before the mitigation is refused
    inc2 = ingest.client.post(I, incident(id="pd-2")).json()
    ingest.client.patch(f"{I}/pd-2", {"mitigated_at": "2026-11-25T11:00:00Z"})
    r = ingest.client.patch(f"{I}/pd-2", {"resolved_at": "2026-11-25T10:50:00Z"})
    assert r.status == 422 and "resolved_at" in r.fields(), r
    assert ingest.client.get(f"{I}?state=open").json()["items"][0]["ref"] == inc2["ref"]


def test_resolving_without_a_mitigation_mitigates_at_the_same_instant(ingest):
    declared(ingest)
    body = ingest.client.patch(f"{I}/pd-Q1X", {"resolved_at": "2026-11-25T11:10:00Z"}).json()
    assert body["mitigated_at"] == body["resolved_at"] == "2026-11-25T11:10:00Z"
    created = ingest.client.post(I, incident(id="pd-2", resolved_at="2026-11-25T11:20:00Z")).json()
    assert created["mitigated_at"] == "2026-11-25T11:20:00Z"


def test_create_takes_mitigated_at_status_and_not_caused_by_change(ingest, subtests):
    r = ingest.client.post(I, incident(mitigated_at="2026-11-25T10:50:00Z", not_caused_by_change=True))
    assert r.status == 201, r
    body = r.json()
    assert body["state"] == "mitigated" and body["time_to_restore_seconds"] == 20 * 60
    assert body["not_caused_by_change"] is True and body["status"] is None
    cancelled = ingest.client.post(I, incident(id="pd-2", status="cancelled")).json()
    assert cancelled["state"] == "cancelled" and cancelled["status"] == "cancelled"
    before = ingest.stored_counts()
    for case, over, field in (
        ("mitigated-after-resolved", {"mitigated_at": "2026-11-25T11:30:00Z", "resolved_at": "2026-11-25T11:00:00Z"}, "mitigated_at"),
        ("mitigated-before-start", {"mitigated_at": "2026-11-25T10:00:00Z"}, "mitigated_at"),
        ("bad-status", {"status": "open"}, "status"),
        ("not-a-flag", {"not_caused_by_change": "no"}, "not_caused_by_change"),
    ):
        with subtests.test(case=case):
            r = ingest.client.post(I, incident(id=f"pd-{case}", **over))
            assert r.status == 422 and field in r.fields(), r
    assert ingest.stored_counts() == before


def test_patch_severity_is_kept_in_the_timeline(ingest):
    inc = declared(ingest)
    r = ingest.client.patch(f"{I}/pd-Q1X", {"severity": "sev1"})
    assert r.status == 200 and r.json()["severity"] == "sev1", r
    assert ingest.rows("SELECT kind, text FROM incident_event ORDER BY id DESC")[0] == ("severity", "sev2 -> sev1")
    assert ingest.events == [("incident.changed", ref_id(inc))]
    assert ingest.client.patch(f"{I}/pd-Q1X", {"severity": "sev1"}).status == 200
    assert len(ingest.events) == 1  # the same severity again changes nothing


def test_patch_cancel_takes_the_incident_and_its_cause_out_of_the_metrics(ingest):
    seed_deploys(ingest)
    inc = declared(ingest, caused_by="co-1")
    m = ingest.client.get("/api/v1/metrics?service=checkout").json()
    assert m["change_failure_rate"]["failed"] == 1 and m["time_to_restore"]["open_incidents"] == 1
    r = ingest.client.patch(f"{I}/pd-Q1X", {"status": "cancelled", "reason": "false alarm: a synthetic check"})
    assert r.status == 200, r
    body = r.json()
    assert body["state"] == "cancelled" and body["cancel_reason"] == "false alarm: a synthetic check"
    assert ingest.events == [("incident.changed", ref_id(inc))]
    m = ingest.client.get("/api/v1/metrics?service=checkout").json()
    assert m["change_failure_rate"]["failed"] == 0 and m["time_to_restore"]["open_incidents"] == 0
    deploys = {d["id"]: d for d in ingest.client.get(D).json()["items"]}
    assert deploys["co-1"]["change_failure"] is False
    assert ingest.client.get(f"{I}?state=open").json()["items"] == []
    # a resolved incident cannot be cancelled
    ingest.client.post(I, incident(id="pd-2", resolved_at="2026-11-25T11:00:00Z"))
    r = ingest.client.patch(f"{I}/pd-2", {"status": "cancelled", "reason": "oops"})
    assert r.status == 409, r


def test_deploys_take_fixes_and_rework(ingest):
    inc = declared(ingest)
    r = ingest.client.post(D, {"id": "fix-1", "service": "checkout", "deployed_at": "2026-11-25T11:00:00Z", "fixes": "pd-Q1X"})
    assert r.status == 201, r
    body = r.json()
    assert body["fixes"] == "pd-Q1X" and body["fixes_ref"] == inc["ref"] and body["rework"] is True
    assert ingest.client.post(
        D, {"id": "fix-1", "service": "checkout", "deployed_at": "2026-11-25T11:00:00Z", "fixes": "pd-Q1X"}
    ).json() == body
    hot = ingest.client.post(D, {"id": "hot-1", "service": "checkout", "deployed_at": "2026-11-25T11:05:00Z", "rework": True}).json()
    assert hot["rework"] is True and hot["fixes"] is None
    plain = ingest.client.post(D, {"id": "p-1", "service": "checkout", "deployed_at": "2026-11-25T11:06:00Z"}).json()
    assert plain["rework"] is False
    rr = ingest.client.get("/api/v1/metrics?service=checkout").json()["deployment_rework_rate"]
    assert rr["rework"] == 2 and rr["deploys"] == 3 and rr["rate"] == round(2 / 3, 4)
    before = ingest.stored_counts()
    for body, field in (
        ({"id": "x1", "service": "checkout", "deployed_at": "2026-11-25T11:00:00Z", "fixes": "nope"}, "fixes"),
        ({"id": "x2", "service": "checkout", "deployed_at": "2026-11-25T10:00:00Z", "fixes": "pd-Q1X"}, "fixes"),  # before it began
        ({"id": "x3", "service": "checkout", "deployed_at": "2026-11-25T11:00:00Z", "rework": "yes"}, "rework"),
    ):
        r = ingest.client.post(D, body)
        assert r.status == 422 and field in r.fields(), r
    assert ingest.stored_counts() == before


def test_patch_corrects_mitigated_at_and_a_corrected_resolution_carries_its_own_mitigation(ingest):
    declared(ingest)  # started 10:30
    ingest.client.patch(f"{I}/pd-Q1X", {"mitigated_at": "2026-11-25T11:00:00Z"})
    body = ingest.client.patch(f"{I}/pd-Q1X", {"mitigated_at": "2026-11-25T10:50:00Z"}).json()  # a correction
    assert body["mitigated_at"] == "2026-11-25T10:50:00Z" and body["time_to_restore_seconds"] == 20 * 60
    assert ingest.rows("SELECT kind FROM incident_event ORDER BY id DESC")[0] == ("corrected",)
    ingest.client.patch(f"{I}/pd-Q1X", {"resolved_at": "2026-11-25T11:30:00Z"})
    r = ingest.client.patch(f"{I}/pd-Q1X", {"mitigated_at": "2026-11-25T11:40:00Z"})
    assert r.status == 422 and "mitigated_at" in r.fields(), r  # after the resolution
    # resolved without a mitigation: a corrected resolution moves the mitigation it set
    ingest.client.post(I, incident(id="pd-2", resolved_at="2026-11-25T11:20:00Z"))
    body = ingest.client.patch(f"{I}/pd-2", {"resolved_at": "2026-11-25T11:10:00Z"}).json()
    assert body["mitigated_at"] == body["resolved_at"] == "2026-11-25T11:10:00Z"
    assert body["time_to_restore_seconds"] == 40 * 60
