"""The README's set-up line, pasted as written into a fresh shell, from a fresh clone.

It installs the project and its dependencies into a new venv (a few minutes, and the package
index must answer), so it runs when asked: ``DORA_TEST_SETUP=1 python -m pytest tests/newcomer``.
"""

from __future__ import annotations

import os
import re
import subprocess

import pytest

from tests.newcomer.helpers import ROOT


def readme_setup_line() -> str:
    block = re.search(r"## Try it \(one command\).*?```bash\n(.*?)\n```", (ROOT / "README.md").read_text(), re.DOTALL)
    assert block, "the README has a set-up block"
    return block.group(1).strip()


def test_the_setup_line_starts_from_getting_the_code():
    line = readme_setup_line()
    assert "\n" not in line
    assert line.startswith("git clone <repository-url> dora-bot && cd dora-bot && python3 -m venv .venv && . .venv/bin/activate"
                           " && pip install -e . && dora-bot demo")


@pytest.mark.skipif(not os.environ.get("DORA_TEST_SETUP"), reason="installs into a fresh venv: set DORA_TEST_SETUP=1")
def test_the_setup_line_works_as_pasted_from_a_fresh_clone(tmp_path):
    line = readme_setup_line().replace("<repository-url>", str(ROOT))
    env = {k: v for k, v in os.environ.items()
           if k not in ("VIRTUAL_ENV", "DATABASE_URL", "PYTHONPATH") and not k.startswith(("DORA_", "SLACK_"))}
    env["PATH"] = os.pathsep.join(p for p in env["PATH"].split(os.pathsep) if not p.startswith(str(ROOT)))
    out = subprocess.run(["bash", "-c", line], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=1800)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "DORA FIVE KEYS: ALL SERVICES" in out.stdout and "WEEKLY DORA DIGEST" in out.stdout
    clone = tmp_path / "dora-bot"
    assert (clone / "dora-bot.db").exists()
    status = subprocess.run(["git", "status", "--porcelain"], cwd=clone, capture_output=True, text=True).stdout
    assert status.strip() == "", status  # nothing left behind that git would show (the db, the venv are ignored)
