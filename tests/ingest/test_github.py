"""POST /webhooks/github over real HTTP: signatures, deliveries, and lead time from push + deployment_status.

The payloads below are written for these tests in the shape GitHub sends (``push`` to the default
branch; ``deployment_status``), trimmed to the fields that matter plus some noise around them.
"""

from __future__ import annotations

import json
import threading
import uuid
from datetime import datetime, timedelta
from statistics import median

from tests.ingest.conftest import NOW, SECRET, UTC, sign

REPO = "Shop-API"
SERVICE = "shop-api"


def repository(*, pushed_at=None, default_branch="main") -> dict:
    repo = {
        "id": 7000123,
        "node_id": "R_kgDOtest",
        "name": REPO,
        "full_name": f"acme/{REPO}",
        "private": True,
        "owner": {"login": "acme", "id": 42, "type": "Organization"},
        "html_url": f"https://github.com/acme/{REPO}",
        "default_branch": default_branch,
        "visibility": "private",
    }
    if pushed_at is not None:
        repo["pushed_at"] = int(pushed_at.timestamp())  # push events carry epoch seconds here
    return repo


def push(commits: list[tuple[str, str]], *, pushed_at: datetime | None = None, ref="refs/heads/main",
         before="0" * 40, deleted=False, default_branch="main") -> dict:
    """A push event; ``commits`` are (sha, timestamp with the committer's offset)."""
    return {
        "ref": ref,
        "before": before,
        "after": commits[-1][0] if commits else "0" * 40,
        "repository": repository(pushed_at=pushed_at, default_branch=default_branch),
        "pusher": {"name": "dev", "email": "dev@example.com"},
        "sender": {"login": "dev", "id": 1, "type": "User"},
        "created": False,
        "deleted": deleted,
        "forced": False,
        "base_ref": None,
        "compare": "https://github.com/acme/Shop-API/compare/x...y",
        "commits": [
            {
                "id": sha,
                "tree_id": "f" * 40,
                "distinct": True,
                "message": f"change {i}",
                "timestamp": ts,
                "url": f"https://github.com/acme/{REPO}/commit/{sha}",
                "author": {"name": "dev", "email": "dev@example.com", "username": "dev"},
                "committer": {"name": "GitHub", "email": "noreply@github.com", "username": "web-flow"},
                "added": [], "removed": [], "modified": ["README.md"],
            }
            for i, (sha, ts) in enumerate(commits)
        ],
        "head_commit": None,
    }


_ids = iter(range(1_000_000, 2_000_000))


def deployment_status(sha: str, at: datetime, *, state="success", environment="production",
                      deployment_id: int | None = None, status_id: int | None = None) -> dict:
    deployment_id = deployment_id or next(_ids)
    stamp = at.strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "action": "created",
        "deployment_status": {
            "url": f"https://api.github.com/repos/acme/{REPO}/deployments/{deployment_id}/statuses/1",
            "id": status_id or next(_ids),
            "node_id": "DES_test",
            "state": state,
            "creator": {"login": "deploy-bot[bot]", "id": 99, "type": "Bot"},
            "description": "Deployed by the pipeline",
            "environment": environment,
            "target_url": f"https://github.com/acme/{REPO}/actions/runs/{deployment_id}",
            "created_at": (at - timedelta(seconds=2)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "updated_at": stamp,
            "deployment_url": f"https://api.github.com/repos/acme/{REPO}/deployments/{deployment_id}",
            "repository_url": f"https://api.github.com/repos/acme/{REPO}",
        },
        "deployment": {
            "url": f"https://api.github.com/repos/acme/{REPO}/deployments/{deployment_id}",
            "id": deployment_id,
            "node_id": "DE_test",
            "sha": sha,
            "ref": "main",
            "task": "deploy",
            "payload": {},
            "original_environment": environment,
            "environment": environment,
            "description": None,
            "creator": {"login": "deploy-bot[bot]", "id": 99, "type": "Bot"},
            "created_at": (at - timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "updated_at": stamp,
        },
        "repository": repository(),
        "sender": {"login": "deploy-bot[bot]", "id": 99, "type": "Bot"},
    }


def sha(n: int) -> str:
    return f"{n:040x}"


def deliver(ingest, event: str, payload, *, delivery: str | None = None, expect: int = 200):
    r = ingest.client.github(event, payload, delivery=delivery or str(uuid.uuid4()))
    assert r.status == expect, r
    return r.json()


def github_deploys(ingest) -> list[dict]:
    items = ingest.client.get(f"/api/v1/deploys?service={SERVICE}&limit=500").json()["items"]
    return sorted(items, key=lambda d: int(d["ref"][2:]))


def lead(ingest, **query) -> dict:
    q = "&".join(f"{k}={v}" for k, v in {"service": SERVICE, **query}.items())
    return ingest.client.get(f"/api/v1/metrics?{q}").json()


def deliveries(ingest) -> list[tuple]:
    return ingest.rows("SELECT delivery_id, event, status, body, error FROM webhook_delivery ORDER BY id")


# --- signatures ---------------------------------------------------------------------------------

def test_signature_failures_are_401_and_store_nothing(ingest, subtests):
    payload = push([(sha(1), "2026-11-25T09:00:00Z")])
    body = json.dumps(payload).encode()
    tampered = body.replace(b"change 0", b"change X")
    cases = [
        ("missing", dict(raw=body, signature=None)),
        ("wrong-secret", dict(raw=body, secret="not-the-secret")),
        ("tampered-body", dict(raw=tampered, signature=sign(body, SECRET))),
        ("sha1-header-format", dict(raw=body, signature="sha1=" + sign(body, SECRET)[7:47])),
        ("no-prefix", dict(raw=body, signature=sign(body, SECRET)[7:])),
        ("empty-digest", dict(raw=body, signature="sha256=")),
        ("garbage", dict(raw=body, signature="sha256=not-hex")),
        ("signature-of-another-body", dict(raw=body, signature=sign(b"{}", SECRET))),
    ]
    for case, kw in cases:
        with subtests.test(case=case):
            r = ingest.client.github("push", None, delivery=str(uuid.uuid4()), **kw)
            assert r.status == 401, r
            assert ingest.stored_counts() == dict.fromkeys(ingest.stored_counts(), 0)
    with subtests.test(case="bearer-token-is-no-substitute"):
        r = ingest.client.request("POST", "/webhooks/github", raw=body,
                                  headers={"X-GitHub-Event": "push", "X-GitHub-Delivery": "d-1"})
        assert r.status == 401
    assert ingest.count("webhook_delivery") == 0 and ingest.count("pending_commit") == 0


def test_without_a_webhook_secret_github_webhooks_are_refused(make_ingest):
    app = make_ingest(github_webhook_secret=None)
    payload = push([(sha(1), "2026-11-25T09:00:00Z")])
    for secret in (SECRET, ""):
        r = app.client.github("push", payload, delivery="d-1", secret=secret)
        assert r.status == 401, r
    assert "GITHUB_WEBHOOK_SECRET" in r.json()["error"]
    assert app.count("webhook_delivery") == 0


def test_a_missing_delivery_id_is_refused_and_stores_nothing(ingest):
    r = ingest.client.github("push", push([(sha(1), "2026-11-25T09:00:00Z")]), delivery=None)
    assert 400 <= r.status < 500, r
    assert ingest.stored_counts() == dict.fromkeys(ingest.stored_counts(), 0)


def test_ping_is_answered(ingest):
    r = ingest.client.github("ping", {"zen": "Keep it logically awesome.", "hook_id": 1}, delivery="p-1")
    assert r.status == 200, r


# --- deliveries ---------------------------------------------------------------------------------

def test_unknown_event_types_are_stored_raw_and_ignored_with_202(ingest):
    raw = b'{"action":  "opened", "issue": {"title": "caf\xc3\xa9"},\n "repository": {"name": "Shop-API"}}'
    r = ingest.client.github("issues", None, raw=raw, delivery="evt-1")
    assert r.status == 202, r
    assert deliveries(ingest) == [("evt-1", "issues", "ignored", raw.decode(), None)]
    assert ingest.count("deploy") == 0 and ingest.count("pending_commit") == 0


def test_pushes_to_other_branches_and_branch_deletions_are_ignored(ingest):
    deliver(ingest, "push", push([(sha(1), "2026-11-25T09:00:00Z")], ref="refs/heads/feature/x"), expect=202)
    deliver(ingest, "push", push([(sha(2), "2026-11-25T09:00:00Z")], ref="refs/tags/v1.0"), expect=202)
    deliver(ingest, "push", push([], deleted=True), expect=202)
    assert ingest.count("pending_commit") == 0
    assert [row[2] for row in deliveries(ingest)] == ["ignored"] * 3
    # the default branch is the repository's, not always "main"
    deliver(ingest, "push", push([(sha(3), "2026-11-25T09:00:00Z")], ref="refs/heads/trunk", default_branch="trunk"))
    assert ingest.count("pending_commit") == 1


def test_non_final_deployment_states_are_ignored(ingest):
    for state in ("pending", "queued", "in_progress", "inactive"):
        deliver(ingest, "deployment_status", deployment_status(sha(1), NOW - timedelta(hours=1), state=state), expect=202)
    assert ingest.count("deploy") == 0


def test_redelivery_with_the_same_delivery_id_applies_nothing_twice(ingest):
    p = push([(sha(1), "2026-11-25T08:00:00Z"), (sha(2), "2026-11-25T09:00:00Z")])
    first = deliver(ingest, "push", p, delivery="push-1")
    assert first["status"] == "processed" and first["commits"] == 2
    again = deliver(ingest, "push", p, delivery="push-1")
    assert again["status"] == "duplicate"
    assert ingest.count("commit_push") == 1 and ingest.count("pending_commit") == 2

    ds = deployment_status(sha(2), NOW - timedelta(hours=1))
    first = deliver(ingest, "deployment_status", ds, delivery="ds-1")
    assert first["status"] == "processed" and first["created"] is True
    again = deliver(ingest, "deployment_status", ds, delivery="ds-1")
    assert again["status"] == "duplicate"
    # the same status re-sent under a new delivery id is still the same deploy
    third = deliver(ingest, "deployment_status", ds, delivery="ds-1-bis")
    assert third["created"] is False and third["deploy"] == first["deploy"]
    assert ingest.count("deploy") == 1 and ingest.count("deploy_commit") == 2 and ingest.count("lead_sample") == 2
    assert ingest.count("webhook_delivery") == 3


def test_concurrent_redeliveries_apply_once(ingest):
    p = push([(sha(1), "2026-11-25T08:00:00Z"), (sha(2), "2026-11-25T09:00:00Z")])
    ds = deployment_status(sha(2), NOW - timedelta(hours=1))
    for event, payload, delivery in (("push", p, "push-c"), ("deployment_status", ds, "ds-c")):
        results: list = []
        barrier = threading.Barrier(6)

        def worker(barrier, results, event, payload, delivery):
            barrier.wait()
            results.append(ingest.client.github(event, payload, delivery=delivery))

        threads = [threading.Thread(target=worker, args=(barrier, results, event, payload, delivery)) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert all(r.status == 200 for r in results), (event, results)
    assert ingest.count("pending_commit") == 2
    assert ingest.count("deploy") == 1 and ingest.count("deploy_commit") == 2 and ingest.count("lead_sample") == 2


# --- lead time ----------------------------------------------------------------------------------

def test_push_then_deployment_status_gives_the_lead_time_by_hand(ingest):
    deployed = datetime(2026, 11, 25, 11, 0, tzinfo=UTC)
    commits = [
        (sha(0xC1), "2026-11-25T03:00:00-05:00"),  # 08:00Z: 3 h before the deploy
        (sha(0xC2), "2026-11-25T10:30:00+01:00"),  # 09:30Z: 1 h 30 m
        (sha(0xC3), "2026-11-25T10:40:00Z"),       # 20 m
    ]
    out = deliver(ingest, "push", push(commits, pushed_at=deployed - timedelta(minutes=15)))
    assert out["commits"] == 3
    out = deliver(ingest, "deployment_status", deployment_status(sha(0xC3), deployed))
    assert out["created"] is True

    [d] = github_deploys(ingest)
    assert d["ref"] == out["deploy"]
    assert d["environment"] == "production" and d["status"] == "success" and d["source"] == "github"
    assert d["deployed_at"] == "2026-11-25T11:00:00Z"
    assert d["version"] == sha(0xC3)  # the whole sha, as the contract says
    assert d["url"].startswith("https://github.com/acme/")
    assert {c["sha"]: c["committed_at"] for c in d["commits"]} == {
        sha(0xC1): "2026-11-25T08:00:00Z", sha(0xC2): "2026-11-25T09:30:00Z", sha(0xC3): "2026-11-25T10:40:00Z",
    }
    samples = [3 * 3600, 5400, 1200]
    m = lead(ingest)
    assert m["lead_time"]["samples"] == 3 and m["lead_time"]["invalid_samples"] == 0
    assert m["lead_time"]["median_seconds"] == median(samples) == 5400
    assert m["lead_time"]["p90_seconds"] == 5400 + 0.8 * (10800 - 5400)  # linear interpolation
    assert m["lead_time"]["tier"] == "elite"
    assert m["deployment_frequency"]["deploys"] == 1


def test_a_deploy_of_an_unknown_sha_takes_the_commits_pushed_before_it(ingest):
    deployed = NOW - timedelta(hours=2)
    deliver(ingest, "push", push([(sha(1), "2026-11-25T06:00:00Z"), (sha(2), "2026-11-25T07:00:00Z")],
                                 pushed_at=deployed - timedelta(hours=3)))
    deliver(ingest, "push", push([(sha(3), "2026-11-25T09:50:00Z")], pushed_at=deployed - timedelta(minutes=1)))
    deliver(ingest, "push", push([(sha(4), "2026-11-25T10:10:00Z")], pushed_at=deployed + timedelta(minutes=10)))
    unknown = "abcdef" + "0" * 34  # e.g. a merge commit built by CI, never pushed to the branch
    deliver(ingest, "deployment_status", deployment_status(unknown, deployed))
    [d] = github_deploys(ingest)
    shipped = {c["sha"] for c in d["commits"]}
    assert {sha(1), sha(2), sha(3)} <= shipped
    assert sha(4) not in shipped  # pushed after the deploy finished
    assert shipped <= {sha(1), sha(2), sha(3), unknown}
    m = lead(ingest)
    assert m["lead_time"]["samples"] == 3
    assert m["lead_time"]["median_seconds"] == 3 * 3600  # 10:00Z - 07:00Z; others 4 h and 10 m
    # sha 4 is still pending and ships with the next deploy
    deliver(ingest, "deployment_status", deployment_status(sha(4), NOW - timedelta(minutes=30)))
    assert {c["sha"] for c in github_deploys(ingest)[1]["commits"]} == {sha(4)}


def test_a_second_deploy_does_not_re_include_already_deployed_commits(ingest):
    t1, t2 = NOW - timedelta(hours=5), NOW - timedelta(hours=1)
    deliver(ingest, "push", push([(sha(1), "2026-11-25T05:00:00Z"), (sha(2), "2026-11-25T06:00:00Z")], pushed_at=t1 - timedelta(minutes=5)))
    deliver(ingest, "deployment_status", deployment_status(sha(2), t1))  # 07:00Z
    deliver(ingest, "push", push([(sha(3), "2026-11-25T09:00:00Z"), (sha(4), "2026-11-25T10:00:00Z")], pushed_at=t2 - timedelta(minutes=5)))
    deliver(ingest, "deployment_status", deployment_status(sha(4), t2))  # 11:00Z
    # redeploying the same sha (a new deployment) ships nothing new
    deliver(ingest, "deployment_status", deployment_status(sha(4), NOW - timedelta(minutes=10)))
    first, second, third = github_deploys(ingest)
    assert {c["sha"] for c in first["commits"]} == {sha(1), sha(2)}
    assert {c["sha"] for c in second["commits"]} == {sha(3), sha(4)}
    assert {c["sha"] for c in third["commits"]} <= {sha(4)}
    m = lead(ingest)
    assert m["deployment_frequency"]["deploys"] == 3
    assert m["lead_time"]["samples"] == 4
    assert m["lead_time"]["median_seconds"] == median([2 * 3600, 3600, 2 * 3600, 3600])


def test_a_staging_deploy_first_does_not_take_the_commits_from_production(ingest):
    deliver(ingest, "push", push([(sha(1), "2026-11-25T05:00:00Z"), (sha(2), "2026-11-25T06:00:00Z")],
                                 pushed_at=NOW - timedelta(hours=6)))
    deliver(ingest, "deployment_status", deployment_status(sha(2), NOW - timedelta(hours=4), environment="staging"))
    deliver(ingest, "deployment_status", deployment_status(sha(2), NOW - timedelta(hours=1), environment="Production"))
    staging, production = github_deploys(ingest)
    assert staging["environment"] == "staging" and production["environment"] == "production"
    assert {c["sha"] for c in production["commits"]} == {sha(1), sha(2)}
    m = lead(ingest)
    assert m["deployment_frequency"]["deploys"] == 1
    assert m["lead_time"]["samples"] == 2
    assert m["lead_time"]["median_seconds"] == median([6 * 3600, 5 * 3600])  # to 11:00Z, not to staging's 08:00Z


def test_failure_and_error_states_store_a_failed_deploy_that_counts_nowhere(ingest):
    deliver(ingest, "push", push([(sha(1), "2026-11-25T05:00:00Z")], pushed_at=NOW - timedelta(hours=6)))
    deliver(ingest, "deployment_status", deployment_status(sha(1), NOW - timedelta(hours=3), state="failure"))
    deliver(ingest, "deployment_status", deployment_status(sha(1), NOW - timedelta(hours=2), state="error"))
    failed = github_deploys(ingest)
    assert [d["status"] for d in failed] == ["failure", "failure"]
    m = lead(ingest)
    assert m["deployment_frequency"]["deploys"] == 0 and m["lead_time"]["samples"] == 0
    assert m["change_failure_rate"]["deploys"] == 0
    # the commit is still pending: the successful retry ships it, with the lead time to its own time
    deliver(ingest, "deployment_status", deployment_status(sha(1), NOW - timedelta(hours=1)))
    assert {c["sha"] for c in github_deploys(ingest)[-1]["commits"]} == {sha(1)}
    m = lead(ingest)
    assert m["deployment_frequency"]["deploys"] == 1
    assert m["lead_time"]["median_seconds"] == 6 * 3600


# --- raw bodies ---------------------------------------------------------------------------------

def test_the_raw_body_is_stored_even_when_parsing_then_fails(ingest, subtests):
    bad = [
        ("invalid-json", "push", b'{"ref": "refs/heads/main", "commits": [}'),
        ("not-an-object", "push", b'["refs/heads/main"]'),
        ("deployment-without-time", "deployment_status",
         json.dumps({"deployment_status": {"state": "success", "id": 1},
                     "deployment": {"id": 2, "sha": sha(9), "environment": "production"},
                     "repository": {"name": REPO}}).encode()),
        ("deployment-bad-sha", "deployment_status",
         json.dumps(deployment_status("not-a-sha", NOW)).encode()),
        ("push-bad-timestamp", "push", json.dumps(push([(sha(1), "yesterday")])).encode()),
        ("push-without-repository-name", "push",
         json.dumps({**push([(sha(1), "2026-11-25T05:00:00Z")]), "repository": {"default_branch": "main"}}).encode()),
    ]
    for case, event, raw in bad:
        with subtests.test(case=case):
            delivery = f"bad-{case}"
            r = ingest.client.github(event, None, raw=raw, delivery=delivery)
            assert r.status == 422, r
            rows = [row for row in deliveries(ingest) if row[0] == delivery]
            assert len(rows) == 1, rows
            _, stored_event, status, body, error = rows[0]
            assert (stored_event, status, body) == (event, "failed", raw.decode())
            assert error
    assert ingest.count("deploy") == 0 and ingest.count("pending_commit") == 0 and ingest.count("commit_push") == 0


def test_processed_deliveries_keep_their_raw_body(ingest):
    raw = json.dumps(push([(sha(1), "2026-11-25T05:00:00Z")]), indent=2).encode()
    r = ingest.client.github("push", None, raw=raw, delivery="raw-1")
    assert r.status == 200, r
    assert deliveries(ingest) == [("raw-1", "push", "processed", raw.decode(), None)]


def test_a_body_over_githubs_25_mb_cap_is_413_and_stores_nothing(ingest):
    from bot.ingest.bodies import GITHUB_MAX_BODY

    payload = push([(sha(1), "2026-11-25T05:00:00Z")])
    payload["padding"] = "x" * GITHUB_MAX_BODY
    r = ingest.client.github("push", payload, delivery="big-1")
    assert r.status == 413, r
    assert ingest.stored_counts() == dict.fromkeys(ingest.stored_counts(), 0)


def test_a_body_of_several_mb_under_githubs_cap_is_taken_and_stored_raw(ingest):
    payload = push([(sha(1), "2026-11-25T05:00:00Z")])
    payload["padding"] = "x" * 3_000_000  # over the API's 1 MB, well under GitHub's 25 MB
    raw = json.dumps(payload).encode()
    r = ingest.client.github("push", None, raw=raw, delivery="big-2")
    assert r.status == 200 and r.json()["commits"] == 1, r
    assert ingest.rows("SELECT length(body) FROM webhook_delivery") == [(len(raw),)]
