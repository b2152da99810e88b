"""``/deploy``: record, list, mark failed, roll back."""

from __future__ import annotations

from slack_bolt import App

from bot.core import grammar as g
from bot.core.inputs import parse_deploy
from bot.core.timeutil import isoformat_z, parse_time
from bot.runtime import Runtime
from bot.services.deploys import list_deploys, mark_change_failure, record_deploy, record_rollback
from bot.slack import blocks as bk
from bot.slack.listeners.common import friendly_errors, reply
from bot.slack.messaging import Messenger
from bot.store.db import session_scope


def register(app: App, rt: Runtime) -> None:
    @app.command("/deploy")
    def deploy_command(ack, command, respond, client, logger):
        try:
            parsed = g.parse_deploy_command(command.get("text") or "")
        except g.UsageError as exc:
            text, blocks = bk.error_message(exc.message, exc.usage)
            ack(text=text, blocks=blocks, response_type="ephemeral")
            return
        ack()
        with friendly_errors(respond, usage=g.DEPLOY_USAGE):
            handle(rt, parsed, command=command, respond=respond, messenger=Messenger(client, rt))


def handle(rt: Runtime, parsed, *, command: dict, respond, messenger: Messenger) -> None:
    user, channel = command.get("user_id"), command.get("channel_id")
    settings = rt.settings
    now = rt.now()
    if isinstance(parsed, g.Help):
        reply(respond, *bk.help_message("/deploy", g.DEPLOY_USAGE))
    elif isinstance(parsed, g.DeployList):
        with session_scope(rt.engine, write=False) as session:
            rows = list_deploys(session, service=parsed.service, environment=parsed.environment, limit=parsed.limit)
            reply(respond, *bk.deploy_list(rows))
    elif isinstance(parsed, g.DeployFail):
        with session_scope(rt.engine) as session:
            deploy, changed = mark_change_failure(session, ref=parsed.ref, reason=parsed.reason, actor=user)
        if changed:
            why = f": {bk.esc(parsed.reason)}" if parsed.reason else ""
            reply(respond, f":boom: <@{user}> marked {parsed.ref} ({bk.esc(deploy.version)}) as a change failure{why}", public=True)
        else:
            reply(respond, f"{parsed.ref} was already marked as a change failure.")
    elif isinstance(parsed, g.DeployRollback):
        with session_scope(rt.engine) as session:
            outcome = record_rollback(session, service=parsed.service, to_version=parsed.to, now=now, actor=user)
        reply(respond, f":rewind: Recorded rollback {outcome.ref}: `{outcome.service.name}` back to {bk.esc(outcome.deploy.version)} (reverts D-{outcome.deploy.rollback_of_id}).")
        messenger.post_deploy_card(outcome.deploy.id, channel)
    elif isinstance(parsed, g.DeployRecord):
        commits = []
        if parsed.commit:
            committed = isoformat_z(parse_time(parsed.committed, now=now, tz=settings.tz)) if parsed.committed else None
            commits.append({"sha": parsed.commit, "committed_at": committed})
        data = parse_deploy(
            {
                "service": parsed.service, "version": parsed.version, "environment": parsed.environment,
                "deployed_at": isoformat_z(now), "commits": commits, "url": parsed.url, "note": parsed.note,
            },
            now=now,
            require_id=False,
        )
        with session_scope(rt.engine) as session:
            outcome = record_deploy(session, data=data, production_environments=settings.production_environments, now=now, source="slack", actor=user)
        text = f":rocket: Recorded {outcome.ref}: `{outcome.service.name}` {bk.esc(outcome.deploy.version)} to {outcome.deploy.environment}."
        for inc in outcome.open_incidents[:3]:
            text += f"\n:warning: `{outcome.service.name}` has an open incident, INC-{inc.id} ({inc.severity}): {bk.esc(inc.title)}"
        reply(respond, text)
        messenger.post_deploy_card(outcome.deploy.id, channel)
