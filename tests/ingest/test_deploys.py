"""POST /api/v1/deploys over real HTTP: idempotent on ``id``, field-level 422s, 413, nothing stored on error."""

from __future__ import annotations

import threading

import pytest

D = "/api/v1/deploys"
_DROP = object()  # an override that removes the field


def deploy(**over):
    body = {
        "id": "gh-run-9912",
        "service": "checkout",
        "environment": "production",
        "version": "2026.11.24-1",
        "deployed_at": "2026-11-25T10:12:00Z",
        "status": "success",
        "commits": [
            {"sha": "9fceb02aa", "committed_at": "2026-11-24T16:40:00Z"},
            {"sha": "1a2b3c4d", "committed_at": "2026-11-25T08:12:00+02:00"},
        ],
        "rollback_of": None,
        "change_failure": False,
        "url": "https://ci.example/run/9912",
    }
    body.update(over)
    return {k: v for k, v in body.items() if v is not _DROP}


def test_a_new_deploy_is_201_and_comes_back_as_stored(ingest):
    r = ingest.client.post(D, deploy(note="release train"))
    assert r.status == 201, r
    body = r.json()
    assert body["id"] == "gh-run-9912"
    assert body["ref"].startswith("D-")
    assert body["service"] == "checkout"
    assert body["environment"] == "production"
    assert body["version"] == "2026.11.24-1"
    assert body["deployed_at"] == "2026-11-25T10:12:00Z"
    assert body["status"] == "success"
    assert body["commits"] == [
        {"sha": "9fceb02aa", "committed_at": "2026-11-24T16:40:00Z"},
        {"sha": "1a2b3c4d", "committed_at": "2026-11-25T06:12:00Z"},  # offset normalized to UTC
    ]
    assert body["rollback_of"] is None and body["change_failure"] is False
    assert body["url"] == "https://ci.example/run/9912"
    assert body["note"] == "release train"
    assert body["source"] == "api"
    assert body["created_at"] == "2026-11-25T12:00:00Z"
    assert ingest.count("deploy") == 1 and ingest.count("deploy_commit") == 2 and ingest.count("lead_sample") == 2


def test_a_retry_with_the_same_id_is_200_with_the_same_record_and_one_row(ingest):
    first = ingest.client.post(D, deploy())
    assert first.status == 201
    ingest.clock.advance(minutes=3)  # a retry a little later must not change created_at either
    again = ingest.client.post(D, deploy())
    assert again.status == 200, again
    assert again.json() == first.json()
    # A retry that differs (a re-run job reporting a new time) still returns what was stored.
    other = ingest.client.post(D, deploy(deployed_at="2026-11-25T11:00:00Z", version="v2", commits=[]))
    assert other.status == 200
    assert other.json() == first.json()
    assert ingest.count("deploy") == 1 and ingest.count("deploy_commit") == 2 and ingest.count("lead_sample") == 2


def test_a_retry_naming_another_service_creates_no_service(ingest):
    first = ingest.client.post(D, deploy())
    again = ingest.client.post(D, deploy(service="not-yet-known"))
    assert again.status == 200 and again.json() == first.json()
    assert ingest.count("service") == 1 and ingest.count("deploy") == 1


def test_a_retry_of_a_rollback_returns_the_stored_rollback(ingest):
    _seed_rollback_targets(ingest)
    body = deploy(id="rb-1", rollback_of="co-1", commits=[], deployed_at="2026-11-25T10:00:00Z")
    first = ingest.client.post(D, body)
    assert first.status == 201, first
    again = ingest.client.post(D, body)
    assert again.status == 200 and again.json() == first.json()
    assert ingest.count("deploy", "WHERE rollback_of_id IS NOT NULL") == 1


def test_a_new_deploy_answers_what_a_read_returns(ingest):
    """The 201 body is built from what was written; it must equal the stored record as read back."""
    _seed_rollback_targets(ingest)
    for body in (
        deploy(id="n-1", note="with a note", change_failure=True),
        deploy(id="n-2", service="New-Service", environment="Staging", commits=["abcdef12"], url=None),
        deploy(id="n-3", rollback_of="co-1", commits=[], deployed_at="2026-11-25T10:00:00Z"),
        {"id": "n-4", "service": "checkout", "deployed_at": "2026-11-25T10:00:00.250+01:00", "status": "failure"},
    ):
        created = ingest.client.post(D, body)
        assert created.status == 201, created
        listed = {d["id"]: d for d in ingest.client.get(f"{D}?limit=500").json()["items"]}
        answer = created.json()
        assert answer.pop("created_services") == (["New-Service"] if body["id"] == "n-2" else [])
        assert listed[body["id"]] == answer


def test_minimal_deploy_gets_the_documented_defaults(ingest):
    r = ingest.client.post(D, {"id": "m1", "service": "Checkout", "deployed_at": "2026-11-25T10:00:00Z"})
    assert r.status == 201, r
    body = r.json()
    assert body["service"] == "Checkout"  # the display form, as sent
    assert body["environment"] == "production"
    assert body["status"] == "success"
    assert body["commits"] == []
    assert body["change_failure"] is False


def test_the_type_field_of_the_import_format_is_accepted(ingest):
    assert ingest.client.post(D, deploy(type="deploy")).status == 201


def test_concurrent_retries_never_create_a_duplicate(ingest):
    """8 clients post the same id at the same moment (a CI retry storm): one 201, seven 200s."""
    results: list = []
    barrier = threading.Barrier(8)
    body = deploy(service="brand-new-service")  # the service is created concurrently too

    def worker():
        conn = ingest.client.connection()
        conn.connect()  # connect first so the requests really start together
        barrier.wait()
        results.append(ingest.client.post(D, body, conn=conn))
        conn.close()

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    statuses = sorted(r.status for r in results)
    assert statuses == [200] * 7 + [201], results
    assert len({r.body for r in results}) == 1  # every caller got the same record
    assert ingest.count("deploy") == 1
    assert ingest.count("deploy_commit") == 2
    assert ingest.count("lead_sample") == 2
    assert ingest.count("service") == 1


def test_concurrent_new_deploys_of_a_new_service_all_land(ingest):
    results: list = []
    barrier = threading.Barrier(8)

    def worker(i):
        conn = ingest.client.connection()
        conn.connect()
        barrier.wait()
        results.append(ingest.client.post(D, deploy(id=f"par-{i}", service="fresh", commits=[{"sha": f"abc{i}0"}]), conn=conn))
        conn.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(r.status for r in results) == [201] * 8, results
    assert ingest.count("deploy") == 8 and ingest.count("service") == 1


# --- bad input: one case per field; each is 422 naming the field, and nothing is stored ------------

LONG = "x" * 201
BAD_FIELDS = [
    # (case id, overrides, the field the 422 must name)
    ("id-missing", {"id": _DROP}, "id"),
    ("id-null", {"id": None}, "id"),
    ("id-empty", {"id": "  "}, "id"),
    ("id-bool", {"id": True}, "id"),
    ("id-object", {"id": {"run": 1}}, "id"),
    ("id-too-long", {"id": LONG}, "id"),
    ("service-missing", {"service": _DROP}, "service"),
    ("service-empty", {"service": ""}, "service"),
    ("service-markup", {"service": "check<out>"}, "service"),
    ("service-number", {"service": 42}, "service"),
    ("service-too-long", {"service": "s" * 101}, "service"),
    ("environment-spaces", {"environment": "prod env"}, "environment"),
    ("environment-number", {"environment": 5}, "environment"),
    ("deployed_at-missing", {"deployed_at": _DROP}, "deployed_at"),
    ("deployed_at-garbage", {"deployed_at": "yesterday"}, "deployed_at"),
    ("deployed_at-number", {"deployed_at": 1764065520}, "deployed_at"),
    ("deployed_at-future", {"deployed_at": "2026-11-25T12:30:00Z"}, "deployed_at"),
    ("status", {"status": "ok"}, "status"),
    ("status-number", {"status": 1}, "status"),
    ("commits-not-list", {"commits": "9fceb02"}, "commits"),
    ("commits-object", {"commits": {"sha": "9fceb02"}}, "commits"),
    ("commits-item-number", {"commits": [7]}, "commits[0]"),
    ("commit-sha-missing", {"commits": [{"committed_at": "2026-11-24T16:40:00Z"}]}, "commits[0].sha"),
    ("commit-sha-not-hex", {"commits": [{"sha": "zzzzzzz"}]}, "commits[0].sha"),
    ("commit-sha-too-short", {"commits": [{"sha": "abc"}]}, "commits[0].sha"),
    ("commit-sha-second", {"commits": [{"sha": "abcd1234"}, {"sha": "not-a-sha"}]}, "commits[1].sha"),
    ("committed_at-garbage", {"commits": [{"sha": "abcd1234", "committed_at": "last week"}]}, "commits[0].committed_at"),
    ("committed_at-number", {"commits": [{"sha": "abcd1234", "committed_at": 1}]}, "commits[0].committed_at"),
    ("committed_at-future", {"commits": [{"sha": "abcd1234", "committed_at": "2027-01-01T00:00:00Z"}]}, "commits[0].committed_at"),
    ("commits-too-many", {"commits": [{"sha": f"{i:08x}"} for i in range(1001)]}, "commits"),
    ("rollback_of-self", {"rollback_of": "gh-run-9912"}, "rollback_of"),
    ("rollback_of-bool", {"rollback_of": True}, "rollback_of"),
    ("rollback_of-list", {"rollback_of": ["a"]}, "rollback_of"),
    ("change_failure-string", {"change_failure": "yes"}, "change_failure"),
    ("change_failure-number", {"change_failure": 1}, "change_failure"),
    ("url-ftp", {"url": "ftp://ci.example/run/1"}, "url"),
    ("url-not-a-link", {"url": "see the pipeline"}, "url"),
    ("url-object", {"url": {"href": "https://x"}}, "url"),
    ("url-too-long", {"url": "https://ci.example/" + "a" * 2000}, "url"),
    ("version-list", {"version": ["1"]}, "version"),
    ("version-too-long", {"version": "v" * 201}, "version"),
    ("note-too-long", {"note": "n" * 2001}, "note"),
    ("unknown-field", {"branch": "main"}, "branch"),
    ("type-incident", {"type": "incident"}, "type"),
]


def test_bad_input_is_422_naming_the_field_and_stores_nothing(ingest, subtests):
    before = ingest.stored_counts()
    for case, overrides, field in BAD_FIELDS:
        with subtests.test(case=case, field=field):
            r = ingest.client.post(D, deploy(**overrides))
            assert r.status == 422, r
            body = r.json()
            assert body["error"]
            assert field in r.fields(), body
            for err in body["errors"]:
                assert isinstance(err["message"], str) and err["message"]
            assert ingest.stored_counts() == before


def test_every_bad_field_is_reported_at_once(ingest):
    r = ingest.client.post(D, {"id": "x", "service": "", "deployed_at": "soon", "status": "meh", "url": "nope"})
    assert r.status == 422
    assert {"service", "deployed_at", "status", "url"} <= set(r.fields())


@pytest.mark.parametrize("payload", [[], "deploy", 42, None], ids=["list", "string", "number", "null"])
def test_a_body_that_is_not_an_object_is_422(ingest, payload):
    r = ingest.client.post(D, payload)
    assert r.status == 422, r
    assert ingest.count("deploy") == 0


def _seed_rollback_targets(ingest):
    assert ingest.client.post(D, deploy(id="pay-1", service="payments", commits=[])).status == 201
    assert ingest.client.post(D, deploy(id="co-1", deployed_at="2026-11-25T09:00:00Z", commits=[])).status == 201
    assert ingest.client.post(D, deploy(id="co-late", deployed_at="2026-11-25T11:00:00Z", commits=[])).status == 201


def test_a_bad_rollback_of_is_422_naming_rollback_of_and_stores_nothing(ingest, subtests):
    _seed_rollback_targets(ingest)
    before = ingest.stored_counts()
    for case, target in (
        ("another-service", "pay-1"),
        ("forward-in-time", "co-late"),
        ("unknown-id", "no-such-deploy"),
        ("unknown-ref", "D-999"),
    ):
        with subtests.test(case=case, rollback_of=target):
            r = ingest.client.post(D, deploy(id="rb-1", rollback_of=target, commits=[], deployed_at="2026-11-25T10:00:00Z"))
            assert r.status == 422, r
            assert "rollback_of" in r.fields()
            assert ingest.stored_counts() == before


def test_a_rollback_links_its_target_and_makes_it_a_change_failure(ingest):
    _seed_rollback_targets(ingest)
    r = ingest.client.post(D, deploy(id="rb-1", rollback_of="co-1", commits=[], deployed_at="2026-11-25T10:00:00Z"))
    assert r.status == 201, r
    assert r.json()["rollback_of"] == "co-1" and r.json()["rollback_of_ref"].startswith("D-")
    listed = {d["id"]: d for d in ingest.client.get(f"{D}?service=checkout").json()["items"]}
    assert listed["co-1"]["change_failure"] is True
    assert listed["rb-1"]["change_failure"] is False
    # rollback_of may also use the D-<n> reference the API returned
    ref = listed["co-late"]["ref"]
    r = ingest.client.post(D, deploy(id="rb-2", rollback_of=ref, commits=[], deployed_at="2026-11-25T11:30:00Z"))
    assert r.status == 201, r
    assert (r.json()["rollback_of"], r.json()["rollback_of_ref"]) == ("co-late", ref)


def test_change_failure_true_is_stored(ingest):
    r = ingest.client.post(D, deploy(change_failure=True))
    assert r.status == 201 and r.json()["change_failure"] is True


def test_invalid_json_is_422_and_stores_nothing(ingest):
    for raw in (b"{", b'{"id": "x",}', b"\xff\xfe{}", b"", b"nul"):
        r = ingest.client.post(D, raw=raw)
        assert r.status == 422, (raw, r)
        assert r.json()["error"]
    assert ingest.count("deploy") == 0


def test_a_body_over_1_mb_is_413_and_stores_nothing(ingest):
    big = deploy(note="n" * 100)
    big["note"] = "n" * 1_000_001  # valid JSON, valid fields apart from size: only the size is wrong
    r = ingest.client.post(D, big)
    assert r.status == 413, r
    assert ingest.stored_counts() == dict.fromkeys(ingest.stored_counts(), 0)
    # the connection-level behaviour is fine too: the next request on a new connection works
    assert ingest.client.post(D, deploy()).status == 201


def test_a_body_of_exactly_1_mb_is_not_refused_for_its_size(ingest):
    raw = bytearray(b'{"id": "gh-run-9912", "service": "checkout", "deployed_at": "2026-11-25T10:12:00Z"}')
    pad = 1_000_000 - len(raw)
    raw = bytes(raw[:-1]) + b" " * pad + b"}"
    assert len(raw) == 1_000_000
    r = ingest.client.post(D, raw=raw)
    assert r.status == 201, r


def test_a_chunked_body_over_1_mb_is_413(ingest):
    """No Content-Length (chunked transfer): the limit is enforced while reading."""
    conn = ingest.client.connection()
    chunks = (b'{"id": "c1", "service": "checkout", "deployed_at": "2026-11-25T10:12:00Z", "note": "',
              *(b"n" * 65536 for _ in range(16)), b'"}')
    conn.request("POST", D, body=iter(chunks), encode_chunked=True,
                 headers={"Authorization": f"Bearer {ingest.client.token}", "Content-Type": "application/json",
                          "Transfer-Encoding": "chunked"})
    resp = conn.getresponse()
    resp.read()
    conn.close()
    assert resp.status == 413
    assert ingest.count("deploy") == 0


def test_a_huge_declared_length_is_refused_straight_away(ingest):
    import socket

    with socket.create_connection(("127.0.0.1", ingest.server.port), timeout=10) as s:
        s.sendall(
            b"POST /api/v1/deploys HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Authorization: Bearer " + ingest.client.token.encode() + b"\r\nContent-Length: 500000000\r\n\r\n{"
        )
        head = s.recv(4096)
    assert head.startswith(b"HTTP/1.1 413"), head
    assert ingest.count("deploy") == 0


def test_a_failed_deploy_is_stored_but_counts_nowhere(ingest):
    r = ingest.client.post(D, deploy(status="failure"))
    assert r.status == 201 and r.json()["status"] == "failure"
    m = ingest.client.get("/api/v1/metrics?days=7").json()
    assert m["deployment_frequency"]["deploys"] == 0
    assert m["lead_time"]["samples"] == 0
    assert ingest.count("lead_sample") == 0
