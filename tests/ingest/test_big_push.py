"""A push of 2,048 commits (GitHub's per-push maximum: a push event lists at most 2048 commits,
https://docs.github.com/en/webhooks/webhook-events-and-payloads#push) over real HTTP, in the compact
JSON GitHub sends: every commit is recorded, and the deploy that ships it carries all of them."""

from __future__ import annotations

import json
import time
from datetime import timedelta

from bot.services.github import MAX_PUSH_COMMITS
from tests.ingest.test_github import deployment_status, push, sha


def big_push(n: int = MAX_PUSH_COMMITS, start: int = 1) -> dict:
    # committer timestamps a second apart, with the offset GitHub writes
    return push([(sha(start + i), f"2026-11-25T0{6 + i // 3600}:{(i // 60) % 60:02d}:{i % 60:02d}+00:00") for i in range(n)])


def compact(payload: dict) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode()  # as GitHub sends it


def test_a_push_of_2048_commits_is_recorded_whole_and_shipped_by_one_deploy(ingest):
    payload = big_push()
    body = compact(payload)
    assert MAX_PUSH_COMMITS == 2048 and len(payload["commits"]) == 2048
    started = time.perf_counter()
    r = ingest.client.github("push", None, raw=body, delivery="big-push-1")
    assert r.status == 200, r
    assert r.json()["commits"] == 2048
    assert ingest.count("pending_commit") == 2048
    r = ingest.client.github("deployment_status", deployment_status(payload["after"], ingest.clock() - timedelta(minutes=1)),
                             delivery="big-ds-1")
    assert r.status == 200 and r.json()["created"] is True, r
    elapsed = time.perf_counter() - started
    assert ingest.count("deploy_commit") == 2048 and ingest.count("lead_sample") == 2048
    assert ingest.count("pending_commit", "WHERE deploy_id IS NULL") == 0
    (deploy,) = ingest.client.get("/api/v1/deploys").json()["items"]
    assert len(deploy["commits"]) == 2048
    print(f"2048-commit push + deploy over HTTP: {elapsed:.2f}s")


def test_a_second_push_repeating_commits_records_only_the_new_ones(ingest):
    r = ingest.client.github("push", None, raw=compact(big_push()), delivery="p1")
    assert r.status == 200 and r.json()["commits"] == 2048, r
    r = ingest.client.github("push", None, raw=compact(big_push(start=1025)), delivery="p2")  # 1024 known, 1024 new
    assert r.status == 200 and r.json()["commits"] == 1024, r
    assert ingest.count("pending_commit") == 3072
