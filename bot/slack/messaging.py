"""Everything the listeners post or edit goes through here: written to the outbox, then sent.

``Messenger`` stores the message first (so a Slack outage delays it, never loses it) and then
tries to deliver that card's messages at once; whatever fails is retried by the outbox worker.
"""

from __future__ import annotations

import logging
from typing import Iterable

from slack_sdk import WebClient
from sqlmodel import select

from bot.runtime import Runtime
from bot.services import outbox
from bot.slack import blocks as bk
from bot.slack.delivery import OutboxSender
from bot.store.db import session_scope
from bot.store.models import Incident, IncidentEvent

log = logging.getLogger(__name__)


class Messenger:
    def __init__(self, client: WebClient, rt: Runtime):
        self.client = client
        self.engine = rt.engine
        self.clock = rt.now
        self.sender = OutboxSender(client, rt.engine, rt.now, production_environments=rt.settings.production_environments)

    def _enqueue(self, key: str, items: list[tuple[str, dict]]) -> None:
        with session_scope(self.engine) as session:
            for kind, payload in items:
                outbox.enqueue(session, kind=kind, key=key, payload=payload, now=self.clock())
        self.sender.deliver_due(key=key)

    def post_incident_card(self, incident_id: int, channels: Iterable[str | None]) -> None:
        """The incident card in each channel (once; a channel that has it gets it refreshed)."""
        items = [("card.post", {"object": "incident", "id": incident_id, "channel": c}) for c in dict.fromkeys(c for c in channels if c)]
        if items:
            self._enqueue(outbox.card_key("incident", incident_id), items)

    def refresh_incident(self, incident_id: int, *, thread_line: str | None = None, thread_blocks: list[dict] | None = None) -> None:
        """Edit every card of the incident in place and add ``thread_line`` under each."""
        items = [("card.refresh", {"object": "incident", "id": incident_id})]
        if thread_line:
            items.append(("thread.post", {"object": "incident", "id": incident_id, "text": thread_line, "blocks": thread_blocks}))
        self._enqueue(outbox.card_key("incident", incident_id), items)

    def thread_line_for_last_event(self, incident_id: int) -> str | None:
        with session_scope(self.engine, write=False) as session:
            event = session.exec(
                select(IncidentEvent).where(IncidentEvent.incident_id == incident_id).order_by(IncidentEvent.id.desc())
            ).first()
            incident = session.get(Incident, incident_id)
            return bk.timeline_line(event, restore_seconds=incident.restore_seconds) if event else None

    def post_deploy_card(self, deploy_id: int, channel: str) -> None:
        self._enqueue(outbox.card_key("deploy", deploy_id), [("card.post", {"object": "deploy", "id": deploy_id, "channel": channel})])

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
