"""Posting and editing cards: the one place that talks to Slack's chat API.

Cards are recorded (``slack_message``) so every later state change edits the same message with
``chat.update`` and adds a line in its thread. The Web API client retries connection errors, 429
(honouring ``Retry-After``) and 5xx (see ``bot.slack.client``).
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Callable, Iterable

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from bot.slack import blocks as bk
from bot.store.db import session_scope
from bot.store.models import Deploy, DeployCommit, Incident, IncidentEvent, Service, SlackMessage
from bot.services.deploys import open_incidents_of

log = logging.getLogger(__name__)


def _call(client: WebClient, method: str, **kwargs):
    """Call the Web API; join a public channel once if the bot is not in it yet."""
    fn = getattr(client, method)
    try:
        return fn(**kwargs)
    except SlackApiError as exc:
        if exc.response.get("error") == "not_in_channel" and "channel" in kwargs:
            client.conversations_join(channel=kwargs["channel"])
            return fn(**kwargs)
        raise


class Messenger:
    def __init__(self, client: WebClient, engine: Engine, clock: Callable[[], datetime]):
        self.client = client
        self.engine = engine
        self.clock = clock

    # --- incident cards ---------------------------------------------------------------

    def _incident_view(self, session: Session, incident_id: int):
        incident = session.get(Incident, incident_id)
        service = session.get(Service, incident.service_id).name
        cause = session.get(Deploy, incident.caused_by_id) if incident.caused_by_id else None
        suspect = session.get(Deploy, incident.suspect_deploy_id) if incident.suspect_deploy_id else None
        target = cause or suspect
        rolled_back_by = None
        if target is not None:
            rolled_back_by = session.exec(
                select(Deploy).where(Deploy.rollback_of_id == target.id, Deploy.status == "success").order_by(Deploy.id)
            ).first()
        return bk.incident_card(
            incident, service, now=self.clock(), cause=cause, suspect=suspect, rolled_back_by=rolled_back_by
        )

    def post_incident_card(self, incident_id: int, channels: Iterable[str | None]) -> list[tuple[str, str]]:
        """Post the card to each channel once; a channel that already has it gets it refreshed."""
        posted = []
        for channel in dict.fromkeys(c for c in channels if c):
            with session_scope(self.engine) as session:
                existing = session.exec(
                    select(SlackMessage).where(SlackMessage.kind == "incident", SlackMessage.object_id == incident_id, SlackMessage.channel == channel)
                ).first()
                text, blocks = self._incident_view(session, incident_id)
            if existing is not None:
                _call(self.client, "chat_update", channel=channel, ts=existing.ts, text=text, blocks=blocks)
                continue
            resp = _call(self.client, "chat_postMessage", channel=channel, text=text, blocks=blocks, unfurl_links=False)
            channel_id, ts = resp["channel"], resp["ts"]
            try:
                with session_scope(self.engine) as session:
                    session.add(SlackMessage(kind="incident", object_id=incident_id, channel=channel_id, ts=ts, created_at=self.clock()))
            except IntegrityError:
                log.info("incident card %s already recorded in %s", incident_id, channel_id)
            posted.append((channel_id, ts))
        return posted

    def incident_cards(self, incident_id: int) -> list[SlackMessage]:
        with session_scope(self.engine, write=False) as session:
            return list(
                session.exec(select(SlackMessage).where(SlackMessage.kind == "incident", SlackMessage.object_id == incident_id)).all()
            )

    def refresh_incident(self, incident_id: int, *, thread_line: str | None = None) -> None:
        """Edit every card of the incident in place and add ``thread_line`` under each."""
        with session_scope(self.engine, write=False) as session:
            text, blocks = self._incident_view(session, incident_id)
        for card in self.incident_cards(incident_id):
            _call(self.client, "chat_update", channel=card.channel, ts=card.ts, text=text, blocks=blocks)
            if thread_line:
                _call(self.client, "chat_postMessage", channel=card.channel, thread_ts=card.ts, text=thread_line)

    def thread_line_for_last_event(self, incident_id: int) -> str | None:
        with session_scope(self.engine, write=False) as session:
            event = session.exec(
                select(IncidentEvent).where(IncidentEvent.incident_id == incident_id).order_by(IncidentEvent.id.desc())
            ).first()
            incident = session.get(Incident, incident_id)
            return bk.timeline_line(event, restore_seconds=incident.restore_seconds) if event else None

    # --- deploy cards -----------------------------------------------------------------

    def post_deploy_card(self, deploy_id: int, channel: str) -> None:
        with session_scope(self.engine, write=False) as session:
            deploy = session.get(Deploy, deploy_id)
            service = session.get(Service, deploy.service_id).name
            commits = len(session.exec(select(DeployCommit.id).where(DeployCommit.deploy_id == deploy_id)).all())
            rolled_back = session.get(Deploy, deploy.rollback_of_id) if deploy.rollback_of_id else None
            open_incidents = open_incidents_of(session, deploy.service_id)
            text, blocks = bk.deploy_card(deploy, service, commits=commits, open_incidents=open_incidents, rolled_back=rolled_back)
        resp = _call(self.client, "chat_postMessage", channel=channel, text=text, blocks=blocks, unfurl_links=False)
        with session_scope(self.engine) as session:
            session.add(SlackMessage(kind="deploy", object_id=deploy_id, channel=resp["channel"], ts=resp["ts"], created_at=self.clock()))

    # --- channels ---------------------------------------------------------------------

    def channel_id_for_name(self, name: str) -> str | None:
        """Find a channel id by name (``#ops`` typed without Slack's autocomplete)."""
        cursor = None
        for _ in range(50):
            resp = self.client.conversations_list(types="public_channel,private_channel", exclude_archived=True, limit=200, cursor=cursor)
            for ch in resp.get("channels", []):
                if ch.get("name") == name:
                    return ch["id"]
            cursor = (resp.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                return None
        return None
