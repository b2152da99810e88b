"""``/incident``: the declare form, declare, list, show, ack, update, cause, resolve."""

from __future__ import annotations

import logging

from slack_bolt import App
from sqlmodel import select

from bot.core import grammar as g
from bot.core.inputs import IncidentInput, normalize_service, service_key
from bot.core.timeutil import parse_time
from bot.runtime import Runtime
from bot.services.app_settings import get_alert_channel
from bot.services.incidents import (
    acknowledge_incident,
    declare_incident,
    link_cause,
    list_open_incidents,
    post_update,
    resolve_incident,
    timeline,
)
from bot.services.lookup import find_incident
from bot.slack import blocks as bk
from bot.slack.listeners.common import friendly_errors, reply
from bot.slack.messaging import Messenger
from bot.store.db import session_scope
from bot.store.models import Deploy, Service

log = logging.getLogger(__name__)


def register(app: App, rt: Runtime) -> None:
    @app.command("/incident")
    def incident_command(ack, command, respond, client, logger):
        try:
            parsed = g.parse_incident_command(command.get("text") or "")
        except g.UsageError as exc:
            text, blocks = bk.error_message(exc.message, exc.usage)
            ack(text=text, blocks=blocks, response_type="ephemeral")
            return
        ack()
        with friendly_errors(respond, usage=g.INCIDENT_USAGE):
            handle(rt, parsed, command=command, respond=respond, client=client)


def known_services(session) -> list[str]:
    return list(session.exec(select(Service.name).order_by(Service.name).limit(100)).all())


def recent_deploys(session, service: str, environments, limit: int = 25) -> list[Deploy]:
    """The service's latest successful production deploys: the candidates to suspect."""
    return list(
        session.exec(
            select(Deploy)
            .join(Service, Service.id == Deploy.service_id)
            .where(Service.key == service_key(service), Deploy.status == "success", Deploy.environment.in_(list(environments)))
            .order_by(Deploy.deployed_at.desc(), Deploy.id.desc())
            .limit(limit)
        ).all()
    )


def announce(rt: Runtime, messenger: Messenger, incident_id: int, *, declared_in: str | None) -> None:
    """Post the incident card to the alert channel and the channel it was declared in."""
    with session_scope(rt.engine, write=False) as session:
        alert_channel = get_alert_channel(session, default=rt.settings.alert_channel)
    channels = [alert_channel]
    if declared_in and not declared_in.startswith("D"):
        channels.append(declared_in)
    if not any(channels):
        # Declared by the API or Alertmanager with nowhere to post: say so where operators look.
        log.warning("INC-%s has no channel for its card: set DORA_ALERT_CHANNEL or run /dora alerts #channel", incident_id)
    messenger.post_incident_card(incident_id, channels)


def handle(rt: Runtime, parsed, *, command: dict, respond, client) -> None:
    user, channel = command.get("user_id"), command.get("channel_id")
    now = rt.now()
    messenger = Messenger(client, rt)
    if isinstance(parsed, g.Help):
        reply(respond, *bk.help_message("/incident", g.INCIDENT_USAGE))
    elif isinstance(parsed, g.IncidentModal):
        with session_scope(rt.engine, write=False) as session:
            view = bk.declare_modal(services=known_services(session), channel=channel)
        client.views_open(trigger_id=command["trigger_id"], view=view)
    elif isinstance(parsed, g.IncidentDeclare):
        started = parse_time(parsed.started, now=now, tz=rt.settings.tz) if parsed.started else now
        if started > now:
            raise g.UsageError("`started=` is in the future", command="incident")
        data = IncidentInput(service=normalize_service(parsed.service), started_at=started, severity=parsed.severity, title=parsed.title)
        with session_scope(rt.engine) as session:
            outcome = declare_incident(session, data=data, now=now, source="slack", actor=user)
            if parsed.cause:
                link_cause(session, ref=outcome.ref, deploy=parsed.cause, now=now, actor=user)
        reply(respond, f":rotating_light: Declared {outcome.ref}. The card with recovery buttons is in the channel.")
        announce(rt, messenger, outcome.incident.id, declared_in=channel)
    elif isinstance(parsed, g.IncidentList):
        with session_scope(rt.engine, write=False) as session:
            reply(respond, *bk.incident_list(list_open_incidents(session), now=now))
    elif isinstance(parsed, g.IncidentAction) and parsed.verb == "show":
        with session_scope(rt.engine, write=False) as session:
            incident = find_incident(session, parsed.ref)
            service = session.get(Service, incident.service_id).name
            cause = session.get(Deploy, incident.caused_by_id) if incident.caused_by_id else None
            reply(respond, *bk.incident_detail(incident, service, timeline(session, incident.id), now=now, cause=cause))
    elif isinstance(parsed, g.IncidentAction):
        with session_scope(rt.engine) as session:
            if parsed.verb == "ack":
                outcome = acknowledge_incident(session, ref=parsed.ref, now=now, actor=user)
            elif parsed.verb == "resolve":
                outcome = resolve_incident(session, ref=parsed.ref, now=now, actor=user, note=parsed.text)
            elif parsed.verb == "update":
                outcome = post_update(session, ref=parsed.ref, text=parsed.text, now=now, actor=user)
            else:
                outcome = link_cause(session, ref=parsed.ref, deploy=parsed.deploy, now=now, actor=user)
        if not outcome.changed:
            reply(respond, outcome.message)
            return
        messenger.refresh_incident(outcome.incident.id, thread_line=messenger.thread_line_for_last_event(outcome.incident.id))
        reply(respond, f"Done: {parsed.ref} {dict(ack='acknowledged', resolve='resolved', update='updated', cause='linked to ' + str(parsed.deploy)).get(parsed.verb)}.")
