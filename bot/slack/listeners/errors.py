"""The last-resort error handler: log unexpected errors with an id."""

from __future__ import annotations

import uuid

from slack_bolt import App

from bot.runtime import Runtime


def register(app: App, rt: Runtime) -> None:
    @app.error
    def unexpected(error, body, logger):
        error_id = uuid.uuid4().hex[:8]
        logger.exception("unhandled error %s in %s: %s", error_id, (body or {}).get("type") or (body or {}).get("command"), error)
