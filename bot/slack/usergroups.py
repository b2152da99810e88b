"""Slack user groups named like a team: their members count as the team's for App Home.

A group matches a team when its handle or its name, under the one name normalisation
(``service_key``), is the team's key (``@payments`` or "Payments" for team ``payments``). Slack is
asked (``usergroups.list``, then ``usergroups.users.list`` for the groups that match a team,
https://docs.slack.dev/reference/methods/usergroups.list, scope ``usergroups:read``) at most once
per ``TTL``, only from App Home's event listener, which runs after Bolt has acknowledged the
event; every other read is served from the cache. A workspace that refuses (no scope, a free
plan without user groups) simply has no group members.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Iterable

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.core.inputs import service_key

log = logging.getLogger(__name__)
TTL = 600.0  # seconds


class UsergroupCache:
    def __init__(self, *, ttl: float = TTL, clock=time.monotonic) -> None:
        self.ttl = ttl
        self.clock = clock
        self.lock = threading.Lock()
        self.fetched_at: float | None = None
        self.members: dict[str, set[str]] = {}  # team key -> user ids of the matching groups

    def stale(self) -> bool:
        return self.fetched_at is None or self.clock() - self.fetched_at >= self.ttl

    def refresh(self, client: WebClient, team_keys: Iterable[str]) -> None:
        """Read the groups that match a team (one call, plus one per matching group)."""
        keys = set(team_keys)
        members: dict[str, set[str]] = {}
        try:
            for group in client.usergroups_list().get("usergroups") or []:
                key = next((k for k in (service_key(group.get("handle") or ""), service_key(group.get("name") or "")) if k in keys), None)
                if key is None or not group.get("id"):
                    continue
                users = client.usergroups_users_list(usergroup=group["id"]).get("users") or []
                members.setdefault(key, set()).update(u for u in users if isinstance(u, str))
        except SlackApiError as exc:
            log.info("Slack user groups unavailable (%s): teams come from App Home picks only", exc.response.get("error"))
        with self.lock:
            self.members = members
            self.fetched_at = self.clock()

    def teams_of(self, user: str) -> list[str]:
        """Keys of the teams whose user group has ``user`` (from the cache)."""
        with self.lock:
            return sorted(k for k, users in self.members.items() if user in users)


def cache_of(rt) -> UsergroupCache:
    if rt.usergroups is None:
        rt.usergroups = UsergroupCache()
    return rt.usergroups
