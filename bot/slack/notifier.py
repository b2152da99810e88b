"""Cards for incidents that arrive from outside Slack (ingest API, Alertmanager).

Subscribed to ``Runtime.publish``: the card is posted (or refreshed) in a background worker so an
API or webhook request never waits for Slack.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor

from slack_sdk import WebClient

from bot.runtime import Runtime
from bot.slack.listeners.incident_command import announce
from bot.slack.messaging import Messenger

log = logging.getLogger(__name__)


def subscribe(rt: Runtime, client: WebClient) -> ThreadPoolExecutor:
    """Post and refresh incident cards on ``incident.declared`` / ``incident.changed``."""
    executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="slack-notify")
    messenger = Messenger(client, rt)

    def deliver(event: str, incident_id: int) -> None:
        try:
            if event == "incident.declared":
                announce(rt, messenger, incident_id, declared_in=None)
            elif event == "incident.changed":
                messenger.refresh_incident(incident_id, thread_line=messenger.thread_line_for_last_event(incident_id))
        except Exception:
            log.exception("could not deliver %s for INC-%s to Slack", event, incident_id)

    rt.notifiers.append(lambda event, incident_id: executor.submit(deliver, event, incident_id))
    return executor
