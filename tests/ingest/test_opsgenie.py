"""POST /webhooks/opsgenie over real HTTP: Create / Acknowledge / Close on one incident per alert.

The bodies are written for these tests in the shape of Opsgenie's Webhook integration
(``{"action", "alert": {...}, "source": {...}, "integrationName", "integrationType"}``).
"""

from __future__ import annotations

import json
from datetime import datetime

from tests.ingest.conftest import UTC

CREATED = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)


def ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


def body(action: str, *, alert_id="70413a06-38d6-4c85-92b8-5ebc900d42e2-1517405563916", tags=("service:Shop API", "prod"),
         entity="shop-entity", source="datadog", priority="P1", message="Checkout latency is high",
         created=CREATED, updated: int | None = None) -> dict:
    alert = {
        "alertId": alert_id, "message": message, "tags": list(tags), "tinyId": "7",
        "entity": entity, "alias": "checkout-latency", "createdAt": ms(created) if created else None,
        "username": "System", "userId": "", "description": "p95 above 2s", "team": "", "responders": [],
        "teams": [], "actions": [], "details": {}, "priority": priority, "source": source,
    }
    if updated is not None:
        alert["updatedAt"] = updated
    return {"action": action, "alert": alert,
            "source": {"name": "", "type": "web"}, "integrationName": "dora-bot", "integrationId": "8418d193",
            "integrationType": "Webhook"}


def send(ingest, payload=None, *, raw: bytes | None = None, token="default"):
    data = raw if raw is not None else json.dumps(payload).encode()
    kw = {} if token == "default" else {"token": token}
    return ingest.client.request("POST", "/webhooks/opsgenie", raw=data, **kw)


def ok(ingest, payload, expect=200) -> dict:
    r = send(ingest, payload)
    assert r.status == expect, r
    return r.json()


def incidents(ingest) -> list[dict]:
    return sorted(ingest.client.get("/api/v1/incidents?limit=100").json()["items"], key=lambda i: int(i["ref"][4:]))


def test_a_missing_or_wrong_bearer_token_is_401_and_stores_nothing(ingest, subtests):
    for case, token in (("missing", None), ("wrong", "nope-not-a-token")):
        with subtests.test(case=case):
            assert send(ingest, body("Create"), token=token).status == 401
            assert ingest.stored_counts() == dict.fromkeys(ingest.stored_counts(), 0)


def test_create_acknowledge_close_move_one_incident_and_show_in_the_metrics(ingest):
    out = ok(ingest, body("Create"))
    assert out["declared"] is True
    [inc] = incidents(ingest)
    assert (inc["service"], inc["severity"], inc["title"], inc["started_at"], inc["source"]) == (
        "Shop API", "sev1", "Checkout latency is high", "2026-11-25T09:00:00Z", "opsgenie")
    # Opsgenie's examples write updatedAt in nanoseconds
    out = ok(ingest, body("Acknowledge", updated=ms(datetime(2026, 11, 25, 9, 10, tzinfo=UTC)) * 1_000_000))
    assert out["acknowledged"] is True
    out = ok(ingest, body("Close", updated=ms(datetime(2026, 11, 25, 10, 0, tzinfo=UTC))))
    assert out["resolved"] is True
    [inc] = incidents(ingest)
    assert (inc["state"], inc["acknowledged_at"], inc["resolved_at"]) == ("resolved", "2026-11-25T09:10:00Z", "2026-11-25T10:00:00Z")
    m = ingest.client.get("/api/v1/metrics?service=shop-api").json()
    assert m["mtta"]["median_seconds"] == 600 and m["time_to_restore"]["median_seconds"] == 3600


def test_a_repeat_changes_nothing(ingest):
    create = body("Create")
    assert ok(ingest, create)["declared"] is True
    assert ok(ingest, create)["status"] == "duplicate"
    again = body("Create", message="Checkout latency is high (again)")  # another notification, same alert
    assert ok(ingest, again)["declared"] is False
    assert list(ingest.events) == [("incident.declared", 1)]  # one card, no thread line
    ok(ingest, body("Close"))
    assert ok(ingest, body("Close", updated=1))["resolved"] is False
    assert ingest.count("incident") == 1


def test_the_service_severity_and_start_follow_the_mapping(ingest, subtests):
    cases = [
        ("tag", dict(tags=["team:web", "service:Payments"]), "Payments"),
        ("entity", dict(tags=["prod"]), "shop-entity"),
        ("source", dict(tags=[], entity=""), "datadog"),
        ("bad-tag-then-entity", dict(tags=["service:<!here>"]), "shop-entity"),
    ]
    for i, (case, kw, service) in enumerate(cases):
        with subtests.test(case=case):
            ok(ingest, body("Create", alert_id=f"a-{i}", **kw))
            assert incidents(ingest)[-1]["service"] == service
    for i, (priority, severity) in enumerate((("P2", "sev2"), ("P3", "sev3"), ("P4", "sev4"), ("P5", "sev4"), (None, "sev4"))):
        with subtests.test(priority=priority):
            ok(ingest, body("Create", alert_id=f"p-{i}", priority=priority))
            assert incidents(ingest)[-1]["severity"] == severity


def test_a_partial_body_takes_what_it_can(ingest):
    out = ok(ingest, body("Acknowledge", alert_id="late", created=None, message=""))
    assert out["declared"] is True and out["acknowledged"] is True
    assert any("createdAt" in n for n in out["notes"]) and any("message" in n for n in out["notes"])
    [inc] = incidents(ingest)
    assert inc["title"] == "Opsgenie alert 7" and inc["state"] == "acknowledged"


def test_other_actions_are_stored_and_ignored(ingest):
    for action in ("AddNote", "Escalate", "AssignOwnership"):
        assert ok(ingest, body(action), expect=202)["status"] == "ignored"
    assert ingest.count("incident") == 0 and ingest.count("webhook_delivery") == 3


def test_a_bad_body_is_422_stored_raw_as_failed_and_applies_nothing(ingest, subtests):
    no_id = body("Create")
    del no_id["alert"]["alertId"]
    bad_time = body("Create")
    bad_time["alert"]["createdAt"] = "yesterday"
    cases = [
        ("invalid-json", b'{"action": "Create", "alert": '),
        ("alert-not-an-object", b'{"action": "Create", "alert": "boom"}'),
        ("no-alert-id", json.dumps(no_id).encode()),
        ("no-service-anywhere", json.dumps(body("Create", tags=[], entity="", source="")).encode()),
        ("bad-created-at", json.dumps(bad_time).encode()),
    ]
    for case, raw in cases:
        with subtests.test(case=case):
            r = send(ingest, raw=raw)
            assert r.status == 422, r
    assert ingest.count("incident") == 0 and ingest.count("service") == 0
    assert ingest.rows("SELECT status, body FROM webhook_delivery ORDER BY id") == [("failed", raw.decode()) for _, raw in cases]
