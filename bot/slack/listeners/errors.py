"""The one error handler: a typed error becomes the right answer on the right surface.

Listeners raise; they never catch to answer. Before the listener acked, the answer is the ack
itself (Bolt hands the handler the response it will send): an ephemeral message for a command,
field errors for a modal (``response_action: errors``). After the ack it is an ephemeral reply
through ``respond`` (the durable response_url reply). A replay of a handled request is answered
with nothing. Anything unexpected is logged with an id that the user is given.
"""

from __future__ import annotations

import functools
import json
import logging
import uuid

from slack_bolt import App, BoltResponse

from bot.core import grammar as g
from bot.core.errors import DoraError, NotFound, StateError, ValidationError
from bot.services.requests import AlreadyHandled
from bot.slack import blocks as bk
from bot.slack.listeners.common import FieldErrors
from bot.slack.wording import error_text, usage_hint

log = logging.getLogger("bot.slack")
FIELD_ERROR_LEN = 150  # what fits under a modal field


def _usage_of(body: dict) -> str | None:
    """The one hint line under an error of a slash command (not the whole usage: that is `help`)."""
    command = (body or {}).get("command")
    return usage_hint(command, body.get("text")) if isinstance(command, str) else None


def _first_input(view: dict) -> str | None:
    for block in view.get("blocks") or []:
        if block.get("type") == "input":
            return block.get("block_id")
    return None


def _answer(response: BoltResponse, payload: dict) -> None:
    response.status = 200
    response.body = json.dumps(payload)
    response.headers["content-type"] = ["application/json;charset=utf-8"]


def handle_error(error: Exception, body: dict, response: BoltResponse | None, respond=None) -> None:
    """Bolt's global error handler (``response`` is None once the listener acked)."""
    body = body or {}
    if isinstance(error, AlreadyHandled):
        log.info("a replayed Slack request was answered without acting again")
        if response is not None:
            response.status, response.body = 200, ""
        return
    error_id = None
    if isinstance(error, g.UsageError):
        message, usage = error.message, _usage_of(body) or usage_hint(error.command, None)
    elif isinstance(error, (NotFound, StateError, FieldErrors)):  # the request was fine; the usage would not help
        message, usage = error.message, None
    elif isinstance(error, ValidationError):  # in people's words, not the API's field names
        message, usage = error_text(error), _usage_of(body)
    elif isinstance(error, DoraError):
        message, usage = error.message, _usage_of(body)
    else:
        error_id = uuid.uuid4().hex[:8]
        log.error("unexpected error %s in %s", error_id, body.get("type") or body.get("command"), exc_info=error)
        message, usage = f"Something went wrong on our side (error id `{error_id}`). Nothing was changed by the failed step.", None

    if body.get("type") == "view_submission":
        view = body.get("view") or {}
        if isinstance(error, FieldErrors):
            errors = {k: v[:FIELD_ERROR_LEN] for k, v in error.errors.items()}
        else:
            errors = {_first_input(view) or "": message[:FIELD_ERROR_LEN]}
        if response is not None:
            _answer(response, {"response_action": "errors", "errors": errors})
        return
    text, blocks = bk.error_message(message, usage)
    if response is not None:
        _answer(response, {"text": text, "blocks": blocks, "response_type": "ephemeral"})
    elif respond is not None and getattr(respond, "response_url", None):
        respond(text=text, blocks=blocks, response_type="ephemeral", replace_original=False)
    elif error_id is None:
        log.warning("could not tell the user: %s", message)


def answering_errors_after_ack(listener):
    """``listener`` with its errors after the ack answered here, by the same ``handle_error``.

    Bolt's runner, when a listener raises after it acked, resets the ack it has not sent yet
    (``ack.response = None``): a request that failed quickly after its ack would be answered 404
    three seconds later. Errors before the ack still go to Bolt, which puts our answer in the ack.
    """

    @functools.wraps(listener)  # Bolt reads the listener's argument names through the wrapper
    def run(**kwargs):
        try:
            return listener(**kwargs)
        except Exception as exc:
            context = kwargs.get("context") or {}
            ack = kwargs.get("ack") or getattr(context, "ack", None)
            if ack is None or getattr(ack, "response", None) is None:
                raise
            body = kwargs.get("body") or kwargs.get("command") or {}
            handle_error(exc, body, None, kwargs.get("respond") or getattr(context, "respond", None))

    return run


def register(app: App) -> None:
    app.error(handle_error)
