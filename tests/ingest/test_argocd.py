"""POST /webhooks/argocd over real HTTP: the body the Argo CD Notifications template of docs/ingest.md sends.

The template renders ``{"app", "revision", "finished_at", "phase", "environment"}`` from the
Application (Argo CD Notifications, webhook service); the fixtures below are such renderings.
"""

from __future__ import annotations

import json
from datetime import datetime

from tests.ingest.conftest import NOW, OTHER_TOKEN, UTC

SERVICE = "shop-api"


def sha(n: int) -> str:
    return f"{n:040x}"


def body(*, app=SERVICE, revision=None, finished_at="2026-11-25T10:00:00Z", phase="Succeeded", environment="production") -> dict:
    return {"app": app, "revision": revision if revision is not None else sha(1), "finished_at": finished_at,
            "phase": phase, "environment": environment}


def send(ingest, payload=None, *, raw: bytes | None = None, token="default"):
    data = raw if raw is not None else json.dumps(payload).encode()
    kw = {} if token == "default" else {"token": token}
    return ingest.client.request("POST", "/webhooks/argocd", raw=data, headers={"User-Agent": "Go-http-client/1.1"}, **kw)


def deploys(ingest, service=SERVICE) -> list[dict]:
    items = ingest.client.get(f"/api/v1/deploys?service={service}&limit=100").json()["items"]
    return sorted(items, key=lambda d: int(d["ref"][2:]))


def test_a_missing_or_wrong_bearer_token_is_401_and_stores_nothing(ingest, subtests):
    for case, token in (("missing", None), ("wrong", "not-a-token")):
        with subtests.test(case=case):
            r = send(ingest, body(), token=token)
            assert r.status == 401, r
            assert ingest.stored_counts() == dict.fromkeys(ingest.stored_counts(), 0)
    assert send(ingest, body(), token=OTHER_TOKEN).status == 200  # any of INGEST_TOKENS


def test_succeeded_is_a_deploy_of_the_app_and_failed_or_error_a_failed_attempt(ingest):
    r = send(ingest, body(revision=sha(1), environment="staging", finished_at="2026-11-25T09:00:00Z"))
    assert r.status == 200 and r.json()["created"] is True, r
    r = send(ingest, body(revision=sha(2), phase="Failed", finished_at="2026-11-25T10:00:00Z"))
    assert r.status == 200 and r.json()["status"] == "processed" and r.json()["deploy_status"] == "failure", r
    r = send(ingest, body(revision=sha(2), phase="Error", finished_at="2026-11-25T10:05:00Z"))
    assert r.status == 200, r
    r = send(ingest, body(revision=sha(2), finished_at="2026-11-25T10:30:00+01:00"))
    assert r.status == 200, r
    staging, failed, error, prod = deploys(ingest)
    assert (staging["environment"], staging["status"], staging["version"], staging["source"]) == ("staging", "success", sha(1), "argocd")
    assert (failed["status"], error["status"]) == ("failure", "failure")
    assert (prod["environment"], prod["status"], prod["deployed_at"]) == ("production", "success", "2026-11-25T09:30:00Z")
    m = ingest.client.get(f"/api/v1/metrics?service={SERVICE}").json()
    assert m["deployment_frequency"]["deploys"] == 1  # the production success only


def test_phases_that_are_not_final_are_stored_and_ignored(ingest):
    for phase in ("Running", "Terminating"):
        r = send(ingest, body(phase=phase))
        assert r.status == 202 and r.json()["status"] == "ignored", r
    assert ingest.count("deploy") == 0
    assert ingest.rows("SELECT source, status FROM webhook_delivery") == [("argocd", "ignored")] * 2
    # the final notification of that same operation is not taken for a repeat of them
    r = send(ingest, body(phase="Succeeded"))
    assert r.status == 200 and r.json()["created"] is True, r


def test_a_notification_sent_again_changes_nothing(ingest):
    first = send(ingest, body())
    assert first.status == 200 and first.json()["created"] is True
    again = send(ingest, body())
    assert again.status == 200 and again.json()["status"] == "duplicate", again
    # the same app + revision + finished_at written differently is the same notification
    spaced = json.dumps(body(), indent=2).encode()
    assert send(ingest, raw=spaced).json()["status"] == "duplicate"
    assert ingest.count("deploy") == 1 and ingest.count("webhook_delivery") == 1
    # a new sync of the same revision is a new deploy
    assert send(ingest, body(finished_at="2026-11-25T11:00:00Z")).json()["created"] is True
    assert ingest.count("deploy") == 2


def test_a_git_revision_ships_the_commits_pushed_before_it(ingest):
    from tests.ingest.test_github import push

    p = push([(sha(0xA), "2026-11-25T07:00:00Z"), (sha(0xB), "2026-11-25T08:00:00Z")],
             pushed_at=datetime(2026, 11, 25, 8, 30, tzinfo=UTC))
    p["repository"]["name"] = SERVICE
    assert ingest.client.github("push", p, delivery="gh-1").status == 200
    assert send(ingest, body(revision=sha(0xB).upper(), finished_at="2026-11-25T10:00:00Z")).status == 200
    [d] = deploys(ingest)
    assert {c["sha"] for c in d["commits"]} == {sha(0xA), sha(0xB)}
    m = ingest.client.get(f"/api/v1/metrics?service={SERVICE}").json()
    assert m["lead_time"]["samples"] == 2 and m["lead_time"]["median_seconds"] == 2.5 * 3600


def test_a_partial_body_takes_what_it_can(ingest, subtests):
    with subtests.test(case="helm-chart-version-and-no-environment-label"):
        r = send(ingest, body(app="Billing", revision="1.4.2", environment=""))
        assert r.status == 200, r
        [d] = deploys(ingest, "Billing")
        assert (d["version"], d["environment"], d["commits"]) == ("1.4.2", "production", [])
    with subtests.test(case="no-finished-at-yet"):
        r = send(ingest, {"app": "search", "revision": sha(3), "finished_at": "", "phase": "Succeeded"})
        assert r.status == 200, r
        [d] = deploys(ingest, "search")
        assert d["deployed_at"] == NOW.strftime("%Y-%m-%dT%H:%M:%SZ") and "finished_at" in d["note"]


def test_a_bad_body_is_422_stored_raw_as_failed_and_applies_nothing(ingest, subtests):
    cases = [
        ("invalid-json", b'{"app": "shop-api", "phase": '),
        ("not-an-object", b'["shop-api"]'),
        ("no-app", json.dumps(body(app="")).encode()),
        ("app-not-a-name", json.dumps(body(app="<script>")).encode()),
        ("no-phase", json.dumps(body(phase="")).encode()),
        ("no-revision", json.dumps(body(revision="")).encode()),
        ("bad-finished-at", json.dumps(body(finished_at="soon")).encode()),
        ("bad-environment", json.dumps(body(environment="prod env!")).encode()),
    ]
    for case, raw in cases:
        with subtests.test(case=case):
            r = send(ingest, raw=raw)
            assert r.status == 422, r
            assert r.json()["error"]
    assert ingest.count("deploy") == 0 and ingest.count("service") == 0
    rows = ingest.rows("SELECT status, body FROM webhook_delivery ORDER BY id")
    assert [status for status, _ in rows] == ["failed"] * len(cases)
    assert [b for _, b in rows] == [raw.decode() for _, raw in cases]


def _documented_config() -> dict:
    """The argocd-notifications-cm entry of docs/ingest.md, as a mapping."""
    import re
    from pathlib import Path

    import yaml

    text = (Path(__file__).resolve().parents[2] / "docs" / "ingest.md").read_text()
    blocks = [yaml.safe_load(b) for b in re.findall(r"```yaml\n(.*?)```", text, re.S) if "argocd-notifications-cm" in b]
    assert len(blocks) == 1, "docs/ingest.md has one argocd-notifications-cm entry"
    return blocks[0]


def _render(template: str, app: dict) -> str:
    """What Argo CD's Go template gives for the five fields the template reads (a missing label: <no value>)."""
    values = {
        "{{.app.metadata.name}}": app["name"],
        "{{.app.status.sync.revision}}": app["revision"],
        "{{.app.status.operationState.finishedAt}}": app["finishedAt"],
        "{{.app.status.operationState.phase}}": app["phase"],
        '{{index .app.metadata.labels "environment"}}': app.get("environment", "<no value>"),
    }
    for placeholder, value in values.items():
        template = template.replace(placeholder, value)
    assert "{{" not in template, template
    return template


def test_the_documented_notifications_config_sends_what_the_endpoint_takes(ingest):
    cm = _documented_config()
    assert cm["metadata"]["name"] == "argocd-notifications-cm"
    service = yaml_load(cm["data"]["service.webhook.dora-bot"])
    assert {"name": "Authorization", "value": "Bearer $dora-token"} in service["headers"]
    webhook = yaml_load(cm["data"]["template.dora-deploy"])["webhook"]["dora-bot"]
    assert (webhook["method"], webhook["path"]) == ("POST", "/webhooks/argocd")
    [trigger] = yaml_load(cm["data"]["trigger.on-dora-deploy"])
    assert trigger["send"] == ["dora-deploy"] and "Succeeded" in trigger["when"]

    app = {"name": SERVICE, "revision": sha(5), "finishedAt": "2026-11-25T10:00:00Z", "phase": "Succeeded", "environment": "production"}
    r = send(ingest, raw=_render(webhook["body"], app).encode())
    assert r.status == 200 and r.json()["created"] is True, r
    no_label = {**app, "name": "search", "finishedAt": "2026-11-25T10:05:00Z"}
    del no_label["environment"]
    r = send(ingest, raw=_render(webhook["body"], no_label).encode())
    assert r.status == 200, r
    assert [d["environment"] for d in deploys(ingest, "search")] == ["production"]


def yaml_load(text: str):
    import yaml

    return yaml.safe_load(text)
