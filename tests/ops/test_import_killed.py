"""A ``dora-bot import`` killed with SIGKILL halfway leaves no gap in the D-/INC- numbers
(issue 11): on PostgreSQL the sequence values it drew are given back by the next start or import
(``restore_sequences``); SQLite never gives them out. A real child process, a real kill."""

from __future__ import annotations

import json
import signal
import subprocess
import time

from sqlalchemy import create_engine, text

from tests.ops.conftest import DORA_BOT, child_env, run_cli, upgrade_url


def big_file(path, n: int) -> None:
    with open(path, "w") as f:
        for i in range(n):
            f.write(json.dumps({"type": "deploy", "id": f"bulk-{i}", "service": f"svc-{i % 7}",
                                "deployed_at": f"2026-0{1 + i % 9}-1{i % 10}T10:{i % 60:02d}:00Z"}) + "\n")


def drawn(engine) -> int:
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            value, called = conn.execute(text("SELECT last_value, is_called FROM deploy_id_seq")).one()
            return value if called else 0
        return 0


def test_a_killed_import_leaves_no_gap_in_the_numbers(backend, make_database, tmp_path):
    url = make_database(backend)
    upgrade_url(url)
    engine = create_engine(url)
    try:
        env = child_env(DATABASE_URL=url)
        assert run_cli(["import", str(_small(tmp_path, "first", 3))], env=env, cwd=tmp_path).returncode == 0
        big = tmp_path / "big.jsonl"
        big_file(big, 200_000)
        proc = subprocess.Popen([DORA_BOT, "import", "--quiet", str(big)], env=env, cwd=tmp_path,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        # PostgreSQL: until the import has drawn numbers; SQLite: until it is well into the file.
        while time.monotonic() < deadline and proc.poll() is None:
            if (backend == "postgresql" and drawn(engine) > 2_000) or (backend == "sqlite" and time.monotonic() > deadline - 58):
                break
            time.sleep(0.02)
        assert proc.poll() is None, "the import finished before it could be killed: make the file bigger"
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM deploy")).scalar_one() == 3  # nothing of it committed
        assert run_cli(["import", str(_small(tmp_path, "after", 2))], env=env, cwd=tmp_path).returncode == 0
        with engine.connect() as conn:
            ids = [r[0] for r in conn.execute(text("SELECT id FROM deploy ORDER BY id"))]
        assert ids == [1, 2, 3, 4, 5], ids
    finally:
        engine.dispose()


def _small(tmp_path, prefix: str, n: int):
    path = tmp_path / f"{prefix}.jsonl"
    path.write_text("".join(json.dumps({"type": "deploy", "id": f"{prefix}-{i}", "service": "checkout",
                                        "deployed_at": f"2026-11-2{i}T10:00:00Z"}) + "\n" for i in range(n)))
    return path
