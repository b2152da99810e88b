"""Outbox handlers of the incident lifecycle: the dedicated channel, the postmortem file, PagerDuty.

Registered on the ``OutboxSender`` (``register``); each is safe to run again after a try that
failed half-way (exactly once, like every outbox message):

* ``channel.create``: ``conversations.create`` (``inc-<n>-<slug>``; on ``name_taken`` a channel this
  bot made for this incident is taken as ours, any other clash gets ``-2``, ``-3``...), the channel
  recorded on the incident at once (so a retry never creates a second one), the lead and the
  declarer invited (``already_in_channel`` is success), then, as follow-ups of the same card key,
  the link in the card's thread, the cards refreshed and the card itself in the new channel.
* ``postmortem.post``: the draft rendered when sent, uploaded into the first card's thread
  (``files.getUploadURLExternal`` + ``files.completeUploadExternal``, what ``files_upload_v2``
  calls); an earlier try's file is found by its name (one per outbox message) in the thread.
* ``pagerduty.event``: the Events API v2 event, the routing key read from the settings now.
"""

from __future__ import annotations

import logging

from slack_sdk.errors import SlackApiError
from sqlmodel import select

from bot.core.incident_events import EventKind
from bot.core.inputs import SLACK_USER_RE
from bot.services import lifecycle, pagerduty, postmortem
from bot.services.outbox import Kind
from bot.store.db import session_scope
from bot.store.models import Incident, IncidentEvent, Service

log = logging.getLogger(__name__)
MAX_SUFFIX = 20


def register(sender) -> None:
    sender.handlers[Kind.CHANNEL_CREATE] = lambda attempt: send_channel_create(sender, attempt)
    sender.handlers[Kind.POSTMORTEM_POST] = lambda attempt: send_postmortem(sender, attempt)
    sender.handlers[Kind.PAGERDUTY] = lambda attempt: send_pagerduty(sender, attempt)


# --- the dedicated channel -------------------------------------------------------------------

def _bot_user(sender) -> str | None:
    if getattr(sender, "_bot_user", None) is None:
        sender._bot_user = sender.client.auth_test().get("user_id")
    return sender._bot_user


def _find_channel(sender, name: str) -> dict | None:
    cursor = None
    for _ in range(50):
        resp = sender.client.conversations_list(types="public_channel", exclude_archived=True, limit=200, cursor=cursor)
        for channel in resp.get("channels") or []:
            if channel.get("name") == name:
                return channel
        cursor = (resp.get("response_metadata") or {}).get("next_cursor")
        if not cursor:
            return None
    return None


def _create(sender, incident_id: int, title: str) -> tuple[str, str]:
    """Create the channel (or find the one an earlier try created); ``(id, name)``."""
    for suffix in range(1, MAX_SUFFIX + 1):
        name = lifecycle.channel_name(incident_id, title, suffix=suffix)
        try:
            resp = sender.client.conversations_create(name=name, is_private=False)
            return resp["channel"]["id"], resp["channel"]["name"]
        except SlackApiError as exc:
            if exc.response.get("error") != "name_taken":
                raise
        existing = _find_channel(sender, name)
        if existing is not None and existing.get("creator") == _bot_user(sender):
            with session_scope(sender.engine, write=False) as session:
                other = session.exec(select(Incident.id).where(Incident.channel_id == existing["id"])).first()
            if other is None or other == incident_id:
                log.info("INC-%s: #%s was created by an earlier try; using it", incident_id, name)
                return existing["id"], name
        log.info("INC-%s: #%s is taken; trying another name", incident_id, name)
    raise SlackApiError(f"no free channel name for INC-{incident_id}", {"ok": False, "error": "name_taken"})


def _invite(sender, channel_id: str, users: list[str]) -> None:
    """Invite the lead and the declarer; someone already there is no error."""
    users = [u for u in users if u != _bot_user(sender)]
    if not users:
        return
    try:
        sender.client.conversations_invite(channel=channel_id, users=",".join(users))
    except SlackApiError as exc:
        if exc.response.get("error") not in ("already_in_channel", "cant_invite_self"):
            raise


def send_channel_create(sender, attempt) -> None:
    incident_id = attempt.payload["id"]
    with session_scope(sender.engine, write=False) as session:
        incident = session.get(Incident, incident_id)
        channel_id, title = incident.channel_id, incident.title
        users = [u for u in dict.fromkeys((incident.lead, incident.declared_by)) if u and SLACK_USER_RE.match(u)]
    if attempt.payload.get("invite_only"):  # a new lead of an incident that has its channel
        if channel_id is not None:
            _invite(sender, channel_id, users)
        return
    if channel_id is None:
        channel_id, name = _create(sender, incident_id, title)
        with session_scope(sender.engine) as session:  # recorded now: a retry from here on reuses it
            incident = session.get(Incident, incident_id, with_for_update=True)
            if incident.channel_id is None:
                incident.channel_id, incident.channel_name = channel_id, name
                session.add(incident)
                session.add(IncidentEvent(incident_id=incident_id, at=sender.clock(), kind=EventKind.CHANNEL, actor=None,
                                          text=f"<#{channel_id}>"))
            channel_id = incident.channel_id
    _invite(sender, channel_id, users)
    with session_scope(sender.engine, write=False) as session:
        event_id = session.exec(
            select(IncidentEvent.id).where(IncidentEvent.incident_id == incident_id, IncidentEvent.kind == EventKind.CHANNEL)
            .order_by(IncidentEvent.id.desc())
        ).first()
    if event_id is not None:  # the link under the cards there are now, then the card in the new channel
        attempt.follow_ups.append((Kind.THREAD_POST, {"object": "incident", "id": incident_id, "event": event_id}))
    attempt.follow_ups.append((Kind.CARD_REFRESH, {"object": "incident", "id": incident_id}))  # the cards show the channel
    attempt.follow_ups.append((Kind.CARD_POST, {"object": "incident", "id": incident_id, "channel": channel_id}))


# --- the postmortem file ---------------------------------------------------------------------

def postmortem_filename(incident_id: int, message_id: int) -> str:
    return f"INC-{incident_id}-postmortem-{message_id}.md"


def _already_uploaded(sender, channel: str, thread_ts: str, filename: str) -> bool:
    page = sender.client.conversations_replies(channel=channel, ts=thread_ts, limit=200).data
    return any(f.get("name") == filename for m in page.get("messages") or [] for f in m.get("files") or [])


def send_postmortem(sender, attempt) -> None:
    incident_id = attempt.payload["id"]
    with session_scope(sender.engine, write=False) as session:
        text = postmortem.markdown(session, f"INC-{incident_id}")
        title = session.get(Incident, incident_id).title
    cards = sender.cards_of("incident", incident_id)
    if not cards:
        log.warning("INC-%s has no card to put its postmortem draft under; GET /api/v1/incidents/INC-%s/postmortem has it",
                    incident_id, incident_id)
        return
    card = cards[0]
    filename = postmortem_filename(incident_id, attempt.message.id)
    if attempt.uncertain and _already_uploaded(sender, card.channel, card.ts, filename):
        log.info("outbox %s: %s is already in the thread", attempt.message.id, filename)
        return
    sender.client.files_upload_v2(
        channel=card.channel, thread_ts=card.ts, content=text, filename=filename,
        title=f"Postmortem draft: INC-{incident_id} {title}"[:250],
        initial_comment=f":memo: Postmortem draft for INC-{incident_id} (Markdown; edit it and share it).",
    )


# --- PagerDuty -------------------------------------------------------------------------------

def send_pagerduty(sender, attempt) -> None:
    settings = getattr(sender, "settings", None)
    key = getattr(settings, "pagerduty_routing_key", None)
    if not key:
        log.warning("outbox %s: PAGERDUTY_ROUTING_KEY is no longer set; the PagerDuty %s of INC-%s is dropped",
                    attempt.message.id, attempt.payload["action"], attempt.payload["id"])
        return
    with session_scope(sender.engine, write=False) as session:
        incident = session.get(Incident, attempt.payload["id"])
        service = session.get(Service, incident.service_id).name
        body = pagerduty.event_body(incident, service, attempt.payload["action"], key)
    pagerduty.send_event(settings.pagerduty_events_url, body)
