"""Delivering the outbox to Slack: render at send time, send, record, retry.

``OutboxSender.deliver_due()`` sends what is due (optionally only one card's messages, which
listeners call right after enqueueing so users see their card at once). ``OutboxWorker`` runs it in
a background thread so anything that failed is retried with backoff — a Slack outage or a 429
delays messages, it never loses them. Every replica may run a worker: a message is claimed with a
conditional update before it is sent, so only one sender takes it.
"""

from __future__ import annotations

import json
import logging
import threading
import urllib.error
from datetime import datetime
from typing import Callable

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from bot.services import outbox
from bot.slack import blocks as bk
from bot.slack import replies
from bot.store.db import session_scope
from bot.store.models import Deploy, DeployCommit, Incident, OutboxMessage, Service, SlackMessage
from bot.services.deploys import open_incidents_of

log = logging.getLogger(__name__)

# Errors that retrying cannot fix: the message is dropped (status "dead") and logged.
PERMANENT = {
    "invalid_blocks", "invalid_blocks_format", "invalid_arguments", "msg_too_long", "channel_not_found",
    "is_archived", "message_not_found", "cant_update_message", "no_text", "too_many_attachments",
}


class OutboxSender:
    def __init__(self, client: WebClient, engine: Engine, clock: Callable[[], datetime], *, production_environments=("production", "prod")):
        self.client = client
        self.engine = engine
        self.clock = clock
        self.production_environments = tuple(production_environments)
        self.sent = 0

    # --- rendering --------------------------------------------------------------------

    def incident_card(self, incident_id: int) -> tuple[str, list[dict]]:
        with session_scope(self.engine, write=False) as session:
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
            return bk.incident_card(incident, service, now=self.clock(), cause=cause, suspect=suspect, rolled_back_by=rolled_back_by)

    def deploy_card(self, deploy_id: int) -> tuple[str, list[dict]]:
        with session_scope(self.engine, write=False) as session:
            deploy = session.get(Deploy, deploy_id)
            service = session.get(Service, deploy.service_id).name
            commits = len(session.exec(select(DeployCommit.id).where(DeployCommit.deploy_id == deploy_id)).all())
            rolled_back = session.get(Deploy, deploy.rollback_of_id) if deploy.rollback_of_id else None
            return bk.deploy_card(deploy, service, commits=commits, open_incidents=open_incidents_of(session, deploy.service_id), rolled_back=rolled_back)

    def card(self, kind: str, object_id: int) -> tuple[str, list[dict]]:
        return self.incident_card(object_id) if kind == "incident" else self.deploy_card(object_id)

    def cards_of(self, kind: str, object_id: int) -> list[SlackMessage]:
        with session_scope(self.engine, write=False) as session:
            return list(session.exec(select(SlackMessage).where(SlackMessage.kind == kind, SlackMessage.object_id == object_id).order_by(SlackMessage.id)).all())

    # --- sending ----------------------------------------------------------------------

    def _post(self, **kwargs) -> dict:
        try:
            return self.client.chat_postMessage(**kwargs).data
        except SlackApiError as exc:
            if exc.response.get("error") == "not_in_channel":
                self.client.conversations_join(channel=kwargs["channel"])
                return self.client.chat_postMessage(**kwargs).data
            raise

    def send(self, message: OutboxMessage) -> SlackMessage | None:
        """Send one message; a newly posted card comes back to be recorded with the message's "sent"."""
        payload = json.loads(message.payload)
        kind = message.kind
        if kind == "card.post":
            obj, object_id, channel = payload["object"], payload["id"], payload["channel"]
            text, blocks = self.card(obj, object_id)
            existing = [c for c in self.cards_of(obj, object_id) if c.channel == channel]
            if existing:
                self.client.chat_update(channel=channel, ts=existing[0].ts, text=text, blocks=blocks)
                return None
            resp = self._post(channel=channel, text=text, blocks=blocks, unfurl_links=False)
            return SlackMessage(kind=obj, object_id=object_id, channel=resp["channel"], ts=resp["ts"], created_at=self.clock())
        elif kind == "card.refresh":
            text, blocks = self.card(payload["object"], payload["id"])
            for card in self.cards_of(payload["object"], payload["id"]):
                self.client.chat_update(channel=card.channel, ts=card.ts, text=text, blocks=blocks)
        elif kind == "thread.post":
            for card in self.cards_of(payload["object"], payload["id"]):
                self._post(channel=card.channel, thread_ts=card.ts, text=payload["text"], blocks=payload.get("blocks"))
        elif kind == "message.post":
            self._post(channel=payload["channel"], text=payload["text"], blocks=payload.get("blocks"), unfurl_links=False)
        elif kind == "digest.post":
            self.send_digest(message, payload)
        elif kind == "digest.chart":
            self.send_chart(payload)
        elif kind == "reminder.post":
            self.send_reminder(payload)
        elif kind == "response.post":
            replies.send_queued(payload, now=self.clock())
        else:
            raise ValueError(f"unknown outbox message kind {kind!r}")
        return None

    def _mark_sent(self, message_id: int, card: SlackMessage | None) -> None:
        """The message is sent, and a new card is recorded, in one transaction."""
        if card is not None:
            try:
                with session_scope(self.engine) as session:
                    session.add(card)
                    outbox.mark_sent_in(session, message_id, now=self.clock())
                return
            except IntegrityError:  # another sender recorded this card first: keep theirs
                log.info("card %s:%s already recorded in %s", card.kind, card.object_id, card.channel)
        outbox.mark_sent(self.engine, message_id, now=self.clock())

    def _digest_data(self, payload: dict):
        """The digest's numbers, or None when its subscription was removed meanwhile."""
        from bot.core.errors import NotFound
        from bot.services.digests import digest_data, get_subscription, period_by_key

        with session_scope(self.engine, write=False) as session:
            try:
                sub = get_subscription(session, payload["subscription"])
            except NotFound:
                log.info("digest %s was removed before it was sent; dropping it", payload["subscription"])
                return None
            period = period_by_key(sub, payload["period"])
            return digest_data(session, sub, period, production_environments=self.production_environments)

    def send_digest(self, message: OutboxMessage, payload: dict) -> None:
        from bot.slack.digest import digest_message

        data = self._digest_data(payload)
        if data is None:
            return
        text, blocks = digest_message(data)
        self._post(channel=payload["channel"], text=text, blocks=blocks, unfurl_links=False)
        # The chart goes out as its own outbox message (same key, so after this one): if the
        # upload fails only the upload is retried, the digest text is not posted twice.
        with session_scope(self.engine) as session:
            outbox.enqueue(session, kind="digest.chart", key=message.key, payload=payload, now=self.clock())

    def send_chart(self, payload: dict) -> None:
        from bot.slack.digest import trend_chart_png

        data = self._digest_data(payload)
        if data is None:
            return
        scope = data.subscription.service or "all-services"
        self.client.files_upload_v2(
            channel=payload["channel"],
            file=trend_chart_png(data),
            filename=f"dora-trend-{scope}-{payload['period']}.png",
            title=f"DORA trend, {scope}, to {payload['period']}",
        )

    def send_reminder(self, payload: dict) -> None:
        from bot.services.reminders import SNOOZE_CHOICES

        with session_scope(self.engine, write=False) as session:
            incident = session.get(Incident, payload["incident"])
            if incident is None or incident.resolved_at is not None:
                return  # resolved since: reminders stop
            service = session.get(Service, incident.service_id).name
            text, blocks = bk.reminder_message(incident, service, payload["reminder"], now=self.clock(), snooze_choices=SNOOZE_CHOICES)
        for card in self.cards_of("incident", incident.id):
            self._post(channel=card.channel, thread_ts=card.ts, text=text, blocks=blocks)

    def deliver_due(self, *, key: str | None = None, limit: int = 50, passes: int = 5) -> int:
        """Send every due message (of one card, with ``key``); returns how many were sent.

        Sending can queue a follow-up (a digest queues its chart) or unblock the next message of
        a card, so it goes round again while the last pass made progress.
        """
        sent = 0
        for _ in range(passes):
            made, again = self._deliver_pass(key=key, limit=limit)
            sent += made
            if not made or not again:
                break
        return sent

    def _deliver_pass(self, *, key: str | None, limit: int) -> tuple[int, bool]:
        """Send what is due now; returns how many were sent and whether another pass may find more.

        Messages go oldest first, so one card's earlier message is sent before its next one is
        claimed in the same pass. Only a full batch, or a digest (it queues its chart), can leave
        something due behind.
        """
        sent = 0
        due = outbox.due_ids(self.engine, now=self.clock(), key=key, limit=limit)
        again = len(due) >= limit
        for message_id in due:
            message = outbox.claim(self.engine, message_id, now=self.clock())
            if message is None:
                continue
            again = again or message.kind == "digest.post"
            try:
                card = self.send(message)
            except SlackApiError as exc:
                error = exc.response.get("error") or f"HTTP {exc.response.status_code}"
                retry_after = None
                if exc.response.status_code == 429:
                    retry_after = float(exc.response.headers.get("Retry-After", exc.response.headers.get("retry-after", 30)))
                status = outbox.mark_failed(self.engine, message.id, now=self.clock(), error=error, retry_after=retry_after, permanent=error in PERMANENT)
                log.warning("outbox %s (%s) failed: %s; now %s", message.id, message.kind, error, status)
            except replies.ResponseUrlError as exc:
                status = outbox.mark_failed(self.engine, message.id, now=self.clock(), error=exc.error, retry_after=exc.retry_after, permanent=exc.permanent)
                log.warning("outbox %s (a reply to a command) failed: %s; now %s", message.id, exc.error, status)
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError) as exc:
                status = outbox.mark_failed(self.engine, message.id, now=self.clock(), error=f"{exc.__class__.__name__}: {exc}")
                log.warning("outbox %s (%s): Slack unreachable (%s); now %s", message.id, message.kind, exc, status)
            except Exception as exc:  # a bug while rendering: keep the message, retry later, log loudly
                status = outbox.mark_failed(self.engine, message.id, now=self.clock(), error=f"{exc.__class__.__name__}: {exc}", fault=True)
                log.exception("outbox %s (%s) could not be sent; now %s", message.id, message.kind, status)
            else:
                self._mark_sent(message.id, card)
                sent += 1
        self.sent += sent
        return sent, again


class OutboxWorker:
    """Runs ``deliver_due`` in a background thread; ``wake()`` makes it look at once."""

    def __init__(self, sender: OutboxSender, *, interval: float = 1.0):
        self.sender = sender
        self.interval = interval
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._run, name="outbox-worker", daemon=True)

    def start(self) -> "OutboxWorker":
        self._thread.start()
        return self

    def wake(self) -> None:
        self._wake.set()

    def stop(self, timeout: float = 10) -> None:
        """Finish the batch in hand, then stop."""
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.sender.deliver_due()
            except Exception:
                log.exception("outbox delivery round failed")
            self._wake.wait(self.interval)
            self._wake.clear()
