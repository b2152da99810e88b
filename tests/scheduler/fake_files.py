"""The fake Slack Web API plus Slack's external file upload flow (what ``files_upload_v2`` uses).

``tests/fake_slack.py`` does not answer ``files.getUploadURLExternal`` /
``files.completeUploadExternal`` nor the upload URL, so this subclass adds them, the way Slack
documents them (https://docs.slack.dev/messaging/working-with-files#upload):

1. ``files.getUploadURLExternal(filename, length)`` -> ``upload_url`` and ``file_id``;
2. ``POST upload_url`` with the raw bytes (here ``<fake>/upload/<file_id>``), answered ``200 OK``;
3. ``files.completeUploadExternal(files=[{"id", "title"}], channel_id)`` shares the file.

A file counts as posted only after step 3, and only if its bytes arrived (with the announced
length). ``shared_files(channel)`` lists them with their bytes. ``fail_next`` works for the
file methods too (``fail_upload_next`` for the upload POST). ``delay_next(method, seconds)``
answers the next call of a method late (a slow Slack, to catch a process mid-send).
"""

from __future__ import annotations

import json
import threading
import time
from urllib.parse import urlparse

from tests.fake_slack import Call, FakeSlack, _Handler


class _FilesHandler(_Handler):
    def _handle(self) -> None:
        url = urlparse(self.path)
        if url.path.startswith("/upload/") and self.command == "POST":
            raw = self._body()
            file_id = url.path[len("/upload/"):]
            status, text = self.slack.handle_upload(file_id, raw)
            self.slack._record(Call(method="upload", params={"file_id": file_id, "bytes": len(raw)}, headers=self._headers(),
                                    http_method="POST", path=url.path, status=status, response=text))
            self._send(status, text.encode(), "text/plain")
            return
        super()._handle()

    do_GET = _handle
    do_POST = _handle


class FilesFakeSlack(FakeSlack):
    """``FakeSlack`` that also takes file uploads (files_upload_v2)."""

    def start(self) -> FilesFakeSlack:
        from http.server import ThreadingHTTPServer

        fake = self

        class Handler(_FilesHandler):
            slack = fake

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True,
                                        name="fake-slack-files")
        self._thread.start()
        return self

    def reset(self) -> None:
        super().reset()
        with self.lock:
            self.files: dict[str, dict] = {}  # file_id -> {filename, length, data, title, channel, shared}
            self._upload_failures: list[int] = []
            self._delays: dict[str, list[float]] = {}
            self.channels.append({"id": "C0DIGEST", "name": "dora-digest", "is_member": True})

    def delay_next(self, method: str, seconds: float, times: int = 1) -> None:
        """The next ``times`` calls of ``method`` are answered after ``seconds`` (a slow Slack)."""
        with self.lock:
            self._delays.setdefault(method, []).extend([seconds] * times)

    def handle_api(self, method: str, params: dict, headers: dict[str, str]) -> tuple[int, dict, dict]:
        with self.lock:
            delays = self._delays.get(method)
            delay = delays.pop(0) if delays else 0
        if delay:
            time.sleep(delay)  # outside the lock: other calls are answered meanwhile
        return super().handle_api(method, params, headers)

    def fail_upload_next(self, times: int = 1, status: int = 500) -> None:
        with self.lock:
            self._upload_failures.extend([status] * times)

    # --- the three steps ----------------------------------------------------------------------
    def _api_files_getUploadURLExternal(self, params: dict) -> dict:
        filename, length = params.get("filename"), params.get("length")
        if not filename or length in (None, ""):
            return {"ok": False, "error": "invalid_arguments"}
        try:
            length = int(length)
        except (TypeError, ValueError):
            return {"ok": False, "error": "invalid_arguments"}
        file_id = f"F{next(self._ids):08d}"
        self.files[file_id] = {"id": file_id, "filename": filename, "length": length, "data": None, "title": None,
                               "channel": None, "shared": False, "alt_txt": params.get("alt_txt")}
        return {"ok": True, "upload_url": f"{self.url}/upload/{file_id}", "file_id": file_id}

    def handle_upload(self, file_id: str, raw: bytes) -> tuple[int, str]:
        with self.changed:
            if self._upload_failures:
                return self._upload_failures.pop(0), "upload failed"
            f = self.files.get(file_id)
            if f is None:
                return 404, "unknown upload url"
            if len(raw) != f["length"]:
                return 400, f"expected {f['length']} bytes, got {len(raw)}"
            f["data"] = raw
            self.changed.notify_all()
            return 200, f"OK - {len(raw)}"

    def _api_files_completeUploadExternal(self, params: dict) -> dict:
        try:
            items = params.get("files")
            items = json.loads(items) if isinstance(items, str) else items
        except ValueError:
            return {"ok": False, "error": "invalid_arguments"}
        if not isinstance(items, list) or not items:
            return {"ok": False, "error": "invalid_arguments"}
        channel = params.get("channel_id") or params.get("channels")
        out = []
        for item in items:
            f = self.files.get(item.get("id"))
            if f is None or f["data"] is None:
                return {"ok": False, "error": "file_not_found"}
        for item in items:
            f = self.files[item["id"]]
            f.update(title=item.get("title") or f["filename"], channel=channel, shared=bool(channel))
            out.append({"id": f["id"], "name": f["filename"], "title": f["title"], "size": f["length"], "mimetype": "image/png"})
        return {"ok": True, "files": out}

    # --- queries --------------------------------------------------------------------------------
    def shared_files(self, channel: str | None = None) -> list[dict]:
        """Files completed and shared (to ``channel``), in upload order, with their bytes."""
        with self.lock:
            return [dict(f) for f in self.files.values() if f["shared"] and (channel is None or f["channel"] == channel)]
