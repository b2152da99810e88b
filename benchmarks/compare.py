"""Do two SQLite databases hold the same facts? (ids and import times aside)

    python benchmarks/compare.py A.db B.db

Every table is read through its natural keys (service names, external ids, shas) rather than row
ids, so a floor that numbers its rows differently still compares equal when it stored the same
things. Exit status 0 when equal.
"""

from __future__ import annotations

import sqlite3
import sys

# One canonical SELECT per table, over the schema `s` (main or the attached `b`).
CANONICAL = {
    "service": "SELECT name FROM {s}.service",
    "app_meta": "SELECT key, value FROM {s}.app_meta",
    "deploy": (
        "SELECT d.external_id, sv.name, d.environment, d.version, d.deployed_at, d.status, r.external_id,"
        " d.marked_failed, d.failure_reason, d.change_failure, d.rework, f.external_id, d.url, d.note, d.source,"
        " d.created_by FROM {s}.deploy d JOIN {s}.service sv ON sv.id = d.service_id"
        " LEFT JOIN {s}.deploy r ON r.id = d.rollback_of_id LEFT JOIN {s}.incident f ON f.id = d.fixes_id"
    ),
    "deploy_commit": (
        "SELECT d.external_id, c.sha, c.committed_at FROM {s}.deploy_commit c JOIN {s}.deploy d ON d.id = c.deploy_id"
    ),
    "lead_sample": (
        "SELECT sv.name, l.sha, d.external_id, l.deployed_at, l.committed_at, l.lead_seconds FROM {s}.lead_sample l"
        " JOIN {s}.service sv ON sv.id = l.service_id JOIN {s}.deploy d ON d.id = l.deploy_id"
    ),
    "incident": (
        "SELECT i.external_id, sv.name, i.environment, i.severity, i.title, i.started_at, i.declared_at,"
        " i.acknowledged_at, i.resolved_at, i.mitigated_at, i.recovered_at, i.status, i.cancel_reason,"
        " i.not_caused_by_change, c.external_id, i.declared_by, i.acknowledged_by, i.resolved_by,"
        " i.resolution_note, i.source, i.restore_seconds, i.ack_seconds, i.recovery_seconds, i.suspect_deploy_id"
        " FROM {s}.incident i JOIN {s}.service sv ON sv.id = i.service_id LEFT JOIN {s}.deploy c ON c.id = i.caused_by_id"
    ),
    "incident_event": (
        "SELECT i.external_id, e.at, e.kind, e.actor, e.text FROM {s}.incident_event e"
        " JOIN {s}.incident i ON i.id = e.incident_id"
    ),
}


def compare(a: str, b: str) -> dict[str, tuple[int, int, int]]:
    """table -> (rows in a, rows only in a, rows only in b)."""
    con = sqlite3.connect(a)
    con.execute("ATTACH DATABASE ? AS b", (b,))
    out = {}
    for table, q in CANONICAL.items():
        qa, qb = q.format(s="main"), q.format(s="b")
        n = con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        only_a = con.execute(f"SELECT count(*) FROM ({qa} EXCEPT {qb})").fetchone()[0]
        only_b = con.execute(f"SELECT count(*) FROM ({qb} EXCEPT {qa})").fetchone()[0]
        out[table] = (n, only_a, only_b)
    con.close()
    return out


def main(argv: list[str]) -> int:
    a, b = argv
    ok = True
    for table, (n, only_a, only_b) in compare(a, b).items():
        print(f"{table:15s} {n:>10,} rows   only in A: {only_a:,}   only in B: {only_b:,}")
        ok = ok and only_a == 0 and only_b == 0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
