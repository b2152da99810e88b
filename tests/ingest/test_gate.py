"""GET /api/v1/gate over real HTTP: the bearer token, its parameters, and which incidents close it.
(Freezes through Slack: tests/slack/test_freeze_flow.py.)"""

from __future__ import annotations

G = "/api/v1/gate"


def incident(ingest, id_, *, severity="sev1", service="checkout", environment="production", **extra):
    body = {"id": id_, "service": service, "severity": severity, "title": f"{id_} burning",
            "started_at": "2026-11-25T10:00:00Z", "environment": environment, **extra}
    r = ingest.client.post("/api/v1/incidents", body)
    assert r.status == 201, r
    return r.json()["ref"]


def test_the_gate_needs_a_token_and_a_service(ingest, subtests):
    with subtests.test(case="no-token"):
        assert ingest.client.get(f"{G}?service=checkout", token=None).status == 401
    with subtests.test(case="wrong-token"):
        assert ingest.client.get(f"{G}?service=checkout", token="nope-nope-nope").status == 401
    for case, query, field in (("no-service", "", "service"), ("empty-service", "?service=", "service"),
                               ("bad-service", "?service=%3C!here%3E", "service"),
                               ("bad-environment", "?service=checkout&environment=Prod%20Env", "environment"),
                               ("unknown-parameter", "?service=checkout&env=prod", "env")):
        with subtests.test(case=case):
            r = ingest.client.get(f"{G}{query}")
            assert r.status == 422 and field in r.fields(), r


def test_an_unknown_service_with_nothing_frozen_may_deploy(ingest):
    r = ingest.client.get(f"{G}?service=brand-new")
    assert r.status == 200 and r.json() == {"allowed": True, "service": "brand-new", "environment": "production"}


def test_an_open_sev1_closes_the_gate_and_its_mitigation_opens_it(ingest):
    ref = incident(ingest, "pd-1")
    r = ingest.client.get(f"{G}?service=Checkout")
    assert r.status == 423, r
    body = r.json()
    assert body["allowed"] is False and body["service"] == "checkout"
    assert body["reasons"] == [f"{ref} (sev1) is open and not mitigated on checkout: pd-1 burning"]
    assert body["incidents"] == [{"ref": ref, "severity": "sev1", "title": "pd-1 burning", "started_at": "2026-11-25T10:00:00Z"}]
    assert ingest.client.get(f"{G}?service=checkout&environment=staging").status == 200
    assert ingest.client.get(f"{G}?service=checkout&environment=prod").status == 423  # prod and production: one production
    assert ingest.client.get(f"{G}?service=payments").status == 200

    assert ingest.client.patch("/api/v1/incidents/pd-1", {"acknowledged_at": "now"}).status == 200
    assert ingest.client.get(f"{G}?service=checkout").status == 423  # acknowledged is still burning
    assert ingest.client.patch("/api/v1/incidents/pd-1", {"mitigated_at": "now"}).status == 200
    assert ingest.client.get(f"{G}?service=checkout").status == 200


def test_an_incident_in_staging_closes_only_staging(ingest):
    incident(ingest, "stg-1", environment="staging")
    assert ingest.client.get(f"{G}?service=checkout&environment=staging").status == 423
    assert ingest.client.get(f"{G}?service=checkout").status == 200


def test_resolved_cancelled_and_less_severe_incidents_leave_it_open(make_ingest):
    ingest = make_ingest()
    incident(ingest, "resolved", resolved_at="2026-11-25T11:00:00Z")
    incident(ingest, "cancelled", status="cancelled")
    incident(ingest, "sev2", severity="sev2")
    assert ingest.client.get(f"{G}?service=checkout").status == 200
    stricter = make_ingest(gate_severity="sev2")
    r = stricter.client.get(f"{G}?service=checkout")
    assert r.status == 423 and len(r.json()["reasons"]) == 1


def test_a_sev1_paged_in_from_pagerduty_closes_the_gate(ingest):
    from tests.ingest.test_pagerduty_webhook import event, send

    assert send(ingest, event("incident.triggered", service="Checkout", priority="P1")).status == 200
    assert ingest.client.get(f"{G}?service=checkout").status == 423
    assert send(ingest, event("incident.resolved", at="2026-11-25T11:00:00Z")).status == 200
    assert ingest.client.get(f"{G}?service=checkout").status == 200
