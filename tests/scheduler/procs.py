"""Real dora-bot processes for the flow tests: the CLI, `serve` replicas, their env."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

DORA_BOT = str(Path(sys.executable).with_name("dora-bot"))


def cli_env(db_url: str, slack=None, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "DORA_", "DATABASE_URL", "RUN_SCHEDULER", "PORT", "HOST"))}
    env.update(DATABASE_URL=db_url, DORA_TIMEZONE="Europe/Berlin", LOG_LEVEL="WARNING")
    if slack is not None:
        env.update(SLACK_BOT_TOKEN="xoxb-test", SLACK_API_URL=slack.api_url)
    env.update(extra)
    return env


def run(args: list[str], env: dict, cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([DORA_BOT, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Replica:
    def __init__(self, name: str, env: dict, cwd: Path):
        self.name = name
        self.port = free_port()
        self.log = cwd / f"{name}.log"
        self._out = open(self.log, "wb")
        self.proc = subprocess.Popen([DORA_BOT, "serve"], env=dict(env, PORT=str(self.port), HOST="127.0.0.1"), cwd=cwd,
                                     stdout=self._out, stderr=subprocess.STDOUT)

    def get(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=3) as resp:
                return resp.status, resp.read().decode()
        except Exception as exc:
            return 0, repr(exc)

    def leader_gauge(self) -> float | None:
        status, body = self.get("/metrics")
        if status != 200:
            return None
        m = re.search(r"^dora_scheduler_leader (\S+)$", body, re.MULTILINE)
        return float(m.group(1)) if m else None

    def alive(self) -> bool:
        return self.proc.poll() is None

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]

    def stop(self) -> None:
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._out.close()


def wait_until(predicate, timeout: float, what: str, interval: float = 0.25):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


