"""Running `dora-bot` as a newcomer does: a process per command, in a folder of its own."""

from __future__ import annotations

import os
import platform
import select
import subprocess
import sys
import time
from pathlib import Path

BIN = Path(sys.executable).parent  # the venv's `dora-bot` script sits next to its python
ROOT = Path(__file__).resolve().parents[2]


def clean_env(tmp_path: Path, **overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "DORA_", "DATABASE_URL", "INGEST_", "LOG_", "XDG_"))}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["HOME"] = str(tmp_path / "home")
    env["DATABASE_URL"] = f"sqlite:///{tmp_path / 'dora-bot.db'}"
    env.update(overrides)
    return env


def run(tmp_path: Path, *args: str, stdin: str | None = None, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(["dora-bot", *args], input=stdin, capture_output=True, text=True, env=clean_env(tmp_path, **env),
                          cwd=tmp_path, timeout=240)


# The services these sessions name. The catalogue asks before a Slack user creates a service (a typo
# never splits a history; tests/slack/test_catalogue_flow.py covers the question): a newcomer's
# sessions here start from a workspace that already knows them.
KNOWN_SERVICES = ("checkout", "payments", "web", "search", "billing")


def known_services(tmp_path: Path, *names: str) -> None:
    """The shell's database (``dora-bot.db`` in ``tmp_path``) with these services in the catalogue."""
    from datetime import UTC, datetime

    from bot.services.lookup import get_or_create_service
    from bot.store.db import make_engine, session_scope, upgrade

    engine = make_engine(f"sqlite:///{tmp_path / 'dora-bot.db'}")
    try:
        upgrade(engine)
        with session_scope(engine) as session:
            for name in names or KNOWN_SERVICES:
                get_or_create_service(session, name, now=datetime.now(UTC))
    finally:
        engine.dispose()


def shell(tmp_path: Path, script: str, *args: str, returncode: int = 0, **env: str) -> str:
    if "DATABASE_URL" not in env:
        known_services(tmp_path)
    out = run(tmp_path, "shell", *args, stdin=script, **env)
    assert out.returncode == returncode, out.stdout + out.stderr
    return out.stdout


# The syscalls readline's select() on stdin shows in /proc/PID/syscall, by CPU (Linux's tables:
# arch/x86/entry/syscalls/syscall_64.tbl, include/uapi/asm-generic/unistd.h).
SELECT_SYSCALLS = {"x86_64": ("23", "270"), "aarch64": ("72",)}


class Terminal:
    """`dora-bot shell` on a pseudo-terminal, as a person types at it (readline, Ctrl-C, arrows)."""

    def __init__(self, tmp_path: Path, *args: str, **env: str) -> None:
        import pty

        if "DATABASE_URL" not in env:
            known_services(tmp_path)
        self.master, slave = pty.openpty()
        def controlling_terminal() -> None:  # so Ctrl-C on the terminal is a SIGINT, as in a real one
            import fcntl
            import termios

            os.setsid()
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)

        self.proc = subprocess.Popen(["dora-bot", "shell", *args], stdin=slave, stdout=slave, stderr=slave, cwd=tmp_path,
                                     env={**clean_env(tmp_path, **env), "TERM": "xterm"}, close_fds=True, preexec_fn=controlling_terminal)
        os.close(slave)
        self.seen = ""
        self.pos = 0  # what `expect` has already matched

    def expect(self, text: str, timeout: float = 60) -> str:
        """Read until ``text`` appears after the last match (the event we wait for, not a fixed
        time); returns the output between the two."""
        deadline = time.monotonic() + timeout
        while text not in self.seen[self.pos:]:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"never saw {text!r}; the terminal shows:\n{self.seen}")
            ready, _, _ = select.select([self.master], [], [], left)
            if ready:
                try:
                    chunk = os.read(self.master, 4096)
                except OSError:
                    chunk = b""
                if not chunk:
                    raise AssertionError(f"the shell ended before {text!r}:\n{self.seen}")
                self.seen += chunk.decode(errors="replace")
        start = self.pos
        self.pos = self.seen.index(text, self.pos) + len(text)
        return self.seen[start:self.pos]

    def reading(self, timeout: float = 60) -> None:
        """Wait until the shell's main thread sits in readline's select() on the terminal.

        Seeing the prompt is not enough before a Ctrl-C: CPython's readline writes the prompt and
        only then enters select(); a SIGINT that lands in between only sets a flag, and select()
        then waits for the next key (the Ctrl-C is lost). A person never types inside that window,
        a test that answers the moment the prompt appears can. Linux tells the syscall a thread is
        blocked in (/proc/PID/syscall: number, then arguments); select(nfds=1) and pselect6(nfds=1)
        are readline waiting on stdin."""
        waits = SELECT_SYSCALLS.get(platform.machine())
        path = Path(f"/proc/{self.proc.pid}/syscall")
        if waits is None or not path.exists():  # not Linux on a known CPU: nothing to look at
            return
        deadline = time.monotonic() + timeout
        fields = path.read_text().split()
        while not (len(fields) > 1 and fields[0] in waits and int(fields[1], 16) == 1):
            if time.monotonic() > deadline:
                raise AssertionError(f"the shell never waited for a key (its main thread is in {fields[:2]})")
            time.sleep(0.005)  # polling the state we wait for, not guessing a delay
            fields = path.read_text().split()

    def send(self, keys: str) -> None:
        os.write(self.master, keys.encode())

    def close(self) -> int:
        self.send("\x04")  # Ctrl-D at the prompt leaves
        try:
            return self.proc.wait(timeout=60)
        finally:
            os.close(self.master)
