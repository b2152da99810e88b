"""Bolt listeners: module-level functions, registered here in one table.

Listeners stay thin: parse -> ack -> one transaction (the change and the outbox messages it
causes) -> answer the user. Their dependencies come from Bolt's context (``common.install``);
errors are raised and turned into answers by the one error handler (``errors``).
"""

from __future__ import annotations

import re

from slack_bolt import App

from bot.runtime import Runtime
from bot.slack.ids import Action, Shortcut, View


def register_all(app: App, rt: Runtime) -> None:
    from bot.slack.listeners import (
        catalogue,
        common,
        deploy_command,
        dora_command,
        errors,
        home,
        incidents,
        lifecycle,
        teams,
        watches,
    )

    common.install(app, rt)
    guard = errors.answering_errors_after_ack
    for command, listener in (
        ("/deploy", deploy_command.deploy_command),
        ("/incident", incidents.incident_command),
        ("/dora", dora_command.dora_command),
    ):
        app.command(command)(guard(listener))
    for action, listener in (
        (Action.ACK, incidents.acknowledge_pressed),
        (Action.RESOLVE, incidents.resolve_pressed),
        (Action.ROLLBACK, incidents.rollback_pressed),
        (Action.UPDATE, incidents.update_pressed),
        (Action.DECLARE_SERVICE, incidents.service_picked),
        (re.compile(f"^{Action.SNOOZE}_\\d+$"), incidents.snooze_pressed),
        (Action.HOME_REFRESH, home.refresh_pressed),
        (Action.MITIGATE, lifecycle.mitigate_pressed),
        (Action.CANCEL, lifecycle.cancel_pressed),
        (Action.LEAD, lifecycle.lead_pressed),
        (Action.FOLLOWUP_DONE, lifecycle.followup_done_pressed),
        (re.compile(f"^{Action.NUDGE_CAUSE}_\\d+$"), watches.nudge_cause_pressed),
        (Action.NUDGE_NOT_CAUSED, watches.nudge_not_caused_pressed),
        (re.compile(f"^{Action.CATALOGUE_USE}_\\d+$"), catalogue.picked),
        (Action.CATALOGUE_CREATE, catalogue.picked),
        (Action.SERVICE_CHANGE, teams.service_change_confirmed),
        (Action.HOME_TEAMS, home.teams_picked),
    ):
        app.action(action)(guard(listener))
    app.view(View.CANCEL)(guard(lifecycle.cancel_submitted))
    app.view(View.TIMELINE)(guard(lifecycle.timeline_submitted))
    app.shortcut(Shortcut.ADD_TO_TIMELINE)(guard(lifecycle.add_to_timeline))
    app.view(View.DECLARE)(guard(incidents.declare_submitted))
    app.view(View.UPDATE)(guard(incidents.update_submitted))
    app.event("app_home_opened")(home.home_opened)
    errors.register(app)
