"""Memory under oversized bodies: the RSS of ``dora-bot serve`` (a child process, SQLite) while
clients send bodies far over the routes' limits, and one GitHub push near GitHub's 25 MB cap.

Issue 11: one 150 MB ``POST /slack/events`` grew the server's RSS by 286 MB before it answered.
With the one body-size gate (``bot.ingest.bodies``) a declared length over the limit is a 413
before anything is read and a streamed body is cut off at the limit, so the RSS must stay flat
(allowed growth: ``--max-growth-mb``, default 8) for every refused case. The spooled GitHub body
is reported too (it is read once, as the text stored, so it grows by a small multiple of 25 MB).

    python benchmarks/body_rss.py                 # prints a table; exit 1 if a refused case grew RSS too much
    python benchmarks/body_rss.py --size-mb 300
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import http.client
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchlib  # noqa: E402

SIGNING = "bench-signing-secret-0123456789"
TOKEN = "bench-ingest-token-0123456789"
GITHUB = "bench-github-secret-0123456789"
CHUNK = b"x" * (1024 * 1024)


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


class Peak:
    """The highest RSS of ``pid`` while the block runs (sampled every 5 ms)."""

    def __init__(self, pid: int):
        self.pid, self.peak, self._stop = pid, 0, threading.Event()

    def __enter__(self):
        self.peak = rss_kb(self.pid)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_kb(self.pid))
            time.sleep(0.005)

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_kb(self.pid))


def send(port: int, path: str, size: int, headers: dict, *, chunked: bool) -> int | str:
    """POST ``size`` bytes (streamed from one 1 MB buffer, never held by the client) and read the answer."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        def body():
            left = size
            while left > 0:
                piece = CHUNK if left >= len(CHUNK) else CHUNK[:left]
                left -= len(piece)
                yield piece

        hdrs = dict(headers)
        if not chunked:
            hdrs["Content-Length"] = str(size)
        conn.request("POST", path, body=body(), headers=hdrs, encode_chunked=chunked)
        resp = conn.getresponse()
        resp.read()
        return resp.status
    except (OSError, http.client.HTTPException) as exc:
        return type(exc).__name__
    finally:
        conn.close()


def github_push(size: int) -> bytes:
    """A signed-able push body of about ``size`` bytes (commits padded with long messages)."""
    commits, total, i = [], 0, 0
    message = "m" * 9000
    while total < size - 20_000:
        commits.append({"id": f"{i:040x}", "timestamp": "2026-11-25T05:00:00Z", "message": message})
        total += len(message) + 120
        i += 1
    payload = {"ref": "refs/heads/main", "after": f"{i - 1:040x}", "commits": commits[:2048],
               "padding": "p" * max(0, size - 20_000 - min(i, 2048) * (len(message) + 120)),
               "repository": {"name": "bench", "default_branch": "main"}}
    return json.dumps(payload, separators=(",", ":")).encode()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size-mb", type=int, default=150)
    ap.add_argument("--max-growth-mb", type=float, default=8.0)
    args = ap.parse_args()
    size = args.size_mb * 1024 * 1024
    tmp = Path(tempfile.mkdtemp(prefix="dora-rss-"))
    url = f"sqlite:///{tmp / 'rss.db'}"
    benchlib.migrate(url)
    port = benchlib.free_port()
    env = {**os.environ, "DATABASE_URL": url, "SLACK_BOT_TOKEN": "xoxb-bench", "SLACK_SIGNING_SECRET": SIGNING,
           "SLACK_API_URL": "http://127.0.0.1:9/api/", "INGEST_TOKENS": TOKEN, "GITHUB_WEBHOOK_SECRET": GITHUB,
           "HOST": "127.0.0.1", "PORT": str(port), "RUN_SCHEDULER": "false", "LOG_LEVEL": "WARNING"}
    proc = subprocess.Popen([benchlib.dora_bot_exe(), "serve"], env=env, cwd=tmp, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    failed = False
    try:
        benchlib.wait_http(port, proc)
        for _ in range(20):  # warm up every route once, so first-use imports are not counted
            send(port, "/api/v1/deploys", 10, {"Authorization": f"Bearer {TOKEN}"}, chunked=False)
        ts = str(int(time.time()))
        slack = {"Content-Type": "application/x-www-form-urlencoded", "X-Slack-Request-Timestamp": ts,
                 "X-Slack-Signature": "v0=" + "0" * 64}
        cases = [
            ("/slack/events, declared length", "/slack/events", slack, False, size),
            ("/slack/events, chunked", "/slack/events", slack, True, size),
            ("/api/v1/deploys, declared length", "/api/v1/deploys", {"Authorization": f"Bearer {TOKEN}"}, False, size),
            ("/api/v1/deploys, chunked", "/api/v1/deploys", {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}, True,
             size),
            ("/webhooks/github, chunked", "/webhooks/github", {"X-GitHub-Event": "push", "X-GitHub-Delivery": "u1"}, True, size),
            ("/webhooks/github unsigned 20 MB (spooled)", "/webhooks/github", {"X-GitHub-Event": "push", "X-GitHub-Delivery": "u2"}, False,
             20 * 1024 * 1024),
        ]
        print(f"{'case':<42} {'status':>7} {'RSS before':>11} {'peak':>9} {'growth':>8}")
        for label, path, headers, chunked, length in cases:
            before = rss_kb(proc.pid)
            with Peak(proc.pid) as peak:
                status = send(port, path, length, headers, chunked=chunked)
            growth = (peak.peak - before) / 1024
            bad = growth > args.max_growth_mb or status not in (413, 401)
            failed |= bad
            print(f"{label:<42} {status!s:>7} {before / 1024:>9.1f}MB {peak.peak / 1024:>7.1f}MB {growth:>6.1f}MB"
                  f"{'  <-- too much' if bad else ''}")
        body = github_push(24 * 1024 * 1024)
        sig = "sha256=" + hmac.new(GITHUB.encode(), body, hashlib.sha256).hexdigest()
        before = rss_kb(proc.pid)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        with Peak(proc.pid) as peak:
            conn.request("POST", "/webhooks/github", body=body, headers={
                "X-GitHub-Event": "push", "X-GitHub-Delivery": "big", "X-Hub-Signature-256": sig, "Content-Type": "application/json"})
            resp = conn.getresponse()
            resp.read()
        conn.close()
        print(f"{'/webhooks/github signed 24 MB push':<42} {resp.status!s:>7} {before / 1024:>9.1f}MB {peak.peak / 1024:>7.1f}MB "
              f"{(peak.peak - before) / 1024:>6.1f}MB  (taken: {len(body) / 1e6:.1f} MB body)")
        failed |= resp.status != 200
    finally:
        benchlib.stop_process(proc)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
