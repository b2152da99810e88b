"""PATCH /api/v1/incidents/{id} over real HTTP: a correction is applied (checked, on the timeline)
or refused with 409 - never answered 200 and dropped. And one length rule per field everywhere."""

from __future__ import annotations

import io
import json

from bot.services.importer import import_jsonl
from tests.ingest.test_incidents import declared, incident

I = "/api/v1/incidents"


def timeline(ingest) -> list[tuple[str, str | None]]:
    return ingest.rows("SELECT kind, text FROM incident_event ORDER BY id")


def test_a_new_resolved_at_on_a_resolved_incident_is_applied_and_kept_on_the_timeline(ingest):
    declared(ingest, resolved_at="2026-11-25T11:00:00Z")  # started 10:30: 30 min to restore
    r = ingest.client.patch(f"{I}/pd-Q1X", {"resolved_at": "2026-11-25T11:20:00Z"})
    assert r.status == 200, r
    body = r.json()
    assert body["resolved_at"] == "2026-11-25T11:20:00Z" and body["time_to_restore_seconds"] == 50 * 60
    kind, text = timeline(ingest)[-1]
    assert kind == "corrected" and "11:00:00" in text and "11:20:00" in text
    assert ingest.events == [("incident.changed", 1)], "the card is refreshed"
    # the same instant again is a retry: 200, nothing changes, nobody notified
    ingest.events.clear()
    events = len(timeline(ingest))
    r = ingest.client.patch(f"{I}/pd-Q1X", {"resolved_at": "2026-11-25T12:20:00+01:00"})
    assert r.status == 200 and r.json()["resolved_at"] == "2026-11-25T11:20:00Z", r
    assert len(timeline(ingest)) == events and ingest.events == []


def test_a_new_acknowledged_at_is_a_correction_too_even_after_the_resolution(ingest):
    declared(ingest, acknowledged_at="2026-11-25T10:40:00Z")
    r = ingest.client.patch(f"{I}/pd-Q1X", {"acknowledged_at": "2026-11-25T10:35:00Z"})
    assert r.status == 200 and r.json()["acknowledged_at"] == "2026-11-25T10:35:00Z", r
    assert ingest.rows("SELECT ack_seconds FROM incident") == [(300.0,)]
    assert timeline(ingest)[-1][0] == "corrected"
    declared(ingest, id="pd-2", resolved_at="2026-11-25T11:00:00Z")  # resolved, never acknowledged
    r = ingest.client.patch(f"{I}/pd-2", {"acknowledged_at": "2026-11-25T10:45:00Z"})
    assert r.status == 200 and r.json()["acknowledged_at"] == "2026-11-25T10:45:00Z", r


def test_a_correction_that_is_not_valid_is_refused_and_changes_nothing(ingest, subtests):
    declared(ingest, resolved_at="2026-11-25T11:00:00Z")
    before = ingest.stored_counts()
    for case, body, field in (
        ("before-start", {"resolved_at": "2026-11-25T10:00:00Z"}, "resolved_at"),
        ("in-the-future", {"resolved_at": "2026-11-26T10:00:00Z"}, "resolved_at"),
        ("ack-before-start", {"acknowledged_at": "2026-11-25T09:00:00Z"}, "acknowledged_at"),
        ("null-resolved_at", {"resolved_at": None}, "resolved_at"),
        ("null-note", {"note": None}, "note"),
    ):
        with subtests.test(case=case):
            r = ingest.client.patch(f"{I}/pd-Q1X", body)
            assert r.status == 422, r
            assert field in r.fields()
            assert ingest.stored_counts() == before
    assert ingest.rows("SELECT resolved_at IS NOT NULL, restore_seconds FROM incident") == [(True, 1800.0)]


def test_a_resolution_note_alone_corrects_a_resolved_incident_and_is_409_on_an_open_one(ingest):
    declared(ingest)
    before = ingest.stored_counts()
    r = ingest.client.patch(f"{I}/pd-Q1X", {"note": "flag off"})
    assert r.status == 409, r
    assert "resolved_at" in r.json()["error"]
    assert ingest.stored_counts() == before
    r = ingest.client.patch(f"{I}/pd-Q1X", {"resolved_at": "2026-11-25T11:00:00Z", "note": "flag off"})
    assert r.status == 200, r
    r = ingest.client.patch(f"{I}/pd-Q1X", {"note": "cache flushed, flag off"})
    assert r.status == 200, r
    assert ingest.rows("SELECT resolution_note FROM incident") == [("cache flushed, flag off",)]
    assert timeline(ingest)[-1] == ("corrected", "resolution note: cache flushed, flag off")


def test_patch_text_fields_follow_the_one_rule(ingest, subtests):
    declared(ingest)
    before = ingest.stored_counts()
    for case, body, field in (
        ("note-500k", {"resolved_at": "now", "note": "n" * 500_000}, "note"),
        ("update-500k", {"update": "u" * 500_000}, "update"),
        ("update-object", {"update": {"text": "hi"}}, "update"),
        ("update-list", {"update": ["hi"]}, "update"),
        ("note-object", {"resolved_at": "now", "note": {"a": 1}}, "note"),
        ("caused_by-object", {"caused_by": {"id": "x"}}, "caused_by"),
    ):
        with subtests.test(case=case):
            r = ingest.client.patch(f"{I}/pd-Q1X", body)
            assert r.status == 422, r
            assert r.fields() == [field]
            assert ingest.stored_counts() == before
    assert ingest.rows("SELECT resolved_at FROM incident") == [(None,)]


def test_a_5000_character_title_is_refused_naming_the_field_by_the_api_and_the_import(ingest):
    r = ingest.client.post(I, incident(title="t" * 5000))
    assert r.status == 422 and r.fields() == ["title"], r
    assert "300" in r.json()["errors"][0]["message"]
    line = json.dumps({"type": "incident", **incident(title="t" * 5000)}) + "\n"
    report = import_jsonl(ingest.engine, io.BytesIO(line.encode()), production_environments=("production",), now=ingest.clock())
    assert report.invalid == 1 and "title" in report.errors[0][1] and "300" in report.errors[0][1]
    assert ingest.count("incident") == 0
