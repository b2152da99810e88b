"""Real names over real HTTP: label values and repository names are taken as they are spelled,
and one key (case-insensitive, spaces = ``-``) decides which service a name means."""

from __future__ import annotations

import uuid
from datetime import timedelta

from tests.ingest.test_alertmanager import alert, notification, send
from tests.ingest.test_github import deployment_status, push, sha

D, I = "/api/v1/deploys", "/api/v1/incidents"


def test_a_prometheus_job_with_a_port_declares_an_incident(ingest):
    # `job` is often host:port in Prometheus (the `node` exporter's default is `node:9100`).
    a = alert("fjob1", labels={"service": "", "job": "node:9100", "alertname": "NodeDown"})
    out = send(ingest, notification(a))
    assert len(out["declared"]) == 1, out
    (item,) = ingest.client.get(I).json()["items"]
    assert item["service"] == "node:9100"


def test_checkout_api_and_checkout_dash_api_are_one_service_shown_as_first_named(ingest):
    out = send(ingest, notification(alert("fchk1", labels={"service": "Checkout API"})))
    assert len(out["declared"]) == 1, out
    r = ingest.client.post(D, {"id": "run-1", "service": "checkout-api", "deployed_at": "2026-11-25T11:00:00Z"})
    assert r.status == 201, r
    assert r.json()["service"] == "Checkout API", "answered with the service's name, as every read shows it"
    r = ingest.client.post(D, {"id": "run-2", "service": "CHECKOUT  api", "deployed_at": "2026-11-25T11:30:00Z"})
    assert r.status == 201, r
    assert ingest.rows("SELECT name, key FROM service") == [("Checkout API", "checkout-api")]
    # every way of spelling it finds the same history, shown with its display name
    for spelling in ("checkout-api", "Checkout%20API", "CHECKOUT-API"):
        deploys = ingest.client.get(f"{D}?service={spelling}").json()["items"]
        assert [d["id"] for d in deploys] == ["run-2", "run-1"]
        assert {d["service"] for d in deploys} == {"Checkout API"}
        assert len(ingest.client.get(f"{I}?service={spelling}").json()["items"]) == 1
        metrics = ingest.client.get(f"/api/v1/metrics?service={spelling}").json()
        assert metrics["scope"]["service"] == "Checkout API"
        assert metrics["deployment_frequency"]["deploys"] == 2


def _repo(payload: dict, name: str) -> dict:
    payload["repository"]["name"] = name
    payload["repository"]["full_name"] = f"acme/{name}"
    return payload


def test_github_repositories_named_dot_github_and_underscore_site(ingest):
    t = "2026-11-25T09:00:00Z"
    for name, n in ((".github", 1), ("_site", 2)):
        r = ingest.client.github("push", _repo(push([(sha(n), t)]), name), delivery=str(uuid.uuid4()))
        assert r.status == 200, r
        assert r.json()["commits"] == 1
        status = _repo(deployment_status(sha(n), ingest.clock() - timedelta(minutes=5)), name)
        r = ingest.client.github("deployment_status", status, delivery=str(uuid.uuid4()))
        assert r.status == 200, r
        assert r.json()["created"] is True
    deploys = ingest.client.get(D).json()["items"]
    assert sorted(d["service"] for d in deploys) == [".github", "_site"]
    assert all(len(d["commits"]) == 1 for d in deploys)


def test_names_that_are_markup_are_refused_naming_the_field(ingest):
    for bad in ("a<b", "x|y", "*bold*", "-lead"):
        r = ingest.client.post(D, {"id": f"bad-{bad}", "service": bad, "deployed_at": "2026-11-25T11:00:00Z"})
        assert r.status == 422, r
        assert r.fields() == ["service"]
    assert ingest.count("service") == 0
