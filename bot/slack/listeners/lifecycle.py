"""The incident lifecycle in Slack: ``/incident severity|lead|note|followup|followups|channel|postmortem``,
the card's **Mitigated**, **Cancel** (a reason form) and **I'm the lead** buttons, **Done** on a
follow-up, and the message shortcut **Add to incident timeline**.

Same shape as every listener: parse, ack, one transaction with the change and its outbox
messages, answer the person who asked.
"""

from __future__ import annotations

import json

from slack_sdk.errors import SlackApiError
from sqlmodel import select

from bot.core import grammar as g
from bot.core.errors import DoraError, ValidationError
from bot.core.inputs import is_link
from bot.core.numbers import is_digits
from bot.services.incidents import cancel_incident, list_open_incidents, mitigate_incident, set_severity
from bot.services.lifecycle import (
    add_followup,
    add_note,
    complete_followup,
    open_followups,
    request_channel,
    request_postmortem,
    set_lead,
)
from bot.services.lookup import find_incident
from bot.services.postmortem import gather, summary
from bot.slack import blocks as bk
from bot.slack import lifecycle_blocks as lb
from bot.slack.ids import Block
from bot.slack.listeners.common import FieldErrors, actor, messenger, reply, runtime, transaction
from bot.store.db import session_scope
from bot.store.models import Incident, Service


def _incident_ref(body: dict) -> str:
    return "INC-" + body["actions"][0]["value"]


# --- /incident <lifecycle verb> ----------------------------------------------------------------

def handle(context, parsed: g.IncidentLifecycle, *, command: dict, respond) -> None:
    rt = runtime(context)
    user = command.get("user_id")
    now = rt.now()
    verb = parsed.verb
    if verb == "followups":
        with session_scope(rt.engine, write=False) as session:
            rows = open_followups(session, owner=user if parsed.mine else None)
            reply(respond, *lb.followups_message(rows, mine=parsed.mine))
        return
    if verb == "postmortem":
        with transaction(context) as session:
            request_postmortem(session, ref=parsed.ref, now=now, actor=user)
            pm = gather(session, parsed.ref)
            text = bk.esc(summary(pm))  # outside text (a title from the API) can never ping anyone
            if pm.incident.lead:
                text = text.replace(f"lead @{pm.incident.lead}", f"lead <@{pm.incident.lead}>", 1)
        reply(respond, f":memo: The postmortem draft of {parsed.ref} is going to the card's thread as a Markdown file "
                       f"(also `GET /api/v1/incidents/{parsed.ref}/postmortem`).\n{text}")
        return
    with transaction(context) as session:
        if verb == "severity":
            outcome = set_severity(session, ref=parsed.ref, severity=parsed.severity, now=now, actor=user)
            done = f"{parsed.ref} is now {parsed.severity}."
        elif verb == "lead":
            lead = parsed.user or user
            outcome = set_lead(session, ref=parsed.ref, user=lead, now=now, actor=user)
            done = f"<@{lead}> now leads {parsed.ref}."
        elif verb == "note":
            outcome = add_note(session, ref=parsed.ref, text=parsed.text, now=now, actor=user)
            done = f"Added to the timeline of {parsed.ref}."
        elif verb == "followup":
            followup = add_followup(session, ref=parsed.ref, text=parsed.text, now=now, actor=user, owner=parsed.user)
            reply(respond, f":ballot_box_with_check: Follow-up F-{followup.id} recorded on {parsed.ref}"
                           + (f" for <@{followup.owner}>" if followup.owner else "") + ". `/incident followups` lists the open ones.")
            return
        else:  # channel
            outcome = request_channel(session, ref=parsed.ref, now=now, actor=user)
            done = f"Creating #{outcome.incident.channel_name} for {parsed.ref}; its link goes into the card's thread."
    reply(respond, done if outcome.changed else outcome.message)


# --- the card's buttons ------------------------------------------------------------------------

def mitigate_pressed(ack, body, respond, context) -> None:
    from bot.slack.listeners.incidents import _state_change

    _state_change(mitigate_incident, ack, body, respond, context)


def lead_pressed(ack, body, respond, context) -> None:
    """**I'm the lead**: the one who clicks leads, unless someone took it first."""
    ack()
    rt = runtime(context)
    now = rt.now()
    user = actor(body)
    with transaction(context) as session:
        outcome = set_lead(session, ref=_incident_ref(body), user=user, now=now, actor=user, only_if_none=True)
        if not outcome.changed:
            from bot.services import outbox

            outbox.refresh_card(session, "incident", outcome.incident.id, now=now)
    if not outcome.changed:
        reply(respond, outcome.message)


def cancel_pressed(ack, body, respond, context) -> None:
    """**Cancel** (after its confirm dialog): the reason form; on a stale card, the current state."""
    ack()
    rt = runtime(context)
    with session_scope(rt.engine, write=False) as session:
        incident = find_incident(session, _incident_ref(body))
        service = session.get(Service, incident.service_id).name
        state, iref = incident.state, f"INC-{incident.id}"
        view = lb.cancel_modal(incident, service)
    if state in ("resolved", "cancelled"):
        with transaction(context) as session:
            from bot.services import outbox

            outbox.refresh_card(session, "incident", incident.id, now=rt.now())
        reply(respond, f"{iref} is already {state}.")
        return
    messenger(context).open_view(body["trigger_id"], view)


def cancel_submitted(ack, body, view, context) -> None:
    rt = runtime(context)
    reason = ((view["state"]["values"].get(Block.CANCEL_REASON, {}).get("value") or {}).get("value") or "").strip()
    if not reason:
        raise FieldErrors({Block.CANCEL_REASON: "Say why it is cancelled."})
    try:
        with transaction(context) as session:
            cancel_incident(session, ref="INC-" + view["private_metadata"], reason=reason, now=rt.now(), actor=body["user"]["id"])
    except DoraError as exc:
        raise FieldErrors({Block.CANCEL_REASON: exc.message}) from None
    ack()


def followup_done_pressed(ack, body, respond, context) -> None:
    """**Done** on a follow-up, in the ``/incident followups`` list or on App Home."""
    ack()
    rt = runtime(context)
    user = actor(body)
    value = (body.get("actions") or [{}])[0].get("value")
    if not is_digits(value):  # only a forged request carries another value
        raise ValidationError("That button is not one of mine.", field="followup")
    followup_id = int(value)
    with transaction(context) as session:
        followup, changed = complete_followup(session, followup_id=followup_id, now=rt.now(), actor=user)
        label, who = f"F-{followup.id}", followup.done_by
    if (body.get("container") or {}).get("type") == "view":  # App Home: show it without the finished one
        from bot.slack.listeners.home import home_view

        messenger(context).publish_home(user, home_view(rt, user))
        return
    if not changed:
        reply(respond, f"{label} was already done" + (f" (by <@{who}>)." if who else "."))
        return
    with session_scope(rt.engine, write=False) as session:
        rows = open_followups(session)
        text, blocks = lb.followups_message(rows, mine=False)
    respond(text=f"{label} done. {text}", blocks=[bk.md(f":heavy_check_mark: {label} done.").to_dict(), *blocks][: bk.MAX_MESSAGE_BLOCKS],
            response_type="ephemeral", replace_original=True)


# --- the message shortcut ----------------------------------------------------------------------

def add_to_timeline(ack, shortcut, context) -> None:
    """**Add to incident timeline** on any message: pick the incident (its channel's pre-selected)."""
    ack()
    rt = runtime(context)
    channel = (shortcut.get("channel") or {}).get("id") or ""
    message = shortcut.get("message") or {}
    ts = message.get("ts") or shortcut.get("message_ts") or ""
    text = bk.clip(g.unescape_text(message.get("text") or "").strip(), 2000)  # the note's limit (bot.core.inputs.LIMITS)
    permalink = None
    try:
        permalink = messenger(context).permalink(channel, ts)
    except SlackApiError:  # a message the bot cannot see: added without its link
        permalink = None
    with session_scope(rt.engine, write=False) as session:
        rows = list_open_incidents(session, limit=100)
        selected = session.exec(select(Incident.id).where(Incident.channel_id == channel)).first() if channel else None
    if not rows:
        messenger(context).open_view(shortcut["trigger_id"], lb.no_incident_modal())
        return
    metadata = lb.timeline_metadata(channel, ts, text, permalink if is_link(permalink) else None)
    messenger(context).open_view(shortcut["trigger_id"], lb.timeline_modal(rows, selected=selected, text=text, metadata=metadata))


def timeline_submitted(ack, body, view, context) -> None:
    rt = runtime(context)
    picked = ((view["state"]["values"].get(Block.TIMELINE_INCIDENT, {}).get("value") or {}).get("selected_option") or {}).get("value")
    if not picked:
        raise FieldErrors({Block.TIMELINE_INCIDENT: "Pick the incident."})
    data = json.loads(view.get("private_metadata") or "{}")
    text = data.get("t") or "(a message with no text)"
    try:
        with transaction(context) as session:
            add_note(session, ref=f"INC-{picked}", text=text, now=rt.now(), actor=body["user"]["id"], url=data.get("p"))
    except DoraError as exc:
        raise FieldErrors({Block.TIMELINE_INCIDENT: exc.message}) from None
    ack()
