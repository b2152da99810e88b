"""POST /webhooks/pagerduty over real HTTP: v3 webhook signatures, one incident per PagerDuty
incident, its acknowledged and resolved times in the metrics, and the incidents dora-bot paged.

The bodies are written for these tests in the shape of PagerDuty's v3 webhook events
(``{"event": {"id", "event_type", "resource_type", "occurred_at", "agent", "client", "data"}}``
with an incident as ``data``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid

from tests.ingest.conftest import PAGERDUTY_SECRET


def sign(body: bytes, secret: str = PAGERDUTY_SECRET) -> str:
    return "v1=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def event(kind: str, *, pd_id="Q2W3E4R5T6", at="2026-11-25T10:00:00Z", created="2026-11-25T10:00:00Z",
          service="Shop API", title="Checkout is failing", priority="P1", urgency="high", incident_key=None,
          event_id=None) -> dict:
    data = {
        "id": pd_id, "type": "incident", "self": f"https://api.pagerduty.com/incidents/{pd_id}",
        "html_url": f"https://acme.pagerduty.com/incidents/{pd_id}", "number": 4321,
        "status": kind.split(".")[1], "incident_key": incident_key or "f1c2d3e4a5b6", "created_at": created,
        "title": title, "urgency": urgency,
        "service": {"html_url": "https://acme.pagerduty.com/services/PSVC123", "id": "PSVC123",
                    "self": "https://api.pagerduty.com/services/PSVC123", "summary": service, "type": "service_reference"},
        "assignees": [], "escalation_policy": {"id": "PESC1", "summary": "Default", "type": "escalation_policy_reference"},
        "teams": [], "priority": {"id": "PPRI1", "summary": priority, "type": "priority"} if priority else None,
        "conference_bridge": None, "resolve_reason": None,
    }
    return {"event": {
        "id": event_id or str(uuid.uuid4()), "event_type": kind, "resource_type": "incident", "occurred_at": at,
        "agent": {"id": "PUSER1", "summary": "Jane Doe", "type": "user_reference"},
        "client": None, "data": data,
    }}


def send(ingest, payload=None, *, raw: bytes | None = None, signature="sign"):
    body = raw if raw is not None else json.dumps(payload).encode()
    headers = {"User-Agent": "PagerDuty-Webhook/V3.0", "X-Webhook-Id": "PWH1", "X-Webhook-Subscription": "PSUB1"}
    sig = sign(body) if signature == "sign" else signature
    if sig is not None:
        headers["X-PagerDuty-Signature"] = sig
    return ingest.client.request("POST", "/webhooks/pagerduty", raw=body, headers=headers, token=None)


def ok(ingest, payload, expect=200) -> dict:
    r = send(ingest, payload)
    assert r.status == expect, r
    return r.json()


def incidents(ingest) -> list[dict]:
    return sorted(ingest.client.get("/api/v1/incidents?limit=100").json()["items"], key=lambda i: int(i["ref"][4:]))


# --- signatures -----------------------------------------------------------------------------

def test_signature_failures_are_401_and_store_nothing(ingest, subtests):
    body = json.dumps(event("incident.triggered")).encode()
    cases = [
        ("missing", body, None),
        ("wrong-secret", body, sign(body, "another-secret")),
        ("tampered", body.replace(b"Checkout", b"Checkin"), sign(body)),
        ("no-version", body, sign(body)[3:]),
        ("other-version", body, "v0=" + sign(body)[3:]),
        ("empty", body, "v1="),
    ]
    for case, raw, sig in cases:
        with subtests.test(case=case):
            r = send(ingest, raw=raw, signature=sig)
            assert r.status == 401, r
            assert ingest.stored_counts() == dict.fromkeys(ingest.stored_counts(), 0)
    with subtests.test(case="bearer-token-is-no-substitute"):
        r = ingest.client.request("POST", "/webhooks/pagerduty", raw=body)
        assert r.status == 401


def test_during_a_secret_rotation_any_listed_signature_may_match(ingest):
    body = json.dumps(event("incident.triggered")).encode()
    r = send(ingest, raw=body, signature=f"{sign(body, 'the-old-secret')}, {sign(body)}")
    assert r.status == 200, r
    assert len(incidents(ingest)) == 1


def test_without_a_secret_configured_pagerduty_webhooks_are_refused(make_ingest):
    app = make_ingest(pagerduty_webhook_secret=None)
    r = send(app, event("incident.triggered"))
    assert r.status == 401 and "PAGERDUTY_WEBHOOK_SECRET" in r.json()["error"], r
    assert app.count("webhook_delivery") == 0


# --- the lifecycle --------------------------------------------------------------------------

def test_triggered_acknowledged_resolved_move_one_incident_and_show_in_the_metrics(ingest):
    out = ok(ingest, event("incident.triggered", at="2026-11-25T09:00:05Z", created="2026-11-25T09:00:00Z"))
    assert out["declared"] is True
    [inc] = incidents(ingest)
    assert (inc["ref"], inc["service"], inc["severity"], inc["title"], inc["state"]) == (
        out["incident"], "Shop API", "sev1", "Checkout is failing", "open")
    assert inc["started_at"] == "2026-11-25T09:00:00Z" and inc["source"] == "pagerduty"
    assert ("incident.declared", int(inc["ref"][4:])) in list(ingest.events)  # its card is queued

    out = ok(ingest, event("incident.acknowledged", at="2026-11-25T09:06:00Z"))
    assert out["acknowledged"] is True and out["incident"] == inc["ref"]
    out = ok(ingest, event("incident.resolved", at="2026-11-25T10:30:00Z"))
    assert out["resolved"] is True
    [inc] = incidents(ingest)
    assert inc["state"] == "resolved"
    assert (inc["acknowledged_at"], inc["resolved_at"]) == ("2026-11-25T09:06:00Z", "2026-11-25T10:30:00Z")
    m = ingest.client.get("/api/v1/metrics?service=shop-api").json()
    assert m["mtta"] == {"median_seconds": 360, "incidents": 1}
    assert m["time_to_restore"]["median_seconds"] == 90 * 60 and m["time_to_restore"]["incidents"] == 1
    assert m["time_to_restore"]["open_incidents"] == 0


def test_a_redelivered_event_changes_nothing_and_a_repeat_under_a_new_id_neither(ingest):
    triggered = event("incident.triggered", event_id="01DEF")
    assert ok(ingest, triggered)["declared"] is True
    queued = list(ingest.events)
    assert queued == [("incident.declared", 1)]
    assert ok(ingest, triggered)["status"] == "duplicate"
    again = ok(ingest, event("incident.triggered"))  # the same PagerDuty incident, another event
    assert again["declared"] is False and again["incident"] == "INC-1"
    assert list(ingest.events) == queued  # no second card, no thread line
    ok(ingest, event("incident.resolved", at="2026-11-25T10:20:00Z"))
    late = ok(ingest, event("incident.acknowledged", at="2026-11-25T10:10:00Z"))  # arrived after the resolution
    assert late["acknowledged"] is False
    assert ok(ingest, event("incident.resolved", at="2026-11-25T10:40:00Z"))["resolved"] is False
    [inc] = incidents(ingest)
    assert inc["resolved_at"] == "2026-11-25T10:20:00Z" and inc["acknowledged_at"] is None
    assert ingest.count("incident") == 1


def test_a_pagerduty_incident_dora_bot_paged_is_the_same_incident(ingest):
    r = ingest.client.post("/api/v1/incidents", {"id": "mon-1", "service": "checkout", "severity": "sev1",
                                                 "title": "Checkout down", "started_at": "2026-11-25T09:58:00Z"})
    assert r.status == 201, r
    ref = r.json()["ref"]
    key = f"dora-bot-{ref}"  # the hand-off's Events API v2 dedup key, kept by PagerDuty as incident_key
    out = ok(ingest, event("incident.triggered", pd_id="PDOWN", incident_key=key, service="Checkout", title="[sev1] Checkout down"))
    assert out["declared"] is False and out["incident"] == ref
    out = ok(ingest, event("incident.acknowledged", pd_id="PDOWN", incident_key=key, at="2026-11-25T10:03:00Z"))
    assert out["acknowledged"] is True and out["incident"] == ref
    ok(ingest, event("incident.resolved", pd_id="PDOWN", incident_key=key, at="2026-11-25T10:45:00Z"))
    [inc] = incidents(ingest)
    assert (inc["ref"], inc["state"], inc["acknowledged_at"], inc["resolved_at"]) == (
        ref, "resolved", "2026-11-25T10:03:00Z", "2026-11-25T10:45:00Z")
    assert ingest.count("incident") == 1


def test_a_partial_body_takes_what_it_can(ingest, subtests):
    with subtests.test(case="acknowledged-before-triggered-was-seen"):
        out = ok(ingest, event("incident.acknowledged", pd_id="PA", created="2026-11-25T09:00:00Z", at="2026-11-25T09:04:00Z"))
        assert out["declared"] is True and out["acknowledged"] is True
    with subtests.test(case="no-priority-urgency-decides"):
        ok(ingest, event("incident.triggered", pd_id="PB", priority=None, urgency="low"))
    with subtests.test(case="no-title"):
        out = ok(ingest, event("incident.triggered", pd_id="PC", title=""))
        assert any("title" in n for n in out["notes"])
    a, b, c = incidents(ingest)
    assert (a["state"], a["acknowledged_at"]) == ("acknowledged", "2026-11-25T09:04:00Z")
    assert b["severity"] == "sev3"
    assert c["title"] == "PagerDuty incident 4321"


def test_other_event_types_are_stored_and_ignored(ingest):
    ping = {"event": {"id": "01PING", "event_type": "pagey.ping", "resource_type": "pagey", "occurred_at": "2026-11-25T10:00:00Z",
                      "agent": None, "client": None, "data": {"message": "Hello from your friend Pagey!", "type": "ping"}}}
    assert ok(ingest, ping, expect=202)["status"] == "ignored"
    assert ok(ingest, event("incident.annotated"), expect=202)["status"] == "ignored"
    assert ingest.count("incident") == 0 and ingest.count("webhook_delivery") == 2


def test_a_bad_body_is_422_stored_raw_as_failed_and_applies_nothing(ingest, subtests):
    no_service = event("incident.triggered")
    no_service["event"]["data"]["service"] = {"id": "PSVC123"}
    no_id = event("incident.triggered")
    del no_id["event"]["data"]["id"]
    cases = [
        ("invalid-json", b'{"event": {"id": "x", '),
        ("not-an-object", b'[1, 2]'),
        ("event-not-an-object", b'{"event": "incident.triggered"}'),
        ("no-service", json.dumps(no_service).encode()),
        ("no-incident-id", json.dumps(no_id).encode()),
        ("bad-occurred-at", json.dumps(event("incident.triggered", at="tomorrow")).encode()),
    ]
    for case, raw in cases:
        with subtests.test(case=case):
            r = send(ingest, raw=raw)
            assert r.status == 422, r
    assert ingest.count("incident") == 0 and ingest.count("service") == 0
    rows = ingest.rows("SELECT status, body FROM webhook_delivery ORDER BY id")
    assert rows == [("failed", raw.decode()) for _, raw in cases]
