"""The Slack calls a listener may make itself: the ones that cannot wait for the outbox.

Cards, thread lines, reminders and digests are never sent from a listener: they are queued in the
change's transaction and sent by the outbox worker (``bot.slack.delivery``). What is left here must
happen while the user waits: opening or updating a modal (its ``trigger_id`` expires after three
seconds, https://docs.slack.dev/interactivity/handling-user-interaction#modal_responses), App Home,
and looking up a channel typed as ``#name``. Listeners get their ``Messenger`` from Bolt's context,
so a test can hand them a fake one.
"""

from __future__ import annotations

from slack_sdk import WebClient


class Messenger:
    def __init__(self, client: WebClient):
        self.client = client

    def open_view(self, trigger_id: str, view: dict) -> None:
        self.client.views_open(trigger_id=trigger_id, view=view)

    def update_view(self, view_id: str, view: dict, *, hash: str | None = None) -> None:  # noqa: A002 - Slack's name
        self.client.views_update(view_id=view_id, hash=hash, view=view)

    def publish_home(self, user: str, view: dict) -> None:
        self.client.views_publish(user_id=user, view=view)

    def permalink(self, channel: str, ts: str) -> str | None:
        """A message's link (the "Add to incident timeline" shortcut keeps it with the entry)."""
        return self.client.chat_getPermalink(channel=channel, message_ts=ts).get("permalink")

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
