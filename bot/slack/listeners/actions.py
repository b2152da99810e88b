"""Buttons on the incident card: Acknowledge, Resolve, Roll back, Post update."""

from __future__ import annotations

import re

from slack_bolt import App

from bot.core.timeutil import format_duration
from bot.services.reminders import snooze

from bot.runtime import Runtime
from bot.services.incidents import acknowledge_incident, resolve_incident, roll_back_cause
from bot.services.lookup import find_incident
from bot.slack import blocks as bk
from bot.slack.ids import Action, Block
from bot.slack.listeners.common import actor, friendly_errors, reply
from bot.slack.listeners.incident_command import known_services, recent_deploys
from bot.slack.messaging import Messenger
from bot.store.db import session_scope
from bot.store.models import Service


def _incident_id(body: dict) -> str:
    return "INC-" + body["actions"][0]["value"]


def register(app: App, rt: Runtime) -> None:
    def state_change(operation):
        def listener(ack, body, respond, client, logger):
            ack()
            with friendly_errors(respond):
                with session_scope(rt.engine) as session:
                    outcome = operation(session, ref=_incident_id(body), now=rt.now(), actor=actor(body))
                messenger = Messenger(client, rt)
                if not outcome.changed:
                    # A double click, a retry or a stale card: say what the state is, refresh the card.
                    reply(respond, outcome.message)
                    messenger.refresh_incident(outcome.incident.id)
                    return
                messenger.refresh_incident(outcome.incident.id, thread_line=messenger.thread_line_for_last_event(outcome.incident.id))

        return listener

    app.action(Action.ACK)(state_change(acknowledge_incident))
    app.action(Action.RESOLVE)(state_change(resolve_incident))
    app.action(Action.ROLLBACK)(state_change(roll_back_cause))

    @app.action(re.compile(f"^{Action.SNOOZE}_\\d+$"))
    def snooze_reminders(ack, body, respond, client):
        ack()
        with friendly_errors(respond):
            incident_id, minutes = body["actions"][0]["value"].split(":")
            with session_scope(rt.engine) as session:
                incident = snooze(session, ref=f"INC-{incident_id}", minutes=int(minutes), now=rt.now(), actor=actor(body))
                if incident.resolved_at is not None:
                    reply(respond, f"INC-{incident_id} is already resolved; no more reminders.")
                    return
            reply(respond, f":zzz: Reminders for INC-{incident_id} snoozed for {format_duration(int(minutes) * 60)}.", public=True)

    @app.action(Action.UPDATE)
    def open_update_modal(ack, body, respond, client):
        ack()
        with friendly_errors(respond):
            with session_scope(rt.engine, write=False) as session:
                incident = find_incident(session, _incident_id(body))
                service = session.get(Service, incident.service_id).name
            client.views_open(trigger_id=body["trigger_id"], view=bk.update_modal(incident, service))

    @app.action(Action.DECLARE_SERVICE)
    def service_picked(ack, body, client):
        """Reload the declare form with the picked service's recent deploys."""
        ack()
        view = body["view"]
        values = view["state"]["values"]
        service = values[Block.SERVICE][Action.DECLARE_SERVICE]["selected_option"]["value"]
        kept = {
            "title": (values.get(Block.TITLE, {}).get("value") or {}).get("value"),
            "started": (values.get(Block.STARTED, {}).get("value") or {}).get("value"),
            "severity": ((values.get(Block.SEVERITY, {}).get("value") or {}).get("selected_option") or {}).get("value", "sev2"),
        }
        with session_scope(rt.engine, write=False) as session:
            new_view = bk.declare_modal(
                services=known_services(session), service=service, deploys=recent_deploys(session, service, rt.settings.production_environments),
                channel=view.get("private_metadata") or None, values=kept,
            )
        client.views_update(view_id=view["id"], hash=view.get("hash"), view=new_view)
