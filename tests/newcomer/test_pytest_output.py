"""The suite's own output on a machine without PostgreSQL: one line for the PostgreSQL skips, every
other skip reason still listed."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.newcomer.helpers import ROOT


def test_postgres_skips_are_one_summary_line_and_other_skips_stay_visible():
    env = {k: v for k, v in os.environ.items() if k not in ("TEST_DATABASE_URL", "DORA_TEST_SETUP")}
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q",
         "tests/scheduler/test_reminders.py",
         "tests/newcomer/test_readme_setup.py::test_the_setup_line_works_as_pasted_from_a_fresh_clone"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )
    lines = out.stdout.splitlines()
    assert out.returncode == 0, out.stdout
    assert [line for line in lines if "TEST_DATABASE_URL" in line] == [
        "SKIPPED 5 PostgreSQL tests: set TEST_DATABASE_URL (e.g. postgresql+psycopg://postgres@127.0.0.1:5432/test) to run them"
    ]
    assert any(line.startswith("SKIPPED [1]") and "DORA_TEST_SETUP=1" in line for line in lines), out.stdout
    assert lines[-1].endswith("6 skipped") or " 6 skipped" in lines[-1], lines[-1]
