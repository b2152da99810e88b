"""``/deploy freeze|unfreeze|freezes``: the deploy gate's freezes (rule in ``bot.services.gate``)."""

from __future__ import annotations

from bot.core import grammar as g
from bot.services import gate
from bot.slack import blocks as bk
from bot.slack.listeners.common import reply, runtime, transaction
from bot.store.db import session_scope


def handle(context, parsed, *, command: dict, respond) -> None:
    rt = runtime(context)
    user = command.get("user_id")
    now = rt.now()
    if isinstance(parsed, g.DeployFreezes):
        with session_scope(rt.engine, write=False) as session:
            freezes = gate.active_freezes(session, now=now, every=True)
        if not freezes:
            reply(respond, "No deploy freeze holds: the gate only stops deploys during open incidents at or above "
                           f"{rt.settings.gate_severity}.")
        else:
            reply(respond, "\n".join(bk.freeze_line(f) for f in freezes))
    elif isinstance(parsed, g.DeployFreeze):
        until = gate.parse_until(parsed.until, now=now, tz=rt.settings.tz) if parsed.until else None
        with transaction(context) as session:
            made = gate.freeze(session, target=parsed.target, until=until, reason=parsed.reason, actor=user, now=now)
        reply(respond, f"{bk.freeze_line(made)}\nCI asking `GET /api/v1/gate` is told to wait. Lift it with "
                       f"`/deploy unfreeze {made.target}`.", public=True)
    elif isinstance(parsed, g.DeployUnfreeze):
        with transaction(context) as session:
            lifted = gate.unfreeze(session, target=parsed.target, actor=user, now=now)
        target = "every service" if parsed.target.lower() == gate.ALL else f"`{lifted[0].service if lifted else bk.esc(parsed.target)}`"
        if lifted:
            text = f":sunny: <@{user}> lifted the deploy freeze of {target}."
            if parsed.target.lower() == gate.ALL:
                with session_scope(rt.engine, write=False) as session:
                    still = gate.active_freezes(session, now=now, every=True)
                if still:
                    names = ", ".join(f"`{f.service}`" for f in still)
                    text += f" Still frozen on their own: {names} (`/deploy unfreeze <service>`)."
            reply(respond, text, public=True)
        else:
            reply(respond, f"No freeze of {target} holds; `/deploy freezes` lists those that do.")
