"""D-<n> and INC-<n> advance only on a real insert (real HTTP, SQLite and PostgreSQL): retries,
concurrent copies, re-imports and rolled-back imports leave no hole in the numbers people see."""

from __future__ import annotations

import io
import json
import threading

from bot.services.importer import import_jsonl
from bot.store.db import restore_sequences

D, I = "/api/v1/deploys", "/api/v1/incidents"


def deploy(ingest, external_id: str, expect: int = 201) -> str:
    r = ingest.client.post(D, {"id": external_id, "service": "checkout", "deployed_at": "2026-11-25T11:00:00Z"})
    assert r.status == expect, r
    return r.json()["ref"]


def incident(ingest, external_id: str, expect: int = 201) -> str:
    r = ingest.client.post(I, {"id": external_id, "service": "checkout", "started_at": "2026-11-25T11:00:00Z"})
    assert r.status == expect, r
    return r.json()["ref"]


def lines(n: int, prefix: str, *, bad_last: bool = False) -> bytes:
    out = [{"type": "deploy", "id": f"{prefix}-{i}", "service": "checkout", "deployed_at": "2026-11-25T10:00:00Z"} for i in range(n)]
    out += [{"type": "incident", "id": f"{prefix}-i{i}", "service": "checkout", "started_at": "2026-11-25T10:00:00Z"} for i in range(n)]
    if bad_last:
        out.append({"type": "deploy", "id": f"{prefix}-bad", "service": "checkout", "deployed_at": "soon"})
    return "".join(json.dumps(x) + "\n" for x in out).encode()


def load(ingest, data: bytes):
    return import_jsonl(ingest.engine, io.BytesIO(data), production_environments=("production",), now=ingest.clock())


def test_retries_of_a_deploy_and_an_incident_use_up_no_number(ingest):
    assert deploy(ingest, "run-1") == "D-1" and incident(ingest, "pd-1") == "INC-1"
    for _ in range(30):
        assert deploy(ingest, "run-1", expect=200) == "D-1"
        assert incident(ingest, "pd-1", expect=200) == "INC-1"
    assert deploy(ingest, "run-2") == "D-2" and incident(ingest, "pd-2") == "INC-2"


def test_concurrent_copies_use_up_no_number(ingest):
    results: list[str] = []
    barrier = threading.Barrier(8)

    def worker(n: int):
        barrier.wait()
        results.append(_post(ingest, n))

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(results) == ["D-1"] * 4 + ["INC-1"] * 4
    assert deploy(ingest, "run-next") == "D-2" and incident(ingest, "pd-next") == "INC-2"


def _post(ingest, n: int) -> str:
    if n % 2:
        r = ingest.client.post(I, {"id": "pd-c", "service": "checkout", "started_at": "2026-11-25T11:00:00Z"})
    else:
        r = ingest.client.post(D, {"id": "run-c", "service": "checkout", "deployed_at": "2026-11-25T11:00:00Z"})
    assert r.status in (200, 201), r
    return r.json()["ref"]


def test_a_reimport_and_a_rolled_back_import_use_up_no_number(ingest):
    first = load(ingest, lines(50, "a"))
    assert first.committed and first.deploys_added == 50
    again = load(ingest, lines(50, "a"))  # everything already stored
    assert again.committed and again.deploys_added == 0 and again.already_stored == 100
    refused = load(ingest, lines(200, "b", bad_last=True))  # one bad line: the whole file rolled back
    assert not refused.committed and refused.invalid == 1

    class Crash(io.BytesIO):  # an import that dies halfway (the process killed, the disk gone)
        def __iter__(self):
            yield from lines(300, "c").splitlines(keepends=True)[:450]
            raise OSError("read error")

    try:
        import_jsonl(ingest.engine, Crash(), production_environments=("production",), now=ingest.clock(), batch_size=100)
    except OSError:
        pass
    assert ingest.count("deploy") == 50
    assert deploy(ingest, "after") == "D-51" and incident(ingest, "pd-after") == "INC-51"


def test_numbers_a_killed_import_drew_are_given_back_when_the_bot_starts(ingest):
    """A process killed mid-import never runs its clean-up: what it drew is given back at start
    (``Runtime.prepare``) and by the next import (``restore_sequences``)."""
    deploy(ingest, "run-1")
    with ingest.engine.connect() as conn:  # what a killed import leaves: values drawn, no rows
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql("SELECT nextval(pg_get_serial_sequence('deploy', 'id')) FROM generate_series(1, 500)")
            conn.commit()
    ingest.rt.prepare(migrate=False)  # as `dora-bot serve` starts
    assert deploy(ingest, "run-2") == "D-2"
    restore_sequences(ingest.engine)  # and with nothing to give back, nothing changes
    assert deploy(ingest, "run-3") == "D-3"
