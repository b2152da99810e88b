"""POST /webhooks/gitlab over real HTTP: the token, deliveries, and lead time from Push Hook + Deployment Hook.

The payloads are written for these tests in the shape GitLab documents on its "Webhook events"
page (Push events, Deployment events), trimmed to the fields that matter plus some noise.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from statistics import median

from tests.ingest.conftest import GITLAB_TOKEN, UTC

PATH = "acme/platform/Shop-API"
SERVICE = "Shop-API"
WEB = "https://gitlab.example.com/acme/platform/shop-api"


def sha(n: int) -> str:
    return f"{n:040x}"


def project(default_branch="main") -> dict:
    return {
        "id": 15, "name": "Shop API", "description": "", "web_url": WEB, "avatar_url": None,
        "git_ssh_url": "git@gitlab.example.com:acme/platform/shop-api.git",
        "git_http_url": f"{WEB}.git", "namespace": "platform", "visibility_level": 0,
        "path_with_namespace": PATH, "default_branch": default_branch, "ci_config_path": "",
        "homepage": WEB, "url": "git@gitlab.example.com:acme/platform/shop-api.git",
    }


def push(commits: list[tuple[str, str | None]], *, ref="refs/heads/main", after: str | None = None, default_branch="main") -> dict:
    after = after if after is not None else (commits[-1][0] if commits else "0" * 40)
    return {
        "object_kind": "push", "event_name": "push", "before": "95790bf891e76fee5e1747ab589903a6a1f80f22",
        "after": after, "ref": ref, "ref_protected": True, "checkout_sha": after,
        "user_id": 4, "user_name": "Jane Doe", "user_username": "jdoe", "user_email": "", "user_avatar": None,
        "project_id": 15, "project": project(default_branch),
        "commits": [
            {
                "id": c, "message": f"change {i}\n", "title": f"change {i}",
                **({"timestamp": ts} if ts is not None else {}),
                "url": f"{WEB}/-/commit/{c}",
                "author": {"name": "Jane Doe", "email": "jane@example.com"},
                "added": [], "modified": ["README.md"], "removed": [],
            }
            for i, (c, ts) in enumerate(commits)
        ],
        "total_commits_count": len(commits),
        "push_options": {},
        "repository": {"name": "Shop API", "url": "git@gitlab.example.com:acme/platform/shop-api.git", "homepage": WEB},
    }


_ids = iter(range(500, 100_000))


def deployment(commit: str, changed_at: str, *, status="success", environment="production", deployment_id=None) -> dict:
    job = next(_ids)
    return {
        "object_kind": "deployment", "status": status, "status_changed_at": changed_at,
        "deployment_id": deployment_id or next(_ids), "deployable_id": job,
        "deployable_url": f"{WEB}/-/jobs/{job}",
        "environment": environment, "environment_tier": environment, "environment_slug": environment,
        "environment_external_url": "https://shop.example.com",
        "project": project(), "short_sha": commit[:8],
        "user": {"id": 1, "name": "Administrator", "username": "root", "avatar_url": None, "email": "admin@example.com"},
        "user_url": "https://gitlab.example.com/root",
        "commit_url": f"{WEB}/-/commit/{commit}", "commit_title": "Add new file",
    }


def send(ingest, event: str, payload=None, *, raw: bytes | None = None, uuid_: str | None = "auto", token: str | None = GITLAB_TOKEN):
    body = raw if raw is not None else json.dumps(payload).encode()
    headers = {"X-Gitlab-Event": event, "User-Agent": "GitLab/17.6.0", "X-Gitlab-Instance": "https://gitlab.example.com",
               "X-Gitlab-Webhook-UUID": "2b1c7ad5-0000-4000-8000-000000000000"}
    if uuid_ is not None:
        headers["X-Gitlab-Event-UUID"] = str(uuid.uuid4()) if uuid_ == "auto" else uuid_
    if token is not None:
        headers["X-Gitlab-Token"] = token
    return ingest.client.request("POST", "/webhooks/gitlab", raw=body, headers=headers, token=None)


def deliver(ingest, event, payload, *, expect=200, uuid_="auto"):
    r = send(ingest, event, payload, uuid_=uuid_)
    assert r.status == expect, r
    return r.json()


def deploys(ingest) -> list[dict]:
    items = ingest.client.get(f"/api/v1/deploys?service={SERVICE}&limit=500").json()["items"]
    return sorted(items, key=lambda d: int(d["ref"][2:]))


def deliveries(ingest) -> list[tuple]:
    return ingest.rows("SELECT delivery_id, event, status, body, error FROM webhook_delivery WHERE source = 'gitlab' ORDER BY id")


# --- the token ------------------------------------------------------------------------------

def test_a_missing_or_wrong_token_is_401_and_stores_nothing(ingest, subtests):
    payload = push([(sha(1), "2026-11-25T09:00:00+01:00")])
    for case, token in (("missing", None), ("wrong", "not-the-token"), ("prefix", GITLAB_TOKEN[:-1]), ("longer", GITLAB_TOKEN + "x")):
        with subtests.test(case=case):
            r = send(ingest, "Push Hook", payload, token=token)
            assert r.status == 401, r
            assert ingest.stored_counts() == dict.fromkeys(ingest.stored_counts(), 0)
    with subtests.test(case="bearer-token-is-no-substitute"):
        r = ingest.client.request("POST", "/webhooks/gitlab", payload,
                                  headers={"X-Gitlab-Event": "Push Hook", "X-Gitlab-Event-UUID": "u-1"})
        assert r.status == 401, r
    assert ingest.count("webhook_delivery") == 0


def test_without_a_token_configured_gitlab_webhooks_are_refused(make_ingest):
    app = make_ingest(gitlab_webhook_token=None)
    r = send(app, "Push Hook", push([(sha(1), "2026-11-25T09:00:00Z")]), token="")
    assert r.status == 401 and "GITLAB_WEBHOOK_TOKEN" in r.json()["error"], r
    assert app.count("webhook_delivery") == 0


def test_a_missing_event_uuid_is_400_and_stores_nothing(ingest):
    r = send(ingest, "Push Hook", push([(sha(1), "2026-11-25T09:00:00Z")]), uuid_=None)
    assert r.status == 400 and "X-Gitlab-Event-UUID" in r.json()["error"], r
    assert ingest.stored_counts() == dict.fromkeys(ingest.stored_counts(), 0)


# --- lead time ------------------------------------------------------------------------------

def test_push_then_deployment_gives_the_lead_time_by_hand(ingest):
    commits = [
        (sha(0xC1), "2026-11-25T03:00:00-05:00"),  # 08:00Z: 3 h before the deploy
        (sha(0xC2), "2026-11-25T10:30:00+01:00"),  # 09:30Z: 1 h 30 m
        (sha(0xC3), "2026-11-25T10:40:00Z"),       # 20 m
    ]
    assert deliver(ingest, "Push Hook", push(commits))["commits"] == 3
    # GitLab's own format, with an offset: 12:00 +0100 is 11:00Z
    out = deliver(ingest, "Deployment Hook", deployment(sha(0xC3), "2026-11-25 12:00:00 +0100"))
    assert out["created"] is True

    [d] = deploys(ingest)
    assert d["ref"] == out["deploy"] and d["source"] == "gitlab"
    assert d["service"] == SERVICE  # the last part of project.path_with_namespace
    assert d["deployed_at"] == "2026-11-25T11:00:00Z"
    assert d["version"] == sha(0xC3)  # the full sha from commit_url, not short_sha
    assert d["url"].startswith(f"{WEB}/-/jobs/")
    assert {c["sha"]: c["committed_at"] for c in d["commits"]} == {
        sha(0xC1): "2026-11-25T08:00:00Z", sha(0xC2): "2026-11-25T09:30:00Z", sha(0xC3): "2026-11-25T10:40:00Z",
    }
    m = ingest.client.get(f"/api/v1/metrics?service={SERVICE}").json()
    assert m["lead_time"]["samples"] == 3
    assert m["lead_time"]["median_seconds"] == median([10800, 5400, 1200]) == 5400
    assert m["deployment_frequency"]["deploys"] == 1
    assert ingest.rows("SELECT source FROM commit_push") == [("gitlab",)]


def test_a_second_deployment_ships_only_what_was_pushed_since(ingest):
    deliver(ingest, "Push Hook", push([(sha(1), "2026-11-25T06:00:00Z"), (sha(2), "2026-11-25T07:00:00Z")]))
    deliver(ingest, "Deployment Hook", deployment(sha(2), "2026-11-25 08:00:00 UTC"))
    deliver(ingest, "Push Hook", push([(sha(3), "2026-11-25T09:00:00Z")]))
    deliver(ingest, "Deployment Hook", deployment(sha(3), "2026-11-25 10:00:00 +0000"))
    first, second = deploys(ingest)
    assert {c["sha"] for c in first["commits"]} == {sha(1), sha(2)}
    assert {c["sha"] for c in second["commits"]} == {sha(3)}
    m = ingest.client.get(f"/api/v1/metrics?service={SERVICE}").json()
    assert m["lead_time"]["samples"] == 3 and m["lead_time"]["median_seconds"] == 3600


def test_a_staging_deployment_first_leaves_the_commits_to_production(ingest):
    deliver(ingest, "Push Hook", push([(sha(1), "2026-11-25T06:00:00Z")]))
    deliver(ingest, "Deployment Hook", deployment(sha(1), "2026-11-25 07:00:00 +0000", environment="staging"))
    deliver(ingest, "Deployment Hook", deployment(sha(1), "2026-11-25 09:00:00 +0000"))
    m = ingest.client.get(f"/api/v1/metrics?service={SERVICE}").json()
    assert m["lead_time"]["samples"] == 1 and m["lead_time"]["median_seconds"] == 3 * 3600


def test_a_failed_deployment_is_a_failed_attempt_and_running_or_canceled_are_ignored(ingest):
    deliver(ingest, "Push Hook", push([(sha(1), "2026-11-25T06:00:00Z")]))
    for status in ("running", "canceled"):
        assert deliver(ingest, "Deployment Hook", deployment(sha(1), "2026-11-25 07:00:00 +0000", status=status),
                       expect=202)["status"] == "ignored"
    out = deliver(ingest, "Deployment Hook", deployment(sha(1), "2026-11-25 07:05:00 +0000", status="failed"))
    [d] = deploys(ingest)
    assert d["ref"] == out["deploy"] and d["status"] == "failure"
    m = ingest.client.get(f"/api/v1/metrics?service={SERVICE}").json()
    assert m["deployment_frequency"]["deploys"] == 0 and m["lead_time"]["samples"] == 0
    assert ingest.count("pending_commit", "WHERE deploy_id IS NULL") == 1  # still waiting for a real deploy


def test_pushes_to_other_branches_branch_deletions_and_other_hooks_are_stored_and_ignored(ingest):
    assert deliver(ingest, "Push Hook", push([(sha(1), "2026-11-25T06:00:00Z")], ref="refs/heads/feature/x"),
                   expect=202)["status"] == "ignored"
    assert deliver(ingest, "Push Hook", push([], after="0" * 40), expect=202)["status"] == "ignored"
    assert deliver(ingest, "Pipeline Hook", {"object_kind": "pipeline", "project": project()}, expect=202)["status"] == "ignored"
    assert [row[1:3] for row in deliveries(ingest)] == [("Push Hook", "ignored")] * 2 + [("Pipeline Hook", "ignored")]
    assert ingest.count("pending_commit") == 0 and ingest.count("deploy") == 0


# --- deliveries -----------------------------------------------------------------------------

def test_a_redelivery_with_the_same_event_uuid_changes_nothing(ingest):
    p = push([(sha(1), "2026-11-25T06:00:00Z"), (sha(2), "2026-11-25T07:00:00Z")])
    assert deliver(ingest, "Push Hook", p, uuid_="e-1")["commits"] == 2
    assert deliver(ingest, "Push Hook", p, uuid_="e-1")["status"] == "duplicate"
    dep = deployment(sha(2), "2026-11-25 08:00:00 +0000")
    first = deliver(ingest, "Deployment Hook", dep, uuid_="e-2")
    assert deliver(ingest, "Deployment Hook", dep, uuid_="e-2")["status"] == "duplicate"
    # "Resend request" in GitLab's UI gets a new UUID: still the same deploy
    again = deliver(ingest, "Deployment Hook", dep, uuid_="e-3")
    assert again["created"] is False and again["deploy"] == first["deploy"]
    assert ingest.count("commit_push") == 1 and ingest.count("pending_commit") == 2
    assert ingest.count("deploy") == 1 and ingest.count("lead_sample") == 2
    assert ingest.count("webhook_delivery") == 3


def test_a_bad_body_is_422_stored_raw_as_failed_and_applies_nothing(ingest, subtests):
    short = deployment(sha(9), "2026-11-25 08:00:00 +0000")
    short["commit_url"] = f"{WEB}/-/commit/{sha(9)[:8]}z"
    cases = [
        ("invalid-json", "Push Hook", b'{"object_kind": "push", "commits": [}'),
        ("not-an-object", "Push Hook", b'["push"]'),
        ("no-project-path", "Push Hook",
         json.dumps({**push([(sha(1), "2026-11-25T06:00:00Z")]), "project": {"default_branch": "main"}}).encode()),
        ("bad-commit-time", "Push Hook", json.dumps(push([(sha(1), "yesterday")])).encode()),
        ("no-commit-url", "Deployment Hook",
         json.dumps({k: v for k, v in deployment(sha(9), "2026-11-25 08:00:00 +0000").items() if k != "commit_url"}).encode()),
        ("commit-url-not-a-sha", "Deployment Hook", json.dumps(short).encode()),
        ("bad-status-changed-at", "Deployment Hook", json.dumps(deployment(sha(9), "last tuesday")).encode()),
    ]
    for case, event, raw in cases:
        with subtests.test(case=case):
            r = send(ingest, event, raw=raw, uuid_=f"bad-{case}")
            assert r.status == 422, r
            [row] = [row for row in deliveries(ingest) if row[0] == f"bad-{case}"]
            assert row[1:4] == (event, "failed", raw.decode()) and row[4]
    assert ingest.count("deploy") == 0 and ingest.count("pending_commit") == 0 and ingest.count("commit_push") == 0


def test_a_partial_body_takes_what_it_can(ingest):
    p = push([(sha(1), None), (sha(2), "2026-11-25T07:00:00Z")])
    del p["project"]["default_branch"]  # then GitLab's default, main
    assert deliver(ingest, "Push Hook", p)["commits"] == 2
    dep = deployment(sha(2), "2026-11-25 08:00:00 +0000")
    for key in ("deployable_url", "environment", "commit_title", "user", "environment_tier"):
        del dep[key]
    out = deliver(ingest, "Deployment Hook", dep)
    [d] = deploys(ingest)
    assert d["ref"] == out["deploy"] and d["environment"] == "production" and d["url"] is None
    assert {c["sha"]: c["committed_at"] for c in d["commits"]} == {sha(1): None, sha(2): "2026-11-25T07:00:00Z"}
    m = ingest.client.get(f"/api/v1/metrics?service={SERVICE}").json()
    assert m["lead_time"]["samples"] == 1 and m["lead_time"]["median_seconds"] == 3600


def test_the_service_is_the_catalogues_one_whatever_the_spelling(ingest):
    r = ingest.client.post("/api/v1/deploys", {"id": "ci-1", "service": "shop api", "version": "1", "deployed_at": "2026-11-24T10:00:00Z"})
    assert r.status in (200, 201), r
    deliver(ingest, "Push Hook", push([(sha(1), "2026-11-25T06:00:00Z")]))
    deliver(ingest, "Deployment Hook", deployment(sha(1), "2026-11-25 08:00:00 +0000"))
    assert ingest.rows("SELECT name FROM service") == [("shop api",)]
    assert ingest.count("deploy") == 2


def test_github_and_gitlab_pushes_share_the_pending_commits(ingest):
    """One rule for both: a GitLab deployment ships what GitHub pushed to the same service."""
    from tests.ingest.test_github import push as github_push

    gh = github_push([(sha(7), "2026-11-25T05:00:00Z")], pushed_at=datetime(2026, 11, 25, 5, 30, tzinfo=UTC))
    gh["repository"]["name"] = SERVICE
    assert ingest.client.github("push", gh, delivery="gh-1").status == 200
    deliver(ingest, "Deployment Hook", deployment(sha(8), "2026-11-25 07:00:00 +0000"))
    [d] = deploys(ingest)
    assert sha(7) in {c["sha"] for c in d["commits"]}
    assert sorted(ingest.rows("SELECT source FROM commit_push")) == [("github",)]


def test_an_environment_name_with_a_slash_falls_back_to_gitlabs_slug(ingest):
    dep = deployment(sha(1), "2026-11-25 08:00:00 +0000", environment="review/feature-x")
    dep["environment_slug"] = "review-feature-x-a1b2c3"
    out = deliver(ingest, "Deployment Hook", dep)
    [d] = deploys(ingest)
    assert d["ref"] == out["deploy"] and d["environment"] == "review-feature-x-a1b2c3"


def test_a_push_of_more_than_twenty_commits_says_which_were_not_listed(ingest):
    listed = [(sha(i), "2026-11-25T07:00:00Z") for i in range(1, 21)]
    p = push(listed)
    p["total_commits_count"] = 45  # GitLab lists the last 20 commits of a push
    out = deliver(ingest, "Push Hook", p)
    assert out["commits"] == 20 and out["notes"] == ["GitLab listed 20 of the push's 45 commits"]
    [(error,)] = ingest.rows("SELECT error FROM webhook_delivery")
    assert "45" in error
