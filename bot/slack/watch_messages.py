"""What a watch says when it fires or clears, and its delivery from the outbox.

The facts (value, threshold, since when, the explain command) are fixed by the check that
changed the watch's state and travel in the outbox payload; the message is built when it is sent.
"""

from __future__ import annotations

import logging
from datetime import datetime

from bot.core.report_text import counted
from bot.core.watches import CHECKS_TO_CLEAR, CHECKS_TO_FIRE
from bot.slack import blocks as bk
from bot.store.db import session_scope
from bot.store.models import Watch

log = logging.getLogger(__name__)


def watch_message(payload: dict) -> tuple[str, list[dict]]:
    """``Watch #3 fired: change fail rate for `checkout` is 18.2% (4 of 22 deploys), above 15%``."""
    fired = payload["event"] == "fired"
    since = datetime.fromisoformat(payload["since"].replace("Z", "+00:00"))
    metric, scope, value, threshold = payload["metric"], bk.esc(payload["scope"]), bk.esc(payload["value"]), bk.esc(payload["threshold"])
    if fired:
        head = f":rotating_light: *Watch #{payload['watch']} fired: {metric.lower()} for {scope} is {value}, {threshold}*"
        tail = f"over the last {counted(payload['days'], 'day')}, since {bk.ts(since)} (held at {CHECKS_TO_FIRE} hourly checks in a row)"
        text = f"Watch #{payload['watch']} fired: {metric.lower()} for {bk.esc(payload['scope'])} is {value}, {threshold}"
    else:
        head = f":white_check_mark: *Watch #{payload['watch']} cleared: {metric.lower()} for {scope} is {value}, no longer {threshold}*"
        tail = (f"over the last {counted(payload['days'], 'day')}, since {bk.ts(since)}"
                f" (not held at {CHECKS_TO_CLEAR} hourly checks in a row)")
        text = f"Watch #{payload['watch']} cleared: {metric.lower()} for {bk.esc(payload['scope'])} is {value}, no longer {threshold}"
    blocks = [
        bk.md(f"{head} {tail}."),
        bk.context(f"Why: `{bk.esc(payload['explain'])}` · the watch: `{bk.esc(payload['condition'])}` (`/dora watch list`)"),
    ]
    return text, bk.dicts(blocks)


def send_watch(sender, attempt) -> None:
    """Post the watch's message in its channel (dropped if the watch was removed meanwhile)."""
    payload = attempt.payload
    with session_scope(sender.engine, write=False) as session:
        if session.get(Watch, payload["watch"]) is None:
            log.info("watch %s was removed before its message was sent; dropping it", payload["watch"])
            return
    text, blocks = watch_message(payload)
    sender.post_once(attempt, channel=payload["channel"], text=text, blocks=blocks)
