"""Bearer tokens on the ingest API: every way of getting it wrong is 401 and stores nothing."""

from __future__ import annotations

import pytest

from tests.ingest.conftest import DEFAULT, OTHER_TOKEN, TOKEN

DEPLOY = {"id": "ci-1", "service": "checkout", "deployed_at": "2026-11-25T10:00:00Z"}
INCIDENT = {"id": "pd-1", "service": "checkout", "started_at": "2026-11-25T10:00:00Z"}
ALERTS = {
    "version": "4", "status": "firing", "receiver": "dora", "groupKey": "{}:{}",
    "alerts": [{"status": "firing", "labels": {"alertname": "Down", "service": "checkout"},
                "annotations": {}, "startsAt": "2026-11-25T10:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
                "fingerprint": "f1"}],
}

BAD_HEADERS = [
    ("missing", None),
    ("empty", ""),
    ("basic-scheme", f"Basic {TOKEN}"),
    ("token-scheme", f"Token {TOKEN}"),
    ("no-scheme", TOKEN),
    ("bearer-without-token", "Bearer"),
    ("bearer-empty-token", "Bearer "),
    ("wrong-token", "Bearer wrong-token-0123456789abcdef"),
    ("token-prefix", f"Bearer {TOKEN[:-1]}"),
    ("token-longer", f"Bearer {TOKEN}x"),
    ("both-tokens-as-one", f"Bearer {TOKEN},{OTHER_TOKEN}"),
]


def _auth(header):
    return {} if header is None else {"Authorization": header}


def test_a_bad_authorization_header_is_401_and_stores_nothing(ingest, subtests):
    api = ingest.client
    before = ingest.stored_counts()
    for case, header in BAD_HEADERS:
        for method, path, body in (
            ("POST", "/api/v1/deploys", DEPLOY),
            ("POST", "/api/v1/incidents", INCIDENT),
            ("PATCH", "/api/v1/incidents/pd-1", {"resolved_at": "now"}),
            ("POST", "/webhooks/alertmanager", ALERTS),
            ("GET", "/api/v1/deploys", None),
            ("GET", "/api/v1/incidents", None),
            ("GET", "/api/v1/metrics", None),
        ):
            with subtests.test(header=case, method=method, path=path):
                r = api.request(method, path, DEFAULT if body is None else body, token=None, headers=_auth(header))
                assert r.status == 401, r
                assert "error" in r.json()
                assert r.headers.get("www-authenticate", "").lower().startswith("bearer")
    assert ingest.stored_counts() == before
    assert ingest.events == []


def test_the_token_is_checked_before_the_body(ingest):
    """A wrong token with a bad body is still 401 (nothing about the input leaks)."""
    r = ingest.client.post("/api/v1/deploys", raw=b"{not json", token="wrong-token-0123456789abcdef")
    assert r.status == 401


@pytest.mark.parametrize("token", [TOKEN, OTHER_TOKEN])
def test_each_configured_token_works(ingest, token):
    r = ingest.client.post("/api/v1/deploys", DEPLOY, token=token)
    assert r.status == 201, r
    assert ingest.count("deploy") == 1


def test_the_scheme_is_case_insensitive(ingest):
    r = ingest.client.post("/api/v1/deploys", DEPLOY, token=None, headers={"Authorization": f"bearer {TOKEN}"})
    assert r.status == 201, r


def test_with_no_ingest_tokens_configured_everything_is_401(make_ingest):
    app = make_ingest(ingest_tokens=())
    for token in (TOKEN, "", None):
        assert app.client.post("/api/v1/deploys", DEPLOY, token=token).status == 401
        assert app.client.post("/api/v1/incidents", INCIDENT, token=token).status == 401
        assert app.client.get("/api/v1/metrics", token=token).status == 401
        assert app.client.alertmanager(ALERTS, token=token).status == 401
    r = app.client.post("/api/v1/deploys", DEPLOY)
    assert "INGEST_TOKENS" in r.json()["error"]
    assert app.stored_counts() == dict.fromkeys(app.stored_counts(), 0)


def test_the_openapi_document_needs_no_token(ingest):
    assert ingest.client.get("/api/v1/openapi.json", token=None).status == 200
