"""``/dora watch add|list|remove`` and the nudge's buttons (**Caused by D-n**, **Not caused by a deploy**)."""

from __future__ import annotations

from bot.core import grammar as g
from bot.core.errors import ValidationError
from bot.core.numbers import is_digits
from bot.services import nudges, outbox, watches
from bot.slack import blocks as bk
from bot.slack.listeners.common import actor, reply, runtime, transaction
from bot.store.db import session_scope


def handle_watch(context, parsed, *, user: str | None, respond) -> None:
    """One of ``g.WatchAdd``, ``g.WatchList``, ``g.WatchRemove`` (adding and removing: admins)."""
    from bot.slack.listeners.dora_command import channel_id_of, require_admin

    rt = runtime(context)
    if isinstance(parsed, g.WatchList):
        with session_scope(rt.engine, write=False) as session:
            lines = [_line(watches.describe(session, w)) for w in watches.list_watches(session)]
        reply(respond, "\n".join(lines) if lines else "No watches yet: add one with `/dora watch add cfr>15% #channel`.")
    elif isinstance(parsed, g.WatchAdd):
        require_admin(rt, user, "add watches")
        channel_id = channel_id_of(context, parsed.channel)
        with transaction(context) as session:
            watch = watches.add_watch(
                session, condition=parsed.condition, channel=channel_id, service=parsed.service, team=parsed.team,
                days=parsed.days, actor=user, now=rt.now(),
            )
            text = _line(watches.describe(session, watch))
        reply(respond, f":eyes: <@{user}> added a watch: {text}. It is checked every hour and posts when it fires and when it clears.",
              public=True)
    elif isinstance(parsed, g.WatchRemove):
        require_admin(rt, user, "remove watches")
        with transaction(context) as session:
            _, text = watches.remove_watch(session, parsed.id)
        reply(respond, f"Watch removed: {_line(text)}", public=True)


def _line(description: str) -> str:
    """A watch's description as mrkdwn: its conditions' ``<`` and ``>`` escaped, the channel kept."""
    return bk.esc(description, mentions=True)


# --- the nudge's buttons -------------------------------------------------------------------

def _nudge_value(body: dict) -> tuple[int, int | None]:
    """``"<nudge id>:<deploy id>"`` or ``"<nudge id>"``, checked (a forged value gets a clear answer)."""
    value = str((body.get("actions") or [{}])[0].get("value") or "")
    parts = value.split(":")
    if not 1 <= len(parts) <= 2 or not all(is_digits(p) and len(p) < 10 for p in parts):
        raise ValidationError("That button is not one of mine.", field="answer")
    return int(parts[0]), int(parts[1]) if len(parts) == 2 else None


def _answer(ack, body, respond, context, *, with_deploy: bool) -> None:
    ack()
    rt = runtime(context)
    nudge_id, deploy_id = _nudge_value(body)
    if with_deploy != (deploy_id is not None):
        raise ValidationError("That button is not one of mine.", field="answer")
    now = rt.now()
    with transaction(context) as session:
        result = nudges.answer(session, nudge_id=nudge_id, deploy_id=deploy_id, actor=actor(body), now=now)
        if not result.changed:  # a second click, or a stale copy of the question: show the answer again
            outbox.enqueue(session, kind=outbox.Kind.NUDGE_UPDATE, key=outbox.card_key("incident", result.nudge.incident_id),
                           payload={"nudge": result.nudge.id}, now=now)
    if not result.changed:
        reply(respond, result.message)


def nudge_cause_pressed(ack, body, respond, context) -> None:
    _answer(ack, body, respond, context, with_deploy=True)


def nudge_not_caused_pressed(ack, body, respond, context) -> None:
    _answer(ack, body, respond, context, with_deploy=False)
