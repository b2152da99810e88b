"""GET /api/v1/metrics, the paginated listings and the OpenAPI document, over real HTTP."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from urllib.parse import quote

import pytest

from bot.services.metrics import build_metrics
from bot.store.db import session_scope
from tests.ingest.conftest import NOW, UTC

D, I = "/api/v1/deploys", "/api/v1/incidents"


def iso(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def seed_history(ingest) -> dict:
    """A month of mixed history through the API; returns what was posted, by id."""
    posted: dict[str, dict] = {}
    n = 0
    for day in range(28, -1, -1):
        for service in ("checkout", "payments"):
            if (day + len(service)) % 3 == 0:
                continue
            n += 1
            at = NOW - timedelta(days=day, hours=(n % 5) + 1)
            commits = [
                {"sha": f"{n:04x}{k:04x}aa", "committed_at": iso(at - timedelta(hours=3 * k + n % 7, minutes=n))}
                for k in range(1 + n % 3)
            ]
            body = {
                "id": f"{service}-{n}",
                "service": service,
                "environment": ("staging" if n % 7 == 0 else "production" if n % 2 else "prod"),
                "version": f"v{n}",
                "deployed_at": iso(at),
                "status": "failure" if n % 11 == 0 else "success",
                "commits": commits,
                "change_failure": n % 13 == 0,
            }
            r = ingest.client.post(D, body)
            assert r.status == 201, r
            posted[body["id"]] = {k: v for k, v in r.json().items() if k != "created_services"}  # the POST's own
    # a rollback and a few incidents, linked, resolved, open
    r = ingest.client.post(D, {"id": "checkout-rb", "service": "checkout", "deployed_at": iso(NOW - timedelta(days=2)),
                              "rollback_of": "checkout-5"})
    assert r.status == 201, r
    posted["checkout-rb"] = {k: v for k, v in r.json().items() if k != "created_services"}
    incidents = [
        {"id": "inc-a", "service": "checkout", "severity": "sev1", "started_at": iso(NOW - timedelta(days=20)),
         "acknowledged_at": iso(NOW - timedelta(days=20) + timedelta(minutes=7)),
         "resolved_at": iso(NOW - timedelta(days=20) + timedelta(hours=2)), "caused_by": "checkout-5"},
        {"id": "inc-b", "service": "payments", "started_at": iso(NOW - timedelta(days=9)),
         "resolved_at": iso(NOW - timedelta(days=9) + timedelta(minutes=50))},
        {"id": "inc-c", "service": "payments", "started_at": iso(NOW - timedelta(days=3)),
         "acknowledged_at": iso(NOW - timedelta(days=3) + timedelta(minutes=2))},
        {"id": "inc-d", "service": "checkout", "environment": "staging", "started_at": iso(NOW - timedelta(days=1)),
         "resolved_at": iso(NOW - timedelta(hours=20))},
        {"id": "inc-e", "service": "checkout", "started_at": iso(NOW - timedelta(days=40)),
         "resolved_at": iso(NOW - timedelta(days=25))},
    ]
    for body in incidents:
        r = ingest.client.post(I, body)
        assert r.status == 201, r
        posted[body["id"]] = {k: v for k, v in r.json().items() if k != "created_services"}
    return posted


def direct_metrics(ingest, **kw) -> dict:
    with session_scope(ingest.engine, write=False) as session:
        report = build_metrics(session, timezone_name="UTC", production_environments=("production", "prod"), **kw)
    return json.loads(json.dumps(report))


def test_metrics_over_http_equal_build_metrics_for_the_same_data(ingest, subtests):
    seed_history(ingest)
    cases = [
        ("default", "", dict(service=None, days=30, end=NOW)),
        ("days-7", "?days=7", dict(service=None, days=7, end=NOW)),
        ("service", "?service=checkout", dict(service="checkout", days=30, end=NOW)),
        ("service-case", "?service=Payments&days=14", dict(service="payments", days=14, end=NOW)),
        ("end", "?days=10&end=2026-11-20T00:00:00Z", dict(service=None, days=10, end=datetime(2026, 11, 20, tzinfo=UTC))),
        ("end-offset", f"?end={quote('2026-11-22T01:00:00+01:00')}", dict(service=None, days=30, end=datetime(2026, 11, 22, tzinfo=UTC))),
        ("unknown-service", "?service=nope", dict(service="nope", days=30, end=NOW)),
        ("empty-params", "?service=&days=&end=", dict(service=None, days=30, end=NOW)),
        ("long", "?days=365", dict(service=None, days=365, end=NOW)),
    ]
    for case, query, kw in cases:
        with subtests.test(case=case):
            r = ingest.client.get(f"/api/v1/metrics{query}")
            assert r.status == 200, r
            assert r.json() == direct_metrics(ingest, **kw)
    # and the numbers are not all empty: the seed really exercises every key
    m = ingest.client.get("/api/v1/metrics").json()
    assert m["deployment_frequency"]["deploys"] > 10
    assert m["lead_time"]["samples"] > 10
    assert m["change_failure_rate"]["failed"] >= 2
    assert m["time_to_restore"]["incidents"] == 3 and m["time_to_restore"]["open_incidents"] == 1


def test_metrics_bad_parameters_are_422_naming_them(ingest, subtests):
    for query, field in (
        ("days=abc", "days"), ("days=0", "days"), ("days=-3", "days"), ("days=1.5", "days"),
        ("days=3661", "days"), ("days=%207x", "days"),
        ("end=yesterday", "end"), ("end=2026-13-01T00:00:00Z", "end"),
    ):
        with subtests.test(query=query):
            r = ingest.client.get(f"/api/v1/metrics?{query}")
            assert r.status == 422, r
            assert field in r.fields(), r


def test_an_end_without_offset_is_read_in_dora_timezone_like_the_cli(make_ingest):
    ingest = make_ingest(timezone_name="Europe/Berlin")
    m = ingest.client.get("/api/v1/metrics?end=2026-11-25&days=7").json()
    assert m["scope"]["end"] == "2026-11-24T23:00:00Z" and m["scope"]["timezone"] == "Europe/Berlin"
    m = ingest.client.get(f"/api/v1/metrics?end={quote('2026-11-25T00:00:00Z')}&days=7").json()
    assert m["scope"]["end"] == "2026-11-25T00:00:00Z"


def test_metrics_json_has_every_key_on_an_empty_database(ingest):
    m = ingest.client.get("/api/v1/metrics").json()
    assert set(m) == {"scope", "benchmark", "deployment_frequency", "lead_time", "change_failure_rate",
                      "deployment_rework_rate", "time_to_restore", "failed_deployment_recovery_time", "mtta"}
    assert m["deployment_rework_rate"] == {"rework": 0, "deploys": 0, "rate": None, "tier": None,
                                           "reason": m["deployment_rework_rate"]["reason"]}
    assert m["deployment_rework_rate"]["reason"]
    assert m["scope"]["end"] == "2026-11-25T12:00:00Z" and m["scope"]["days"] == 30
    assert m["deployment_frequency"]["deploys"] == 0 and m["deployment_frequency"]["tier"] is None
    assert m["lead_time"]["median_seconds"] is None and m["lead_time"]["reason"]


# --- listings -----------------------------------------------------------------------------------

def walk(ingest, path: str, query: str, limit: int) -> list[dict]:
    """Follow next_cursor to the end; fail on a loop."""
    items, cursor, pages = [], None, 0
    while True:
        sep = "&" if query else ""
        q = f"?{query}{sep}limit={limit}" + (f"&cursor={quote(cursor)}" if cursor else "")
        r = ingest.client.get(path + q)
        assert r.status == 200, (q, r)
        page = r.json()
        assert len(page["items"]) <= limit
        items += page["items"]
        cursor = page["next_cursor"]
        pages += 1
        assert pages < 200, "next_cursor does not end"
        if cursor is None:
            return items


def ref_n(item) -> int:
    return int(item["ref"].split("-")[1])


def test_deploy_listing_filters_and_cursor_pagination(ingest, subtests):
    posted = seed_history(ingest)
    deploys = [d for d in posted.values() if d["ref"].startswith("D-")]

    def expect(pred):
        return sorted((d for d in deploys if pred(d)), key=ref_n, reverse=True)

    since, until = NOW - timedelta(days=12), NOW - timedelta(days=4)
    cases = [
        ("all", "", lambda d: True),
        ("service", "service=checkout", lambda d: d["service"] == "checkout"),
        ("service-case", "service=CHECKOUT", lambda d: d["service"] == "checkout"),
        ("environment", "environment=prod", lambda d: d["environment"] == "prod"),
        ("status", "status=failure", lambda d: d["status"] == "failure"),
        ("since-until", f"since={iso(since)}&until={iso(until)}",
         lambda d: iso(since) <= d["deployed_at"] < iso(until)),
        ("combined", f"service=payments&environment=production&since={iso(since)}",
         lambda d: d["service"] == "payments" and d["environment"] == "production" and d["deployed_at"] >= iso(since)),
        ("nothing", "service=nope", lambda d: False),
    ]
    for case, query, pred in cases:
        want = expect(pred)
        for limit in (1, 4, 7, 500):
            with subtests.test(case=case, limit=limit):
                got = walk(ingest, D, query, limit)
                assert [d["ref"] for d in got] == [d["ref"] for d in want]  # newest first, no gap, no repeat
                # the listing shows the record the POST returned (change_failure may have changed since)
                strip = lambda rows: [{k: v for k, v in d.items() if k != "change_failure"} for d in rows]  # noqa: E731
                assert strip(got) == strip(want)
    assert len(deploys) > 20


def test_a_full_last_page_ends_with_an_empty_page(ingest):
    for i in range(6):
        assert ingest.client.post(D, {"id": f"d{i}", "service": "s", "deployed_at": "2026-11-25T10:00:00Z"}).status == 201
    assert [d["id"] for d in walk(ingest, D, "", 3)] == [f"d{i}" for i in range(5, -1, -1)]
    assert [d["id"] for d in walk(ingest, D, "", 6)] == [f"d{i}" for i in range(5, -1, -1)]


def test_pagination_does_not_skip_or_repeat_when_new_deploys_arrive_between_pages(ingest):
    for i in range(10):
        assert ingest.client.post(D, {"id": f"d{i}", "service": "s", "deployed_at": "2026-11-25T10:00:00Z"}).status == 201
    first = ingest.client.get(f"{D}?limit=4").json()
    for i in range(10, 13):  # arrive while a client is paging
        assert ingest.client.post(D, {"id": f"d{i}", "service": "s", "deployed_at": "2026-11-25T10:00:00Z"}).status == 201
    rest, cursor = [], first["next_cursor"]
    while cursor:
        page = ingest.client.get(f"{D}?limit=4&cursor={quote(cursor)}").json()
        rest += page["items"]
        cursor = page["next_cursor"]
    ids = [d["id"] for d in first["items"] + rest]
    assert ids == [f"d{i}" for i in range(9, -1, -1)]


def test_incident_listing_filters_and_cursor_pagination(ingest, subtests):
    for i in range(13):
        started = NOW - timedelta(days=13 - i)
        body = {"id": f"pd-{i}", "service": "checkout" if i % 3 else "payments", "started_at": iso(started)}
        if i % 2:
            body["resolved_at"] = iso(started + timedelta(minutes=30 + i))
        assert ingest.client.post(I, body).status == 201
    listed = walk(ingest, I, "", 500)
    assert [x["id"] for x in listed] == [f"pd-{i}" for i in range(12, -1, -1)]
    since, until = iso(NOW - timedelta(days=10)), iso(NOW - timedelta(days=3))
    cases = [
        ("open", "state=open", lambda x: x["resolved_at"] is None),
        ("resolved", "state=resolved", lambda x: x["resolved_at"] is not None),
        ("all", "state=all", lambda x: True),
        ("service", "service=payments", lambda x: x["service"] == "payments"),
        ("since-until", f"since={since}&until={until}", lambda x: since <= x["started_at"] < until),
        ("combined", "service=checkout&state=open", lambda x: x["service"] == "checkout" and x["resolved_at"] is None),
    ]
    for case, query, pred in cases:
        want = [x for x in listed if pred(x)]
        for limit in (1, 3, 50):
            with subtests.test(case=case, limit=limit):
                assert walk(ingest, I, query, limit) == want


def test_listing_bad_parameters_are_422(ingest, subtests):
    for path, query, field in (
        (D, "limit=0", "limit"), (D, "limit=501", "limit"), (D, "limit=ten", "limit"), (D, "limit=-1", "limit"),
        (D, "cursor=%21%21%21", "cursor"), (D, "cursor=abc", "cursor"), (D, "cursor=eHl6", "cursor"),
        (D, "since=last-week", "since"), (D, "until=soon", "until"),
        (I, "state=closed", "state"), (I, "limit=1000", "limit"), (I, "cursor=***", "cursor"),
        (I, "since=x", "since"),
    ):
        with subtests.test(path=path, query=query):
            r = ingest.client.get(f"{path}?{query}")
            assert r.status == 422, r
            assert field in r.fields(), r


# --- OpenAPI ------------------------------------------------------------------------------------

def _doc(ingest) -> dict:
    r = ingest.client.get("/api/v1/openapi.json", token=None)
    assert r.status == 200, r
    assert r.headers["content-type"].startswith("application/json")
    return r.json()


def _refs(node, path="$"):
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "$ref":
                yield path, v
            else:
                yield from _refs(v, f"{path}.{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _refs(v, f"{path}[{i}]")


def _resolve(doc: dict, ref: str):
    assert ref.startswith("#/"), f"external $ref {ref}"
    node = doc
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        assert isinstance(node, dict) and part in node, f"$ref {ref} does not resolve"
        node = node[part]
    return node


def test_openapi_document_is_3_1_and_every_ref_resolves(ingest):
    doc = _doc(ingest)
    assert doc["openapi"].startswith("3.1")
    assert doc["info"]["title"] and doc["info"]["version"]
    refs = list(_refs(doc))
    assert refs
    for _, ref in refs:
        _resolve(doc, ref)
    # every security requirement names a declared scheme
    schemes = doc["components"]["securitySchemes"]
    for req in doc.get("security", []):
        assert set(req) <= set(schemes)
    assert schemes["bearer"]["type"] == "http" and schemes["bearer"]["scheme"].lower() == "bearer"


def test_openapi_documents_every_api_route_and_method_and_nothing_else(ingest):
    doc = _doc(ingest)

    def norm(path):
        return re.sub(r"\{[^}]+\}", "{}", path)

    served: set[tuple[str, str]] = set()
    for route in ingest.server.app.router_app.routes:
        if route.path.startswith("/api/v1/") and route.path != "/api/v1/openapi.json":
            for method in route.methods - {"HEAD"}:
                served.add((norm(route.path), method.lower()))
    documented = {
        (norm(path), method)
        for path, item in doc["paths"].items()
        for method in item
        if method in ("get", "put", "post", "delete", "patch", "options", "head", "trace")
    }
    assert served == documented
    for path, item in doc["paths"].items():
        names = re.findall(r"\{([^}]+)\}", path)
        for method, op in item.items():
            params = {p["name"] for p in op.get("parameters", []) + item.get("parameters", []) if p["in"] == "path"}
            assert params == set(names), (path, method)
            assert "responses" in op and op["responses"]


def test_openapi_validates_with_openapi_spec_validator(ingest):
    validator = pytest.importorskip("openapi_spec_validator")
    validator.validate(_doc(ingest))


def test_real_responses_match_their_documented_schemas(ingest, subtests):
    jsonschema = pytest.importorskip("jsonschema")
    doc = _doc(ingest)

    def check(instance, name):
        schema = dict(doc)
        schema["$ref"] = f"#/components/schemas/{name}"
        jsonschema.Draft202012Validator(schema).validate(instance)

    body = {"id": "ci-1", "service": "checkout", "environment": "production", "version": "1.0",
            "deployed_at": "2026-11-25T10:00:00Z", "status": "success",
            "commits": [{"sha": "abcdef12", "committed_at": "2026-11-25T09:00:00Z"}],
            "rollback_of": None, "change_failure": False, "url": "https://ci.example/1", "note": None}
    with subtests.test("DeployIn accepts a valid deploy"):
        check(body, "DeployIn")
    with subtests.test("Deploy"):
        check(ingest.client.post(D, body).json(), "Deploy")
    with subtests.test("DeployPage"):
        check(ingest.client.get(D).json(), "DeployPage")
    inc = {"id": "pd-1", "service": "checkout", "severity": "sev2", "title": "x", "started_at": "2026-11-25T10:00:00Z",
           "acknowledged_at": None, "resolved_at": None, "caused_by": "ci-1", "environment": None}
    with subtests.test("IncidentIn accepts a valid incident"):
        check(inc, "IncidentIn")
    with subtests.test("Incident"):
        check(ingest.client.post(I, inc).json(), "Incident")
    with subtests.test("IncidentPatch accepts a valid patch"):
        check({"resolved_at": "now", "note": "fixed"}, "IncidentPatch")
    with subtests.test("Incident after PATCH"):
        check(ingest.client.patch(f"{I}/pd-1", {"resolved_at": "now"}).json(), "Incident")
    with subtests.test("IncidentPage"):
        check(ingest.client.get(I).json(), "IncidentPage")
    with subtests.test("Error bodies"):
        check(ingest.client.post(D, {"id": "x"}).json(), "Error")
        check(ingest.client.post(D, {}, token="nope-nope-nope-nope").json(), "Error")
    with subtests.test("Metrics"):
        check(ingest.client.get("/api/v1/metrics").json(), "Metrics")
