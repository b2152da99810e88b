"""The catalogue in Slack: a ``/deploy`` or ``/incident declare`` naming an unknown service asks
first, and stores nothing until the user picks.

The question carries the original command in its buttons (the command text, the channel and the
instant it was typed, a one-time id): **Use checkout** (the closest known names) runs it with that
service, **Create chekout** runs it as typed. The pick is claimed under the one-time id in the
transaction of the record it makes, so a double click records it once, and the question is then
replaced by the answer (its buttons gone).
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from datetime import datetime

from bot.core import grammar as g
from bot.core.timeutil import isoformat_z, parse_instant
from bot.services import catalogue
from bot.slack import blocks as bk
from bot.slack.ids import Action
from bot.slack.listeners.common import actor, reply, runtime
from bot.store.db import session_scope

VALUE_LIMIT = 2000  # a button's value (https://docs.slack.dev/reference/block-kit/block-elements/button-element)


def ask_if_unknown(context, respond, *, command: str, text: str, service: str, channel: str | None, now: datetime) -> bool:
    """Ask about ``service`` if it is no known service; True when the question was asked (the
    caller stops: nothing is stored)."""
    rt = runtime(context)
    with session_scope(rt.engine, write=False) as session:
        if catalogue.known(session, service) is not None:
            return False
        close = catalogue.suggestions(session, service)
    nonce = uuid.uuid4().hex
    base = {"c": command, "t": text, "ch": channel, "at": isoformat_z(now), "n": nonce}

    def value(use: str | None) -> str:
        return json.dumps({**base, "s": use}, separators=(",", ":"))

    question = f"`{service}` is not a known service"
    question += " — did you mean " + " or ".join(f"`{n}`" for n in close) + "?" if close else " yet. Create it?"
    if len(value(service)) > VALUE_LIMIT:
        reply(respond, question + " Run the command again with a known service (or a shorter note).")
        return True
    buttons = [bk.button(f"Use {name}", f"{Action.CATALOGUE_USE}_{i}", value(name), style="primary" if i == 0 else None)
               for i, name in enumerate(close)]
    buttons.append(bk.button(f"Create {service}", Action.CATALOGUE_CREATE, value(None)))
    blocks = [bk.md(question + " Nothing is recorded until you choose."),
              {"type": "actions", "block_id": "catalogue_pick", "elements": [b.to_dict() for b in buttons]}]
    reply(respond, question, bk.dicts(blocks))
    return True


def picked(ack, body, respond, context) -> None:
    """**Use <service>** or **Create <service>**: run the original command once."""
    ack()
    value = json.loads(body["actions"][0]["value"])
    at = parse_instant(value["at"])
    command = {"user_id": actor(body), "channel_id": value.get("ch"), "text": value["t"]}
    # The pick, not this HTTP request, is what must act once: a second click is a new request.
    context["request_key"] = f"pick:{value['n']}"[:100]
    if value["c"] == "deploy":
        from bot.slack.listeners import deploy_command

        parsed = g.parse_deploy_command(value["t"])
        if value.get("s"):
            parsed = dataclasses.replace(parsed, service=value["s"])
        deploy_command.handle(context, parsed, command=command, respond=respond, now=at, confirmed=True)
    else:
        from bot.slack.listeners import incidents

        parsed = g.parse_incident_command(value["t"])
        if value.get("s"):
            parsed = dataclasses.replace(parsed, service=value["s"])
        incidents.handle(context, parsed, command=command, respond=respond, now=at, confirmed=True)
    chosen = value.get("s") or parsed.service
    respond(text=f"Used `{chosen}`." if value.get("s") else f"Created `{chosen}`.", replace_original=True)
