"""Numbers too big for a row id or a date, sent to the JSON API and a webhook over real HTTP: a clear
4xx naming what was wrong, never a 500, and nothing stored."""

from __future__ import annotations

import json
import uuid

from tests.ingest.test_pagerduty_webhook import event, send

HUGE = "99999999999999999999"


def test_an_incident_id_too_big_is_404_on_every_route(ingest):
    before = ingest.stored_counts()
    for method, path, body in (
        ("GET", f"/api/v1/incidents/INC-{HUGE}/postmortem", None),
        ("PATCH", f"/api/v1/incidents/INC-{HUGE}", {"severity": "sev1"}),
        ("PATCH", f"/api/v1/incidents/{HUGE}", {"severity": "sev1"}),
    ):
        r = ingest.client.request(method, path, body=body) if body is not None else ingest.client.get(path)
        assert r.status == 404, (method, path, r)
        assert HUGE.encode() in r.body, r
    r = ingest.client.post("/api/v1/deploys", {"id": "ci-1", "service": "checkout", "version": "1.0",
                                             "deployed_at": "2026-11-25T11:00:00Z", "fixes": f"INC-{HUGE}"})
    assert r.status == 422 and "fixes" in r.fields(), r
    assert ingest.stored_counts() == before


def test_a_time_past_the_year_9999_in_a_webhook_is_422_naming_the_field(ingest):
    body = event("incident.triggered", created="9999-12-31T23:59:59-12:00", event_id=str(uuid.uuid4()))
    r = send(ingest, body)
    assert r.status == 422, r
    assert json.loads(r.body)["errors"][0]["field"] == "event.data.created_at"
    assert ingest.count("incident") == 0


def test_a_delivery_id_longer_than_the_column_is_still_idempotent(ingest):
    """A sender's delivery id is stored in a 200-character column: a longer one (a hostile header or
    body) must not fail the insert on PostgreSQL; a redelivery with it is still a duplicate."""
    from tests.ingest.test_gitlab import send as gitlab_send

    long_id = "e" * 500
    body = event("incident.triggered", event_id=long_id)
    first = send(ingest, body)
    assert first.status == 200, first
    again = send(ingest, body)
    assert again.status == 200 and again.json()["status"] == "duplicate", again
    other = send(ingest, event("incident.triggered", pd_id="OTHER", event_id="e" * 499 + "f"))
    assert other.status == 200 and other.json()["status"] == "processed", other
    assert ingest.count("incident") == 2

    deliveries = ingest.count("webhook_delivery")
    r = gitlab_send(ingest, "Push Hook", {"object_kind": "push"}, uuid_="u" * 300)
    assert r.status == 400 and b"X-Gitlab-Event-UUID" in r.body, r  # a header id is refused outright
    assert ingest.count("webhook_delivery") == deliveries


def test_an_opsgenie_time_that_is_no_epoch_time_is_422_naming_the_field(ingest):
    """``createdAt`` must be epoch milli-, micro- or nanoseconds of a real date: 1e20 or 1e300 is not
    read as 1973 or 2001 (an incident 50 years long), and ``Infinity``/``NaN`` (which Python's JSON
    reader accepts) neither hang the request nor fail it with a 500."""
    from tests.ingest.test_opsgenie import body as opsgenie_body
    from tests.ingest.test_opsgenie import send as opsgenie_send

    for n, value in enumerate(("1e20", "1e300", "Infinity", "-Infinity", "NaN", "99999999999999999999")):
        raw = json.dumps(opsgenie_body("Create", alert_id=f"og-{n}")).encode()
        raw = raw.replace(b'"createdAt": ', b'"createdAt": ' + value.encode() + b', "was": ', 1)
        r = opsgenie_send(ingest, raw=raw)
        assert r.status == 422, (value, r)
        assert "alert.createdAt" in r.fields() or r.fields() == [None], (value, r)
    assert ingest.count("incident") == 0


def test_nan_and_infinity_are_not_json(ingest):
    r = ingest.client.request("POST", "/api/v1/deploys", raw=b'{"id": "ci-1", "service": "checkout", "version": NaN}')
    assert r.status == 422 and b"NaN is not a JSON number" in r.body, r
    assert ingest.stored_counts()["deploy"] == 0
