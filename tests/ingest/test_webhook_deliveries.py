"""Webhook bookkeeping over real HTTP: one delivery id is processed once, however many copies
arrive at the same moment; a failed delivery sent again is tried with the body it now carries."""

from __future__ import annotations

import json
import threading

from tests.ingest.test_github import push, sha

COPIES = 32


def test_32_concurrent_copies_of_one_delivery_are_processed_once(ingest):
    payload = push([(sha(1), "2026-11-25T08:00:00Z"), (sha(2), "2026-11-25T09:00:00Z")])
    results: list = []
    barrier = threading.Barrier(COPIES)

    def worker():
        barrier.wait()
        results.append(ingest.client.github("push", payload, delivery="copy-1"))

    threads = [threading.Thread(target=worker) for _ in range(COPIES)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(results) == COPIES and all(r.status == 200 for r in results), [r for r in results if r.status != 200][:3]
    statuses = sorted(r.json()["status"] for r in results)
    assert statuses == ["duplicate"] * (COPIES - 1) + ["processed"]
    # processed once: one push recorded (pushes have no natural key of their own), its commits once
    assert ingest.count("commit_push") == 1 and ingest.count("pending_commit") == 2
    assert ingest.rows("SELECT delivery_id, status FROM webhook_delivery") == [("copy-1", "processed")]


def test_a_failed_delivery_sent_again_is_tried_with_its_new_body(ingest):
    broken = push([(sha(1), "yesterday")])  # a timestamp GitHub would never send: refused
    r = ingest.client.github("push", broken, delivery="retry-1")
    assert r.status == 422, r
    assert ingest.rows("SELECT status FROM webhook_delivery") == [("failed",)]
    fixed = push([(sha(1), "2026-11-25T08:00:00Z")])
    r = ingest.client.github("push", fixed, delivery="retry-1")
    assert r.status == 200 and r.json()["status"] == "processed", r
    ((status, body, error),) = ingest.rows("SELECT status, body, error FROM webhook_delivery")
    assert status == "processed" and json.loads(body) == fixed and error is None, "the body kept is the one applied"
    assert ingest.count("pending_commit") == 1
    again = ingest.client.github("push", fixed, delivery="retry-1")
    assert again.json()["status"] == "duplicate"
    assert ingest.count("commit_push") == 1
