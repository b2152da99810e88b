"""Hostile and real-world input at every ingest edge, over real HTTP (issue 11): a clear 4xx naming
the problem and nothing stored, or taken whole - never a 500. On SQLite and PostgreSQL."""

from __future__ import annotations

import json
import socket

import pytest

from tests.ingest.conftest import TOKEN, sign
from tests.ingest.test_alertmanager import alert, notification
from tests.ingest.test_deploys import deploy
from tests.ingest.test_github import push, sha
from tests.ingest.test_incidents import incident

D, I, M = "/api/v1/deploys", "/api/v1/incidents", "/api/v1/metrics"


def nothing_stored(ingest, *, deliveries: int = 0) -> None:
    """No row anywhere; a webhook's refused body may be kept raw as one failed delivery (audit, replay)."""
    counts = ingest.stored_counts()
    assert counts == {**dict.fromkeys(counts, 0), "webhook_delivery": counts["webhook_delivery"]}
    assert ingest.count("webhook_delivery", "WHERE status <> 'failed'") == 0
    assert counts["webhook_delivery"] <= deliveries


def raw_request(port: int, head: bytes, body: bytes = b"") -> bytes:
    """Send ``head`` (and ``body``) on a socket and return what the server answers first."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(head + body)
        return s.recv(65536)


# --- instants: one parser, 1970..2100 -----------------------------------------------------------

@pytest.mark.parametrize("value", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "0999-01-01T00:00:00Z",
                                   "1969-12-31T23:59:59Z", "2101-01-01T00:00:00Z", "999-01-01T00:00:00Z"])
def test_an_instant_outside_1970_to_2100_is_422_naming_the_field(ingest, value):
    r = ingest.client.post(D, deploy(deployed_at=value))
    assert r.status == 422 and r.fields() == ["deployed_at"], r
    r = ingest.client.post(I, incident(started_at=value))
    assert r.status == 422 and r.fields() == ["started_at"], r
    r = ingest.client.post(D, deploy(commits=[{"sha": "9fceb02aa", "committed_at": value}]))
    assert r.status == 422 and r.fields() == ["commits[0].committed_at"], r
    nothing_stored(ingest)


@pytest.mark.parametrize("param", ["end=0001-01-02T00:00:00Z", "end=9999-12-31T23:59:59-01:00", "end=0999-06-01"])
def test_a_metrics_end_outside_the_range_is_422(ingest, param):
    r = ingest.client.get(f"{M}?{param}")
    assert r.status == 422 and r.fields() == ["end"], r


def test_list_filters_take_the_same_range(ingest):
    for path in (D, I):
        r = ingest.client.get(f"{path}?since=0001-01-01T00:00:00%2B01:00")
        assert r.status == 422 and r.fields() == ["since"], r
        r = ingest.client.get(f"{path}?until=9999-12-31T23:59:59-01:00")
        assert r.status == 422 and r.fields() == ["until"], r


def test_the_range_edges_are_taken_and_written_back_with_four_digit_years(ingest):
    ingest.clock.now = ingest.clock.now  # the fixed clock: 2026
    r = ingest.client.post(D, deploy(id="edge-1", deployed_at="1970-01-01T00:00:00Z", commits=[]))
    assert r.status == 201 and r.json()["deployed_at"] == "1970-01-01T00:00:00Z", r
    (item,) = ingest.client.get(D).json()["items"]
    assert item["deployed_at"] == "1970-01-01T00:00:00Z"


def test_a_patch_time_outside_the_range_is_422(ingest):
    assert ingest.client.post(I, incident()).status == 201
    r = ingest.client.patch(f"{I}/pd-Q1X", {"resolved_at": "0001-01-01T00:00:00+01:00"})
    assert r.status == 422 and r.fields() == ["resolved_at"], r


def test_alertmanager_and_github_instants_outside_the_range_are_refused_without_a_500(ingest):
    r = ingest.client.alertmanager(notification(alert("f1", starts="0001-01-01T00:00:00+01:00"), alert("f2")))
    assert r.status == 200, r
    body = r.json()
    assert len(body["declared"]) == 1 and body["skipped"] and "startsAt" in body["skipped"][0]["field"], body
    payload = push([(sha(1), "9999-12-31T23:59:59-01:00")])
    r = ingest.client.github("push", payload, delivery="far-future")
    assert 400 <= r.status < 500, r
    assert ingest.count("pending_commit") == 0


# --- whole numbers: one parser, ASCII digits, ranged --------------------------------------------

@pytest.mark.parametrize("value", ["²", "٣", "+5", "-1", "0", "1e3", "99999999999999999999999", " 5x"])
def test_days_and_limit_that_are_not_plain_numbers_in_range_are_422(ingest, value):
    from urllib.parse import quote

    r = ingest.client.get(f"{M}?days={quote(value)}")
    assert r.status == 422 and r.fields() == ["days"], r
    for path in (D, I):
        r = ingest.client.get(f"{path}?limit={quote(value)}")
        assert r.status == 422 and r.fields() == ["limit"], r


@pytest.mark.parametrize("cursor", ["%C2%B2", "OTk5OTk5OTk5OTk5OTk5OTk5OTk5OTk5", "LTE=", "!!", "w7I="])
def test_a_cursor_this_api_did_not_hand_out_is_422(ingest, cursor):
    r = ingest.client.get(f"{D}?cursor={cursor}")
    assert r.status == 422 and r.fields() == ["cursor"], r


def test_references_beyond_any_stored_number_are_404_not_a_database_overflow(ingest):
    assert ingest.client.post(I, incident()).status == 201
    r = ingest.client.patch(f"{I}/INC-99999999999999999999999", {"update": "x"})
    assert r.status == 404, r
    r = ingest.client.patch(f"{I}/pd-Q1X", {"caused_by": "D-99999999999999999999999"})
    assert r.status == 422 and r.fields() == ["caused_by"], r
    r = ingest.client.get(f"{D}?status=%00")
    assert r.status == 422 and r.fields() == ["status"], r


# --- JSON: depth, NUL, lone surrogates ----------------------------------------------------------

DEEP = b"[" * 5000 + b"]" * 5000
BAD_JSON = {
    "nested 5000 deep": (DEEP, None),
    "a NUL in a string": (json.dumps(deploy(note="before\u0000after")).encode(), "note"),
    "a lone surrogate": (json.dumps(deploy(note="x\ud800y")).encode(), "note"),
    "a NUL in a key": (b'{"id": "x", "\\u0000": 1}', None),
    "not UTF-8": (b'{"id": "\xff\xfe"}', None),
}


@pytest.mark.parametrize("case", BAD_JSON)
def test_hostile_json_is_422_naming_the_problem_and_nothing_is_stored(ingest, case):
    raw, field = BAD_JSON[case]
    for path in (D, I):
        r = ingest.client.post(path, raw=raw)
        assert r.status == 422, r
        assert r.fields() == [field] or path == I, r
    assert ingest.client.patch(f"{I}/pd-Q1X", raw=raw).status == 422
    r = ingest.client.alertmanager(None, raw=raw)
    assert 400 <= r.status < 500, r
    nothing_stored(ingest, deliveries=1)


@pytest.mark.parametrize("case", BAD_JSON)
def test_hostile_json_to_the_github_webhook_is_a_4xx(ingest, case):
    raw, _ = BAD_JSON[case]
    r = ingest.client.github("push", None, raw=raw, delivery=f"bad-{len(raw)}")
    assert 400 <= r.status < 500, r
    assert ingest.count("pending_commit") == 0 and ingest.count("commit_push") == 0


def test_a_raw_nul_byte_in_a_body_of_an_ignored_github_event_is_400_not_a_database_error(ingest):
    r = ingest.client.github("issues", None, raw=b'{"action": "opened"}\x00', delivery="nul-1")
    assert r.status == 400, r
    nothing_stored(ingest)


# --- PATCH validation ---------------------------------------------------------------------------

def test_patch_refuses_a_500000_character_note_and_an_object_as_update(ingest):
    assert ingest.client.post(I, incident()).status == 201
    events = ingest.count("incident_event")
    r = ingest.client.patch(f"{I}/pd-Q1X", {"note": "n" * 500_000})
    assert r.status == 422 and r.fields() == ["note"], r
    r = ingest.client.patch(f"{I}/pd-Q1X", {"update": {"text": "hi"}})
    assert r.status == 422 and r.fields() == ["update"], r
    r = ingest.client.patch(f"{I}/pd-Q1X", {"update": ["a"]})
    assert r.status == 422 and r.fields() == ["update"], r
    assert ingest.count("incident_event") == events


def test_an_alertmanager_environment_label_is_checked(ingest):
    r = ingest.client.alertmanager(notification(alert("f1", labels={"environment": "prod <!channel>"}), alert("f2")))
    assert r.status == 200, r
    body = r.json()
    assert len(body["declared"]) == 1 and body["skipped"][0]["field"].endswith("labels.environment"), body


# --- the body-size gate -------------------------------------------------------------------------

@pytest.mark.parametrize("path", [D, I, f"{I}/pd-Q1X", "/webhooks/alertmanager", "/webhooks/github", "/healthz"])
def test_a_declared_length_over_the_limit_is_413_before_the_body_is_sent(ingest, path):
    method = b"PATCH" if path.count("/") == 4 else b"POST"
    head = (method + b" " + path.encode() + b" HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Authorization: Bearer " + TOKEN.encode() + b"\r\nX-GitHub-Event: push\r\nX-GitHub-Delivery: d1\r\n"
            b"X-Hub-Signature-256: " + sign(b"{}", "x").encode() + b"\r\nContent-Length: 150000000\r\n\r\n")
    answer = raw_request(ingest.server.port, head)  # no byte of the body is sent: the 413 comes anyway
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b"body larger than" in answer
    nothing_stored(ingest)


def test_a_chunked_body_over_the_limit_is_cut_off_with_413(ingest):
    conn = ingest.client.connection()
    chunks = (b'{"id": "c1", "service": "checkout", "deployed_at": "2026-11-25T10:12:00Z", "note": "',
              *(b"n" * 65536 for _ in range(40)), b'"}')
    conn.request("POST", "/webhooks/alertmanager", body=iter(chunks), encode_chunked=True,
                 headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json", "Transfer-Encoding": "chunked"})
    resp = conn.getresponse()
    resp.read()
    conn.close()
    assert resp.status == 413
    nothing_stored(ingest)


def test_after_a_413_the_same_connection_serves_the_next_request(ingest):
    conn = ingest.client.connection()
    big = json.dumps(deploy(note="n" * 1_100_000)).encode()
    conn.request("POST", D, body=big, headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"})
    resp = conn.getresponse()
    resp.read()
    assert resp.status == 413
    conn.request("POST", D, body=json.dumps(deploy()).encode(),
                 headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"})
    resp = conn.getresponse()
    resp.read()
    conn.close()
    assert resp.status == 201 and ingest.count("deploy") == 1


# --- 405 says every method the path serves --------------------------------------------------------

@pytest.mark.parametrize("path, served", [(D, {"GET", "POST"}), (I, {"GET", "POST"}), (f"{I}/pd-Q1X", {"PATCH"}),
                                          (M, {"GET"}), ("/webhooks/github", {"POST"}), ("/healthz", {"GET"})])
def test_a_method_a_path_does_not_serve_is_405_with_every_method_it_does_serve(ingest, path, served):
    r = ingest.client.request("PUT", path, raw=b"{}")
    assert r.status == 405, r
    allowed = {m.strip() for m in r.headers["allow"].split(",")}
    assert allowed - {"HEAD"} == served, r.headers
    for method in served:  # and each of them still reaches its own handler
        assert ingest.client.request(method, path, raw=b"{}" if method != "GET" else None).status != 405
