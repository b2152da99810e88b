"""What every listener shares: turning typed errors into a friendly ephemeral reply."""

from __future__ import annotations

import logging
import uuid
from contextlib import contextmanager
from typing import Callable

from bot.core.errors import DoraError, NotFound, StateError
from bot.core.grammar import UsageError
from bot.slack import blocks as bk

log = logging.getLogger("bot.slack")


def reply(respond: Callable, text: str, blocks: list[dict] | None = None, *, public: bool = False) -> None:
    respond(text=text, blocks=blocks, response_type="in_channel" if public else "ephemeral", replace_original=False)


@contextmanager
def friendly_errors(respond: Callable, *, usage: str | None = None):
    """Typed errors become an ephemeral explanation; anything else is logged with an id."""
    try:
        yield
    except UsageError as exc:
        text, blocks = bk.error_message(exc.message, exc.usage)
        reply(respond, text, blocks)
    except (NotFound, StateError) as exc:  # the command was fine; the usage would not help
        text, blocks = bk.error_message(exc.message)
        reply(respond, text, blocks)
    except DoraError as exc:
        text, blocks = bk.error_message(exc.message, usage)
        reply(respond, text, blocks)
    except Exception:
        error_id = uuid.uuid4().hex[:8]
        log.exception("unexpected error %s", error_id)
        text, blocks = bk.error_message(f"Something went wrong on our side (error id `{error_id}`). Nothing was changed by the failed step.")
        reply(respond, text, blocks)


def actor(body: dict) -> str | None:
    return (body.get("user") or {}).get("id") or body.get("user_id")
