"""Who the bot is in Slack, learnt once in the background, so no request waits for Slack.

Bolt's single-workspace authorization calls ``auth.test`` on the first request when it was not
called at start-up: with Slack unreachable right after a start, that first command failed with a
500 after the client's retries, before the listener could even ack. Here ``auth.test`` runs in a
background thread at start, retried with backoff until Slack answers; requests are authorized
from what it cached (``authorize``), or, before it answered, with the configured bot token alone
(the listeners need no bot ids). ``status()`` tells ``/readyz`` whether Slack was reached yet.
"""

from __future__ import annotations

import logging
import threading

from slack_bolt.authorization import AuthorizeResult
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

log = logging.getLogger(__name__)
FIRST_RETRY = 1.0
MAX_RETRY = 30.0


class SlackIdentity:
    def __init__(self, client: WebClient, *, token: str | None = None):
        self.client = client
        self.token = token or client.token
        self.result: dict | None = None
        self.problem: str | None = "not reached yet"
        self._stop = threading.Event()
        self._known = threading.Event()
        self._thread = threading.Thread(target=self._run, name="slack-auth-test", daemon=True)

    def start(self) -> "SlackIdentity":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def wait(self, timeout: float | None = None) -> bool:
        return self._known.wait(timeout)

    @property
    def known(self) -> bool:
        return self._known.is_set()

    def status(self) -> str:
        """``ok`` once Slack accepted the token, else what stands in the way."""
        return "ok" if self.known else self.problem or "not reached yet"

    def check_once(self) -> bool:
        try:
            resp = self.client.auth_test()
        except SlackApiError as exc:
            if exc.response.status_code >= 500 or exc.response.status_code == 429:  # Slack down or busy
                self.problem = f"not reachable yet: HTTP {exc.response.status_code}"
            else:
                self.problem = f"token not accepted: {exc.response.get('error') or exc.response.status_code}"
            return False
        except Exception as exc:  # unreachable, timed out
            self.problem = f"not reachable yet: {exc.__class__.__name__}"
            return False
        self.result = {k: resp.get(k) for k in ("team_id", "enterprise_id", "user_id", "bot_id")}
        self.problem = None
        self._known.set()
        return True

    def _run(self) -> None:
        delay = FIRST_RETRY
        while not self._stop.is_set():
            if self.check_once():
                log.info("connected to Slack as %s in %s", self.result.get("user_id"), self.result.get("team_id"))
                return
            log.warning("Slack auth.test: %s; retrying in %.0f s (commands are still taken)", self.problem, delay)
            self._stop.wait(delay)
            delay = min(delay * 2, MAX_RETRY)

    @property
    def authorize(self):
        """Bolt's ``authorize`` (a plain function: Bolt passes arguments by their names); no Slack call, ever."""

        def authorize(enterprise_id=None, team_id=None, user_id=None) -> AuthorizeResult:
            return self._authorize(enterprise_id, team_id, user_id)

        return authorize

    def _authorize(self, enterprise_id, team_id, user_id) -> AuthorizeResult:
        known = self.result or {}
        return AuthorizeResult(
            enterprise_id=known.get("enterprise_id") or enterprise_id,
            team_id=known.get("team_id") or team_id,
            bot_token=self.token,
            bot_id=known.get("bot_id"),
            bot_user_id=known.get("user_id"),
            user_id=user_id,
        )
