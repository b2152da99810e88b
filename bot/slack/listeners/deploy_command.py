"""``/deploy``: record, list, mark failed, roll back; freezes (``freeze.py``)."""

from __future__ import annotations

from bot.core import grammar as g
from bot.core.inputs import parse_deploy
from bot.core.timeutil import isoformat_z, parse_time
from bot.services import gate, outbox
from bot.services.deploys import list_deploys, mark_change_failure, record_deploy, record_rollback
from bot.slack import blocks as bk
from bot.slack.listeners import freeze
from bot.slack.listeners.catalogue import ask_if_unknown
from bot.slack.listeners.common import reply, runtime, transaction
from bot.store.db import session_scope


def deploy_command(ack, command, respond, context) -> None:
    parsed = g.parse_deploy_command(command.get("text") or "")  # a UsageError is the ack's answer
    ack()
    handle(context, parsed, command=command, respond=respond)


def handle(context, parsed, *, command: dict, respond, now=None, confirmed: bool = False) -> None:
    """``now``/``confirmed``: the command replayed from the catalogue's question (its own instant,
    the service already chosen)."""
    rt = runtime(context)
    user, channel = command.get("user_id"), command.get("channel_id")
    settings = rt.settings
    now = now or rt.now()
    if isinstance(parsed, g.Help):
        reply(respond, *bk.help_message("/deploy", g.DEPLOY_USAGE))
    elif isinstance(parsed, (g.DeployFreeze, g.DeployUnfreeze, g.DeployFreezes)):
        freeze.handle(context, parsed, command=command, respond=respond)
    elif isinstance(parsed, g.DeployList):
        with session_scope(rt.engine, write=False) as session:
            rows = list_deploys(session, service=parsed.service, environment=parsed.environment, limit=parsed.limit)
            reply(respond, *bk.deploy_list(rows))
    elif isinstance(parsed, g.DeployFail):
        with transaction(context) as session:
            deploy, changed = mark_change_failure(session, ref=parsed.ref, reason=parsed.reason, actor=user)
        if changed:
            why = f": {bk.esc(parsed.reason)}" if parsed.reason else ""
            reply(respond, f":boom: <@{user}> marked {parsed.ref} ({bk.esc(deploy.version)}) as a change failure{why}", public=True)
        else:
            reply(respond, f"{parsed.ref} was already marked as a change failure.")
    elif isinstance(parsed, g.DeployRollback):
        with transaction(context) as session:
            outcome = record_rollback(session, service=parsed.service, to_version=parsed.to, now=now, actor=user)
            outbox.post_cards(session, "deploy", outcome.deploy.id, [channel], now=now)
        reply(respond, f":rewind: Recorded rollback {outcome.ref}: `{outcome.service.name}` back to {bk.esc(outcome.deploy.version)}"
                       f" (reverts D-{outcome.deploy.rollback_of_id}).")
    elif isinstance(parsed, g.DeployRecord):
        commits = []
        if parsed.commit:
            committed = isoformat_z(parse_time(parsed.committed, now=now, tz=settings.tz)) if parsed.committed else None
            commits.append({"sha": parsed.commit, "committed_at": committed})
        data = parse_deploy(
            {
                "service": parsed.service, "version": parsed.version, "environment": parsed.environment,
                "deployed_at": isoformat_z(now), "commits": commits, "url": parsed.url, "note": parsed.note,
                "fixes": parsed.fixes, "rework": parsed.hotfix,
            },
            now=now,
            require_id=False,
        )
        if not confirmed and ask_if_unknown(
            context, respond, command="deploy", text=command.get("text") or "", service=data.service, channel=channel, now=now
        ):
            return  # a typo never splits a service's history: nothing is stored until the user picks
        with transaction(context) as session:
            outcome = record_deploy(session, data=data, production_environments=settings.production_environments, now=now,
                                    source="slack", actor=user)
            outbox.post_cards(session, "deploy", outcome.deploy.id, [channel], now=now)
            frozen = gate.active_freezes(session, now=now, service_id=outcome.deploy.service_id)
        text = f":rocket: Recorded {outcome.ref}: `{outcome.service.name}` {bk.esc(outcome.deploy.version)} to {outcome.deploy.environment}"
        text += f", fixing {parsed.fixes} (rework)." if parsed.fixes else (" as a hotfix (rework)." if parsed.hotfix else ".")
        for inc in outcome.open_incidents[:3]:
            text += f"\n:warning: `{outcome.service.name}` has an open incident, INC-{inc.id} ({inc.severity}): {bk.esc(inc.title)}"
        for f in frozen:
            text += f"\n{bk.freeze_line(f)}"
        reply(respond, text)
