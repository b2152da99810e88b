"""The API and webhooks with teams and the catalogue: ``"team"`` on a deploy creates or assigns
it, ``GET /api/v1/metrics?team=`` pools the team's services, and every answer lists the services
the request created (machines keep creating them; nothing asks)."""

from __future__ import annotations

from tests.dbutil import metrics as direct_metrics
from tests.ingest.test_alertmanager import alert, notification, send

D, I, M = "/api/v1/deploys", "/api/v1/incidents", "/api/v1/metrics"


def deploy(id_: str, service: str, **extra) -> dict:
    return {"id": id_, "service": service, "deployed_at": "2026-11-25T10:00:00Z", **extra}


def test_a_deploy_with_a_team_creates_it_assigns_the_service_and_reports_the_new_service(ingest):
    first = ingest.client.post(D, deploy("d1", "Checkout", team="Payments"))
    assert first.status == 201 and first.json()["created_services"] == ["Checkout"]
    assert ingest.rows("SELECT t.name, s.name FROM service s JOIN team t ON t.id = s.team_id") == [("Payments", "Checkout")]
    again = ingest.client.post(D, deploy("d2", "checkout", team="payments"))
    assert again.status == 201 and again.json()["created_services"] == []
    assert ingest.count("team") == 1
    # A retry answers what the first request did.
    assert ingest.client.post(D, deploy("d1", "Checkout", team="Payments")).json() == first.json()
    # The service moves to the team a later deploy names (a service has at most one team).
    ingest.client.post(D, deploy("d3", "checkout", team="core"))
    assert ingest.rows("SELECT t.name FROM service s JOIN team t ON t.id = s.team_id") == [("core",)]


def test_a_bad_team_is_a_422_naming_the_field_and_stores_nothing(ingest):
    before = ingest.stored_counts()
    r = ingest.client.post(D, deploy("d1", "checkout", team="no!good"))
    assert r.status == 422 and "team" in r.fields()
    r = ingest.client.post(D, deploy("d1", "checkout", team=["a"]))
    assert r.status == 422 and "team" in r.fields()
    assert ingest.stored_counts() == before and ingest.count("team") == 0


def test_metrics_for_a_team_pool_its_services(ingest):
    for i, (svc, team) in enumerate((("checkout", "payments"), ("checkout", None), ("billing", "payments"), ("search", "search"))):
        body = deploy(f"d{i}", svc, deployed_at=f"2026-11-2{i}T10:00:00Z")
        if team:
            body["team"] = team
        assert ingest.client.post(D, body).status == 201
    r = ingest.client.get(f"{M}?team=Payments&days=30&end=2026-11-25T12:00:00Z")
    assert r.status == 200
    m = r.json()
    assert m["scope"]["team"] == "payments" and m["scope"]["service"] is None
    assert m["deployment_frequency"]["deploys"] == 3
    org = direct_metrics(ingest.engine, end=m_end(), days=30)
    assert org["deployment_frequency"]["deploys"] == 4, "search's deploy is the org's, not the team's"
    assert ingest.client.get(f"{M}?team=payments&service=checkout").status == 422
    unknown = ingest.client.get(f"{M}?team=nobody").json()
    assert unknown["deployment_frequency"]["deploys"] == 0 and unknown["scope"]["team"] == "nobody"


def m_end():
    from datetime import UTC, datetime

    return datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def test_incidents_and_alertmanager_report_the_services_they_created(ingest):
    r = ingest.client.post(I, {"id": "pd-1", "service": "ledger", "started_at": "2026-11-25T10:00:00Z"})
    assert r.status == 201 and r.json()["created_services"] == ["ledger"]
    r = ingest.client.post(I, {"id": "pd-2", "service": "Ledger", "started_at": "2026-11-25T10:05:00Z"})
    assert r.json()["created_services"] == []
    out = send(ingest, notification(alert("fa11", labels={"service": "queue"}), alert("fb22", labels={"service": "ledger"})))
    assert out["created_services"] == ["queue"]
