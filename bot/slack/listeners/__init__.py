"""Bolt listeners. Each module exposes ``register(app, rt)``; listeners stay thin:
parse -> ack -> one service call -> render -> one Slack call."""

from __future__ import annotations

from slack_bolt import App

from bot.runtime import Runtime


def register_all(app: App, rt: Runtime) -> None:
    from bot.slack.listeners import actions, deploy_command, dora_command, errors, home, incident_command, views

    for module in (deploy_command, incident_command, dora_command, actions, views, home, errors):
        module.register(app, rt)
