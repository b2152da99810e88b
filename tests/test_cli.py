"""The `dora-bot` command as a user runs it: demo in an empty folder, metrics, import (a process each)."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

GOOD = [
    {"type": "deploy", "id": "d1", "service": "checkout", "deployed_at": "2026-11-20T10:00:00Z", "version": "1",
     "commits": [{"sha": "abc1234", "committed_at": "2026-11-20T08:00:00Z"}]},
    {"type": "deploy", "id": "d2", "service": "checkout", "deployed_at": "2026-11-21T10:00:00Z", "version": "2"},
    {"type": "incident", "id": "i1", "service": "checkout", "started_at": "2026-11-21T11:00:00Z",
     "resolved_at": "2026-11-21T12:00:00Z", "caused_by": "d2"},
]


def cli(cwd: Path, *args: str, stdin: str | None = None, **env_overrides: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "DORA_", "DATABASE_URL", "INGEST_", "LOG_"))}
    env.update(env_overrides)
    return subprocess.run([sys.executable, "-m", "bot.cli", *args], input=stdin, capture_output=True, text=True,
                          env=env, cwd=cwd, timeout=180)


def write_lines(path: Path, lines: list) -> Path:
    path.write_text("".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines))
    return path


def rows(db: Path, table: str) -> int:
    with sqlite3.connect(db) as con:
        return con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


def test_demo_in_an_empty_folder_writes_the_default_file_and_prints_the_keys(tmp_path):
    out = cli(tmp_path, "demo")
    assert out.returncode == 0, out.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dora-bot.db"]  # no stray chart in the folder
    assert "add --chart FILE.png to save it" in out.stdout
    again = cli(tmp_path, "demo", "--chart", str(tmp_path / "out" / "trend.png"))
    assert again.returncode == 2 and "--chart: no folder" in again.stderr and "Traceback" not in again.stderr
    charted = cli(tmp_path, "demo", "--chart", "trend.png")
    assert charted.returncode == 0 and (tmp_path / "trend.png").stat().st_size > 10_000
    assert f"trend chart: {tmp_path / 'trend.png'}" in charted.stdout
    assert "DORA FIVE KEYS: ALL SERVICES" in out.stdout and "WEEKLY DORA DIGEST" in out.stdout
    assert "Throughput" in out.stdout and "Instability" in out.stdout and "Deployment rework rate" in out.stdout
    for tier in ("elite", "high", "medium", "low"):
        assert tier in out.stdout
    report = json.loads(cli(tmp_path, "metrics", "--json").stdout)
    assert report["deployment_frequency"]["deploys"] > 50 and report["lead_time"]["samples"] > 50
    assert report["time_to_restore"]["open_incidents"] >= 1
    table = cli(tmp_path, "metrics", "--service", "checkout", "--days", "90").stdout
    assert "checkout, last 90 days" in table and "Deployment frequency" in table and "DORA 2023 benchmark" in table
    assert "Change fail rate" in table and "Deployment rework rate" in table and "Time to restore (all incidents)" in table


def test_import_is_idempotent_and_prints_what_it_added(tmp_path):
    env = {"DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}"}
    good = write_lines(tmp_path / "good.jsonl", GOOD)
    first = cli(tmp_path, "import", str(good), **env)
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == ("2 deploys and 1 incident added, 0 already stored, 0 invalid, from 3 lines\n"
                                    "new services created: checkout")
    again = cli(tmp_path, "import", str(good), **env)
    assert again.stdout.strip() == "0 deploys and 0 incidents added, 3 already stored, 0 invalid, from 3 lines"
    assert rows(tmp_path / "x.db", "deploy") == 2 and rows(tmp_path / "x.db", "incident") == 1
    m = json.loads(cli(tmp_path, "metrics", "--json", "--end", "2026-11-25T00:00Z", "--days", "7", **env).stdout)
    assert m["change_failure_rate"]["failed"] == 1 and m["lead_time"]["median_seconds"] == 7200.0


def test_a_bad_file_changes_nothing_and_names_every_bad_line(tmp_path):
    env = {"DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}"}
    bad = write_lines(tmp_path / "bad.jsonl", [
        {"type": "deploy", "id": "d3", "service": "checkout", "deployed_at": "2026-11-22T10:00:00Z"},
        "not json",
        {"type": "deploy", "id": "d4", "service": "Bad Name!", "deployed_at": "2026-11-22T10:00:00Z"},
    ])
    out = cli(tmp_path, "import", str(bad), **env)
    assert out.returncode != 0
    assert f"{bad}:2: not valid JSON" in out.stderr and f"{bad}:3: service:" in out.stderr
    assert "nothing stored" in out.stderr
    assert rows(tmp_path / "x.db", "deploy") == 0
    skip = cli(tmp_path, "import", "--skip-invalid", str(bad), **env)
    assert "1 deploy and 0 incidents added" in skip.stdout and skip.returncode != 0  # bad lines still fail the exit code
    assert rows(tmp_path / "x.db", "deploy") == 1


def test_import_reads_standard_input(tmp_path):
    env = {"DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}"}
    out = cli(tmp_path, "import", "-", stdin="".join(json.dumps(line) + "\n" for line in GOOD), **env)
    assert out.returncode == 0, out.stderr
    assert rows(tmp_path / "x.db", "deploy") == 2


@pytest.mark.parametrize("args, words", [
    (["metrics", "--days", "0"], "days"),
    (["metrics", "--end", "last tuesday"], "ISO-8601"),
    (["import", "missing.jsonl"], "no such file"),
])
def test_bad_arguments_get_one_clear_message(tmp_path, args, words):
    out = cli(tmp_path, *args, DATABASE_URL=f"sqlite:///{tmp_path / 'x.db'}")
    assert out.returncode != 0 and words in out.stderr, out.stderr


def test_an_unknown_service_is_pointed_out(tmp_path):
    env = {"DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}"}
    cli(tmp_path, "import", str(write_lines(tmp_path / "good.jsonl", GOOD)), **env)
    out = cli(tmp_path, "metrics", "--service", "chekout", "--json", **env)
    assert out.returncode == 2 and out.stdout == ""
    assert "No service called `chekout`. Known services: checkout." in out.stderr


def test_an_end_without_offset_is_read_in_dora_timezone(tmp_path):
    env = {"DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}", "DORA_TIMEZONE": "Europe/Berlin"}
    cli(tmp_path, "import", str(write_lines(tmp_path / "good.jsonl", GOOD)), **env)
    m = json.loads(cli(tmp_path, "metrics", "--json", "--end", "2026-11-25", **env).stdout)
    assert m["scope"]["end"] == "2026-11-24T23:00:00Z" and m["scope"]["timezone"] == "Europe/Berlin"
