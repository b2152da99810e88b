"""Incidents in Slack: the ``/incident`` command, the card's buttons and the two forms.

Every change runs in one transaction that also queues what Slack must show (the new card, the
refreshed card and the thread line of the event); the outbox worker sends it. The listener only
answers the person who asked.
"""

from __future__ import annotations

from sqlmodel import select

from bot.core import grammar as g
from bot.core import rules as rules_core
from bot.core.errors import DoraError
from bot.core.inputs import IncidentInput, normalize_service, service_key
from bot.core.numbers import MAX_ID, parse_int
from bot.core.timeutil import MAX_DURATION, format_duration, parse_time
from bot.services import outbox
from bot.services.incidents import (
    acknowledge_incident,
    cancel_incident,
    declare_incident,
    link_cause,
    list_open_incidents,
    mitigate_incident,
    post_update,
    resolve_incident,
    roll_back_cause,
    timeline,
)
from bot.services.lookup import find_incident
from bot.services.reminders import snooze
from bot.slack import blocks as bk
from bot.slack.ids import Action, Block
from bot.slack.listeners.catalogue import ask_if_unknown
from bot.slack.listeners.common import FieldErrors, actor, messenger, reply, runtime, transaction
from bot.store import rules
from bot.store.db import session_scope
from bot.store.models import Deploy, Service

MAX_DURATION_MINUTES = int(MAX_DURATION.total_seconds() // 60)
DONE = {"ack": "acknowledged", "mitigate": "mitigated", "resolve": "resolved", "cancel": "cancelled", "update": "updated"}


def known_services(session) -> list[str]:
    return list(session.exec(select(Service.name).order_by(Service.name).limit(100)).all())


def recent_deploys(session, service: str, environments, limit: int = 25) -> list[Deploy]:
    """The service's latest successful production deploys: the candidates to suspect."""
    return list(
        session.exec(
            select(Deploy)
            .join(Service, Service.id == Deploy.service_id)
            .where(Service.key == service_key(service), rules.qualifying(environments))
            .order_by(Deploy.deployed_at.desc(), Deploy.id.desc())
            .limit(limit)
        ).all()
    )


# --- /incident -----------------------------------------------------------------------------

def incident_command(ack, command, respond, context) -> None:
    parsed = g.parse_incident_command(command.get("text") or "")  # a UsageError is the ack's answer
    ack()
    handle(context, parsed, command=command, respond=respond)


def handle(context, parsed, *, command: dict, respond, now=None, confirmed: bool = False) -> None:
    """``now``/``confirmed``: a declaration replayed from the catalogue's question."""
    rt = runtime(context)
    user, channel = command.get("user_id"), command.get("channel_id")
    now = now or rt.now()
    if isinstance(parsed, g.Help):
        reply(respond, *bk.help_message("/incident", g.INCIDENT_USAGE))
    elif isinstance(parsed, g.IncidentLifecycle):
        from bot.slack.listeners import lifecycle

        lifecycle.handle(context, parsed, command=command, respond=respond)
    elif isinstance(parsed, g.IncidentModal):
        with session_scope(rt.engine, write=False) as session:
            view = bk.declare_modal(services=known_services(session), channel=channel)
        messenger(context).open_view(command["trigger_id"], view)
    elif isinstance(parsed, g.IncidentDeclare):
        started = parse_time(parsed.started, now=now, tz=rt.settings.tz) if parsed.started else now
        if started > now:
            raise g.UsageError("`started=` is in the future", command="incident")
        data = IncidentInput(service=normalize_service(parsed.service), started_at=started, severity=parsed.severity, title=parsed.title)
        if not confirmed and ask_if_unknown(
            context, respond, command="incident", text=command.get("text") or "", service=data.service, channel=channel, now=now
        ):
            return  # nothing is stored until the user picks the service
        with transaction(context) as session:
            cause = parsed.cause
            if cause == g.LATEST:
                latest = recent_deploys(session, data.service, rt.settings.production_environments, limit=1)
                if not latest:
                    raise g.UsageError(f"`cause=latest`: `{data.service}` has no production deploy yet", command="incident")
                cause = f"D-{latest[0].id}"
            outcome = declare_incident(session, data=data, now=now, source="slack", actor=user)
            if cause:  # shown on the new card; no thread line before the card exists
                link_cause(session, ref=outcome.ref, deploy=cause, now=now, actor=user, announce=False)
            outbox.announce_incident(session, outcome.incident.id, now=now, default_alert_channel=rt.settings.alert_channel,
                                     declared_in=channel)
            note = ""
            linked = session.get(Deploy, outcome.incident.caused_by_id) if outcome.incident.caused_by_id else None
            if linked is not None and (late := rules_core.deployed_after_start(linked.deployed_at, started)) is not None:
                note = f" Note: D-{linked.id} was deployed {format_duration(late)} after the incident started; check the cause."
        reply(respond, f":rotating_light: Declared {outcome.ref}. The card with recovery buttons is in the channel.{note}")
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
        with transaction(context) as session:
            if parsed.verb == "ack":
                outcome = acknowledge_incident(session, ref=parsed.ref, now=now, actor=user)
            elif parsed.verb == "resolve":
                outcome = resolve_incident(session, ref=parsed.ref, now=now, actor=user, note=parsed.text)
            elif parsed.verb == "mitigate":
                outcome = mitigate_incident(session, ref=parsed.ref, now=now, actor=user, note=parsed.text)
            elif parsed.verb == "cancel":
                outcome = cancel_incident(session, ref=parsed.ref, reason=parsed.text, now=now, actor=user)
            elif parsed.verb == "update":
                outcome = post_update(session, ref=parsed.ref, text=parsed.text, now=now, actor=user)
            else:
                outcome = link_cause(session, ref=parsed.ref, deploy=parsed.deploy, now=now, actor=user)
        if not outcome.changed:
            reply(respond, outcome.message)
            return
        reply(respond, f"Done: {parsed.ref} {DONE.get(parsed.verb) or 'linked to ' + str(parsed.deploy)}.")


# --- the card's buttons ----------------------------------------------------------------------

def _incident_ref(body: dict) -> str:
    return "INC-" + body["actions"][0]["value"]


def _state_change(operation, ack, body, respond, context) -> None:
    ack()
    rt = runtime(context)
    now = rt.now()
    with transaction(context) as session:
        outcome = operation(session, ref=_incident_ref(body), now=now, actor=actor(body))
        if not outcome.changed:  # a double click, a retry or a stale card: show the current state
            outbox.refresh_card(session, "incident", outcome.incident.id, now=now)
    if not outcome.changed:
        reply(respond, outcome.message)


def acknowledge_pressed(ack, body, respond, context) -> None:
    _state_change(acknowledge_incident, ack, body, respond, context)


def resolve_pressed(ack, body, respond, context) -> None:
    _state_change(resolve_incident, ack, body, respond, context)


def rollback_pressed(ack, body, respond, context) -> None:
    _state_change(roll_back_cause, ack, body, respond, context)


def snooze_pressed(ack, body, respond, context) -> None:
    ack()
    rt = runtime(context)
    raw_id, _, raw_minutes = str(body["actions"][0].get("value") or "").partition(":")
    incident_id = parse_int(raw_id, field="incident", lo=1, hi=MAX_ID)  # the button's own value, checked all the same
    minutes = parse_int(raw_minutes, field="minutes", lo=1, hi=MAX_DURATION_MINUTES)
    with transaction(context) as session:
        incident = snooze(session, ref=f"INC-{incident_id}", minutes=minutes, now=rt.now(), actor=actor(body))
        resolved = incident.resolved_at is not None
    if resolved:
        reply(respond, f"INC-{incident_id} is already resolved; no more reminders.")
        return
    reply(respond, f":zzz: Reminders for INC-{incident_id} snoozed for {format_duration(minutes * 60)}.", public=True)


def update_pressed(ack, body, context) -> None:
    """Open the "post an update" form."""
    ack()
    rt = runtime(context)
    with session_scope(rt.engine, write=False) as session:
        incident = find_incident(session, _incident_ref(body))
        service = session.get(Service, incident.service_id).name
        view = bk.update_modal(incident, service)
    messenger(context).open_view(body["trigger_id"], view)


def service_picked(ack, body, context) -> None:
    """Reload the declare form with the picked service's recent deploys."""
    ack()
    rt = runtime(context)
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
            services=known_services(session), service=service,
            deploys=recent_deploys(session, service, rt.settings.production_environments),
            channel=view.get("private_metadata") or None, values=kept,
        )
    messenger(context).update_view(view["id"], new_view, hash=view.get("hash"))


# --- the forms ---------------------------------------------------------------------------------

def _value(values: dict, block: str, action: str = "value") -> str | None:
    element = values.get(block, {}).get(action) or {}
    if element.get("selected_option"):
        return element["selected_option"]["value"]
    return (element.get("value") or "").strip() or None


def normalize_or_none(name: str) -> str | None:
    try:
        return normalize_service(name)
    except DoraError:
        return None


def declare_submitted(ack, body, view, context) -> None:
    rt = runtime(context)
    values = view["state"]["values"]
    user = body["user"]["id"]
    now = rt.now()
    errors: dict[str, str] = {}
    title = _value(values, Block.TITLE)
    picked = _value(values, Block.SERVICE, Action.DECLARE_SERVICE) or _value(values, Block.SERVICE)
    typed = _value(values, Block.NEW_SERVICE)
    service = typed or picked
    severity = _value(values, Block.SEVERITY) or "sev2"
    started_text = _value(values, Block.STARTED)
    suspect = _value(values, Block.SUSPECT)
    started = now
    if not title:
        errors[Block.TITLE] = "Say what is happening."
    if picked and typed and normalize_or_none(typed) != picked:
        errors[Block.NEW_SERVICE] = "Pick a service or type one, not both."
    elif service is None:
        errors[Block.SERVICE] = "Pick the service (or type its name below)."
    else:
        try:
            service = normalize_service(service)
        except DoraError as exc:
            errors[Block.NEW_SERVICE if typed else Block.SERVICE] = exc.message
    if typed and suspect:
        suspect = None if normalize_or_none(typed) != picked else suspect  # the deploy list was the picked service's
    if started_text:
        try:
            started = parse_time(started_text, now=now, tz=rt.settings.tz)
            if started > now:
                errors[Block.STARTED] = "That is in the future."
        except DoraError as exc:
            errors[Block.STARTED] = exc.message
    if errors:
        raise FieldErrors(errors)
    with transaction(context) as session:
        outcome = declare_incident(
            session,
            data=IncidentInput(service=service, started_at=started, severity=severity, title=title),
            now=now, source="slack", actor=user, suspect=f"D-{suspect}" if suspect else None,
        )
        outbox.announce_incident(
            session, outcome.incident.id, now=now, default_alert_channel=rt.settings.alert_channel,
            declared_in=view.get("private_metadata") or None,
        )
    ack()


def update_submitted(ack, body, view, context) -> None:
    rt = runtime(context)
    text = _value(view["state"]["values"], Block.UPDATE_TEXT)
    if not text:
        raise FieldErrors({Block.UPDATE_TEXT: "Write the update first."})
    with transaction(context) as session:
        post_update(session, ref="INC-" + view["private_metadata"], text=text, now=rt.now(), actor=body["user"]["id"])
    ack()
