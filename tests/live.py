"""Pieces every over-the-wire test shares: a movable clock and uvicorn serving an app in a thread."""

from __future__ import annotations

import os
import socket
import threading
import time
from datetime import datetime, timedelta

import uvicorn

from tests.conftest import NOW


class Clock:
    """The runtime's clock: fixed until a test moves it."""

    def __init__(self, now: datetime = NOW):
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kwargs) -> datetime:
        self.now += timedelta(**kwargs)
        return self.now


class LiveServer:
    """uvicorn serving an ASGI app from a background thread on a socket bound to 127.0.0.1:0.

    Server-side tracebacks are not logged by default (CPython 3.11 can fail with "AST constructor
    recursion depth mismatch" when the server thread formats a traceback while pytest formats an
    assertion); ``DORA_TEST_SERVER_LOG=error`` shows them when debugging a 500.
    """

    def __init__(self, app, *, name: str = "uvicorn-test"):
        self.app = app
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        level = os.environ.get("DORA_TEST_SERVER_LOG", "critical")
        config = uvicorn.Config(app, log_level=level, access_log=False, lifespan="off", timeout_graceful_shutdown=5)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True, name=name)

    def start(self):
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.005)
        return self

    def join(self) -> None:
        self.thread.join(timeout=15)
        self.sock.close()
        assert not self.thread.is_alive(), "uvicorn did not shut down"

    def stop(self) -> None:
        self.server.should_exit = True
        self.join()
