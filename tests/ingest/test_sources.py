"""The table of webhook sources (bot/ingest/sources.py): what every source shares, checked for each.

Each source's own mapping is in its test file (test_github, test_gitlab, test_alertmanager,
test_argocd, test_pagerduty_webhook, test_opsgenie); here, over real HTTP for every row of the
table: unverified requests are refused with nothing stored, oversized bodies too, concurrent copies
of one delivery act once, and every secret stays out of the logs.
"""

from __future__ import annotations

import json
import threading
import uuid

import pytest

from bot.config import Settings
from bot.ingest.sources import SOURCES
from bot.logs import redact
from tests.ingest import test_argocd, test_gitlab, test_opsgenie, test_pagerduty_webhook
from tests.ingest.conftest import GITLAB_TOKEN, SECRET, sign

NAMES = [s.name for s in SOURCES]


def _github(ingest, raw: bytes, *, verified: bool, key: str):
    headers = {"X-GitHub-Event": "push", "X-GitHub-Delivery": key}
    if verified:
        headers["X-Hub-Signature-256"] = sign(raw, SECRET)
    return ingest.client.request("POST", "/webhooks/github", raw=raw, headers=headers, token=None)


def _gitlab(ingest, raw: bytes, *, verified: bool, key: str):
    headers = {"X-Gitlab-Event": "Push Hook", "X-Gitlab-Event-UUID": key}
    if verified:
        headers["X-Gitlab-Token"] = GITLAB_TOKEN
    return ingest.client.request("POST", "/webhooks/gitlab", raw=raw, headers=headers, token=None)


def _pagerduty(ingest, raw: bytes, *, verified: bool, key: str):
    headers = {"X-PagerDuty-Signature": test_pagerduty_webhook.sign(raw)} if verified else {}
    return ingest.client.request("POST", "/webhooks/pagerduty", raw=raw, headers=headers, token=None)


def _bearer(path: str):
    def send(ingest, raw: bytes, *, verified: bool, key: str):
        return ingest.client.request("POST", path, raw=raw, **({} if verified else {"token": None}))
    return send


def _bodies() -> dict:
    """One body per source that changes something (a commit, an incident, a deploy)."""
    from tests.ingest.test_alertmanager import alert, notification
    from tests.ingest.test_github import push

    return {
        "github": (push([(f"{1:040x}", "2026-11-25T09:00:00Z")]), _github, ("pending_commit", 1)),
        "alertmanager": (notification(alert("fp-1")), _bearer("/webhooks/alertmanager"), ("incident", 1)),
        "gitlab": (test_gitlab.push([(f"{1:040x}", "2026-11-25T09:00:00Z")]), _gitlab, ("pending_commit", 1)),
        "argocd": (test_argocd.body(), _bearer("/webhooks/argocd"), ("deploy", 1)),
        "pagerduty": (test_pagerduty_webhook.event("incident.triggered", event_id="E-1"), _pagerduty, ("incident", 1)),
        "opsgenie": (test_opsgenie.body("Create"), _bearer("/webhooks/opsgenie"), ("incident", 1)),
    }


def test_the_table_has_one_row_per_source_each_with_its_own_path():
    assert NAMES == ["github", "alertmanager", "gitlab", "argocd", "pagerduty", "opsgenie"]
    assert len({s.path for s in SOURCES}) == len(SOURCES)
    assert set(_bodies()) == set(NAMES)


def test_every_sources_secret_is_among_the_redacted_secrets():
    env = {"GITHUB_WEBHOOK_SECRET": "gh-secret-123456", "GITLAB_WEBHOOK_TOKEN": "gl-token-123456",
           "PAGERDUTY_WEBHOOK_SECRET": "pd-secret-123456", "INGEST_TOKENS": "ingest-one-123456,ingest-two-123456",
           "SLACK_BOT_TOKEN": "xoxb-1-2-3", "SLACK_SIGNING_SECRET": "signing-123456"}
    settings = Settings.from_env(env)
    for source in SOURCES:
        secrets = [s for s in source.secrets(settings) if s]
        assert secrets, f"{source.name} has no secret configured in this test"
        for secret in secrets:
            assert secret in settings.secrets, (source.name, secret)
            assert secret not in redact(f"request from {source.name} with {secret} in it", settings.secrets)
    assert set(settings.secrets) == {"gh-secret-123456", "gl-token-123456", "pd-secret-123456", "ingest-one-123456",
                                     "ingest-two-123456", "xoxb-1-2-3", "signing-123456"}


@pytest.mark.parametrize("name", NAMES)
def test_an_unverified_request_is_401_and_stores_nothing(ingest, name):
    payload, send, _ = _bodies()[name]
    r = send(ingest, json.dumps(payload).encode(), verified=False, key=str(uuid.uuid4()))
    assert r.status == 401, r
    assert ingest.stored_counts() == dict.fromkeys(ingest.stored_counts(), 0)


@pytest.mark.parametrize("name", NAMES)
def test_a_body_over_its_limit_is_413_and_stores_nothing(ingest, name):
    from bot.ingest.bodies import limit_for

    payload, send, _ = _bodies()[name]
    limit = limit_for(f"/webhooks/{name}")  # 1 MB; GitHub's 25 MB cap for GitHub
    raw = json.dumps({**payload, "padding": "x" * limit}).encode()
    r = send(ingest, raw, verified=True, key=str(uuid.uuid4()))
    assert r.status == 413, r
    assert ingest.stored_counts() == dict.fromkeys(ingest.stored_counts(), 0)


@pytest.mark.parametrize("name", NAMES)
def test_concurrent_copies_of_one_delivery_act_once(ingest, name):
    payload, send, (table, expected) = _bodies()[name]
    raw = json.dumps(payload).encode()
    barrier, results = threading.Barrier(8), []

    def worker():
        barrier.wait()
        results.append(send(ingest, raw, verified=True, key="the-same-delivery"))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(results) == 8 and all(r.status == 200 for r in results), results
    assert sorted(r.json()["status"] for r in results) == ["duplicate"] * 7 + ["processed"]
    assert ingest.count(table) == expected
    assert ingest.count("webhook_delivery") == 1
