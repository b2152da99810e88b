"""Delivering the outbox to Slack: render at send time, send exactly once, record, retry.

Only this module posts cards, thread lines, reminders and digests. ``OutboxSender.deliver_due()``
sends what is due; ``OutboxWorker`` runs it in a background thread, woken by every commit that
queued a message (``outbox.on_queued``) and polling for retries. Every replica may run a worker:
a message is claimed with a conditional update before it is sent, so only one sender takes it.

Exactly once. ``chat.postMessage`` has no idempotency key, so every post carries message metadata
naming its outbox id (https://docs.slack.dev/messaging/message-metadata: ``event_type`` and an
``event_payload`` object). A message claimed before (its earlier attempt timed out, lost its
connection, crashed or let its lease run out) may already be in Slack: before posting again, the
sender looks for its id in the channel's history (``conversations.history``, or
``conversations.replies`` for a thread line, with ``include_all_metadata``, from the message's
creation on) and records the message it finds instead. The chart upload cannot carry metadata; its
file name (one per digest and period) is looked for instead. The client used here does not retry
by itself: a retry it made inside one attempt could post twice without that check.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import urllib.error
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Callable

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from bot.services import gate, outbox
from bot.services.deploys import open_incidents_of
from bot.services.outbox import Kind
from bot.services.pagerduty import PagerDutyError
from bot.slack import blocks as bk
from bot.slack import replies
from bot.store import rules
from bot.store.db import session_scope
from bot.store.models import Deploy, DeployCommit, Incident, IncidentEvent, OutboxMessage, Service, SlackMessage

log = logging.getLogger(__name__)

# Errors that retrying cannot fix: the message is dropped (status "dead") and logged.
PERMANENT = {
    "invalid_blocks", "invalid_blocks_format", "invalid_arguments", "msg_too_long", "channel_not_found",
    "is_archived", "message_not_found", "cant_update_message", "no_text", "too_many_attachments",
    "invalid_metadata_format", "invalid_metadata_schema",
}
METADATA_EVENT = "dora_outbox_message"  # the metadata event_type of every message this app posts
HISTORY_PAGE = 200  # conversations.history/replies: "fewer than 1000" per page is recommended
HISTORY_PAGES = 10  # how far back a lost post is looked for (2,000 messages)
HISTORY_MARGIN = 600  # seconds before the message was queued (clocks of replicas and Slack differ)
PARALLEL_CARDS = 4  # cards delivered side by side (one card's messages stay in order)


def speak_up_handlers(sender: "OutboxSender") -> dict[str, Callable[[Attempt], None]]:
    """Watches and nudges (their own modules): what they post and edit."""
    from bot.slack import nudge_messages, watch_messages

    return {
        Kind.WATCH_POST: lambda a: watch_messages.send_watch(sender, a),
        Kind.NUDGE_POST: lambda a: nudge_messages.send_nudge(sender, a),
        Kind.NUDGE_UPDATE: lambda a: nudge_messages.update_nudge(sender, a),
    }


def metadata_for(message_id: int) -> dict:
    return {"event_type": METADATA_EVENT, "event_payload": {"outbox_id": message_id}}


def outbox_id_of(message: dict) -> int | None:
    metadata = message.get("metadata") or {}
    if metadata.get("event_type") != METADATA_EVENT:
        return None
    value = (metadata.get("event_payload") or {}).get("outbox_id")
    return value if isinstance(value, int) else None


@dataclass
class Attempt:
    """One try at one outbox message, and what it leaves to record with its "sent"."""

    message: OutboxMessage
    payload: dict
    cards: list[SlackMessage] = field(default_factory=list)
    follow_ups: list[tuple[Kind, dict]] = field(default_factory=list)

    @property
    def uncertain(self) -> bool:
        """Claimed before: an earlier try may have reached Slack without us hearing back."""
        return self.message.attempts > 1

    @property
    def oldest(self) -> str:
        """Slack's ``oldest`` for the history search: a little before the message was queued."""
        queued = min(self.message.created_at.timestamp(), time.time())
        return f"{queued - HISTORY_MARGIN:.6f}"


class OutboxSender:
    def __init__(self, client: WebClient, engine: Engine, clock: Callable[[], datetime], *, production_environments=("production", "prod"),
                 parallel: int = PARALLEL_CARDS, settings=None):
        self.client = client
        self.settings = settings  # PagerDuty's routing key and URL (bot.slack.lifecycle_delivery)
        self.engine = engine
        self.clock = clock
        self.production_environments = tuple(production_environments)
        self.sent = 0
        self._count = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="outbox-send") if parallel > 1 else None
        self.handlers: dict[str, Callable[[Attempt], None]] = {
            Kind.CARD_POST: self.send_card_post,
            Kind.CARD_REFRESH: self.send_card_refresh,
            Kind.THREAD_POST: self.send_thread_post,
            Kind.REMINDER_POST: self.send_reminder,
            Kind.DIGEST_POST: self.send_digest,
            Kind.DIGEST_CHART: self.send_chart,
            Kind.RESPONSE_POST: self.send_response,
            **speak_up_handlers(self),
        }
        from bot.slack import lifecycle_delivery

        lifecycle_delivery.register(self)  # channel.create, postmortem.post, pagerduty.event

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)

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
                    select(Deploy).where(rules.rollbacks_of(target.id, Deploy.__table__)).order_by(Deploy.id)
                ).first()
            return bk.incident_card(incident, service, now=self.clock(), cause=cause, suspect=suspect, rolled_back_by=rolled_back_by)

    def deploy_card(self, deploy_id: int) -> tuple[str, list[dict]]:
        with session_scope(self.engine, write=False) as session:
            deploy = session.get(Deploy, deploy_id)
            service = session.get(Service, deploy.service_id).name
            commits = len(session.exec(select(DeployCommit.id).where(DeployCommit.deploy_id == deploy_id)).all())
            rolled_back = session.get(Deploy, deploy.rollback_of_id) if deploy.rollback_of_id else None
            freezes = gate.freezes_at(session, service_id=deploy.service_id, at=deploy.deployed_at)
            return bk.deploy_card(deploy, service, commits=commits, open_incidents=open_incidents_of(session, deploy.service_id),
                                  rolled_back=rolled_back, freezes=freezes)

    def card(self, kind: str, object_id: int) -> tuple[str, list[dict]]:
        return self.incident_card(object_id) if kind == "incident" else self.deploy_card(object_id)

    def thread_line(self, payload: dict) -> tuple[str, list[dict] | None]:
        """The line of the event the message announces (never "the incident's latest event")."""
        if "event" not in payload:  # queued by a version that stored the rendered line
            return payload["text"], payload.get("blocks")
        with session_scope(self.engine, write=False) as session:
            event = session.get(IncidentEvent, payload["event"])
            incident = session.get(Incident, event.incident_id)
            return bk.timeline_line(event, restore_seconds=incident.restore_seconds), None

    def cards_of(self, kind: str, object_id: int) -> list[SlackMessage]:
        with session_scope(self.engine, write=False) as session:
            return list(session.exec(
                select(SlackMessage).where(SlackMessage.kind == kind, SlackMessage.object_id == object_id).order_by(SlackMessage.id)
            ).all())

    # --- sending, exactly once --------------------------------------------------------

    def _join_and_retry(self, call: Callable[[], dict], channel: str) -> dict:
        try:
            return call()
        except SlackApiError as exc:
            if exc.response.get("error") == "not_in_channel":
                self.client.conversations_join(channel=channel)
                return call()
            raise

    def _find_posted(self, attempt: Attempt, channel: str, thread_ts: str | None) -> dict | None:
        """The message an earlier try of ``attempt`` posted in ``channel`` (or that thread), if any."""
        cursor = None
        for _ in range(HISTORY_PAGES):
            args = dict(channel=channel, include_all_metadata=True, limit=HISTORY_PAGE, cursor=cursor)
            if thread_ts:  # a thread line: the thread's replies
                page = self._join_and_retry(lambda a=args: self.client.conversations_replies(ts=thread_ts, **a).data, channel)
            else:
                page = self._join_and_retry(lambda a=args: self.client.conversations_history(oldest=attempt.oldest, **a).data, channel)
            for message in page.get("messages") or []:
                if outbox_id_of(message) == attempt.message.id:
                    log.info("outbox %s was already posted in %s (ts %s): recorded, not posted again",
                             attempt.message.id, channel, message["ts"])
                    return {"channel": channel, "ts": message["ts"]}
            cursor = (page.get("response_metadata") or {}).get("next_cursor")
            if not cursor or not page.get("has_more", True):
                return None
        return None

    def post_once(self, attempt: Attempt, *, channel: str, thread_ts: str | None = None, **message) -> dict:
        """Post ``message`` unless an earlier try of this outbox message already did; ``{channel, ts}``."""
        if attempt.uncertain:
            try:
                found = self._find_posted(attempt, channel, thread_ts)
            except SlackApiError as exc:
                if exc.response.get("error") != "missing_scope":
                    raise
                # Installed before the history scopes were added (README): post rather than never.
                log.warning("outbox %s: cannot look for an earlier post in %s (missing_scope: reinstall the app "
                            "for channels:history/groups:history); posting it again", attempt.message.id, channel)
                found = None
            if found is not None:
                return found
        args = dict(channel=channel, metadata=metadata_for(attempt.message.id), unfurl_links=False, **message)
        if thread_ts:
            args["thread_ts"] = thread_ts
        resp = self._join_and_retry(lambda: self.client.chat_postMessage(**args).data, channel)
        return {"channel": resp["channel"], "ts": resp["ts"]}

    def send_card_post(self, attempt: Attempt) -> None:
        obj, object_id, channel = attempt.payload["object"], attempt.payload["id"], attempt.payload["channel"]
        text, blocks = self.card(obj, object_id)
        existing = [c for c in self.cards_of(obj, object_id) if c.channel == channel]
        if existing:
            self.client.chat_update(channel=channel, ts=existing[0].ts, text=text, blocks=blocks)
            return
        posted = self.post_once(attempt, channel=channel, text=text, blocks=blocks)
        attempt.cards.append(SlackMessage(kind=obj, object_id=object_id, channel=posted["channel"], ts=posted["ts"],
                                          created_at=self.clock()))

    def send_card_refresh(self, attempt: Attempt) -> None:
        text, blocks = self.card(attempt.payload["object"], attempt.payload["id"])
        for card in self.cards_of(attempt.payload["object"], attempt.payload["id"]):
            self.client.chat_update(channel=card.channel, ts=card.ts, text=text, blocks=blocks)

    def send_thread_post(self, attempt: Attempt) -> None:
        text, blocks = self.thread_line(attempt.payload)
        for card in self.cards_of(attempt.payload["object"], attempt.payload["id"]):
            self.post_once(attempt, channel=card.channel, thread_ts=card.ts, text=text, blocks=blocks)

    def send_reminder(self, attempt: Attempt) -> None:
        from bot.services.reminders import SNOOZE_CHOICES

        payload = attempt.payload
        with session_scope(self.engine, write=False) as session:
            incident = session.get(Incident, payload["incident"])
            if incident is None or incident.resolved_at is not None:
                return  # resolved since: reminders stop
            service = session.get(Service, incident.service_id).name
            text, blocks = bk.reminder_message(incident, service, payload["reminder"], now=self.clock(), snooze_choices=SNOOZE_CHOICES)
        for card in self.cards_of("incident", incident.id):
            self.post_once(attempt, channel=card.channel, thread_ts=card.ts, text=text, blocks=blocks)

    def _digest_data(self, payload: dict):
        """The digest's numbers, or None when its subscription was removed meanwhile."""
        from datetime import datetime

        from bot.core.errors import NotFound
        from bot.services.digests import digest_data, get_subscription, period_by_key, period_until

        with session_scope(self.engine, write=False) as session:
            try:
                sub = get_subscription(session, payload["subscription"])
            except NotFound:
                log.info("digest %s was removed before it was sent; dropping it", payload["subscription"])
                return None
            if payload.get("until"):  # `/dora digest send`: up to the moment it was asked for
                period = period_until(sub, datetime.fromisoformat(payload["until"]))
            else:
                period = period_by_key(sub, payload["period"])
            return digest_data(session, sub, period, production_environments=self.production_environments)

    def send_digest(self, attempt: Attempt) -> None:
        from bot.slack.digest import digest_message

        data = self._digest_data(attempt.payload)
        if data is None:
            return
        text, blocks = digest_message(data, now=self.clock())
        self.post_once(attempt, channel=attempt.payload["channel"], text=text, blocks=blocks)
        # The chart goes out as its own outbox message (same key, so after this one), queued in the
        # transaction that marks this one sent: a failed upload retries only the upload.
        attempt.follow_ups.append((Kind.DIGEST_CHART, attempt.payload))

    @staticmethod
    def chart_name(payload: dict, scope: str) -> str:
        if payload.get("until"):  # a manual send: its own file name, so two sends are told apart
            return f"dora-trend-{scope}-to-{payload['until'][:19].replace(':', '')}.png"
        return f"dora-trend-{scope}-{payload['period']}.png"

    def _find_uploaded(self, attempt: Attempt, channel: str, filename: str) -> bool:
        page = self._join_and_retry(
            lambda: self.client.conversations_history(channel=channel, oldest=attempt.oldest, limit=HISTORY_PAGE).data, channel
        )
        return any(f.get("name") == filename for m in page.get("messages") or [] for f in m.get("files") or [])

    def send_chart(self, attempt: Attempt) -> None:
        from bot.slack.digest import trend_chart_png

        payload = attempt.payload
        data = self._digest_data(payload)
        if data is None:
            return
        scope = data.subscription.service or "all-services"
        filename = self.chart_name(payload, scope)
        if attempt.uncertain and self._find_uploaded(attempt, payload["channel"], filename):
            log.info("outbox %s: the chart %s is already in %s", attempt.message.id, filename, payload["channel"])
            return
        self.client.files_upload_v2(
            channel=payload["channel"], file=trend_chart_png(data), filename=filename,
            title=f"DORA trend, {scope}, to {data.period.key}",
        )

    def send_response(self, attempt: Attempt) -> None:
        replies.send_queued(attempt.payload, now=self.clock())

    def send(self, message: OutboxMessage) -> Attempt:
        """Send one message; the attempt carries what to record with its "sent"."""
        attempt = Attempt(message, json.loads(message.payload))
        handler = self.handlers.get(message.kind)
        if handler is None:
            raise ValueError(f"unknown outbox message kind {message.kind!r}")
        handler(attempt)
        return attempt

    def _mark_sent(self, attempt: Attempt) -> None:
        """The message is sent, its new cards and follow-ups recorded, in one transaction."""
        with session_scope(self.engine) as session:
            for card in attempt.cards:
                try:
                    with session.begin_nested():
                        session.add(card)
                except IntegrityError:  # another sender recorded this card first: keep theirs
                    log.info("card %s:%s already recorded in %s", card.kind, card.object_id, card.channel)
            for kind, payload in attempt.follow_ups:
                outbox.enqueue(session, kind=kind, key=attempt.message.key, payload=payload, now=self.clock())
            outbox.mark_sent_in(session, attempt.message.id, now=self.clock())

    # --- the delivery pass ----------------------------------------------------------

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

        Messages go oldest first; different cards side by side, one card's messages one after the
        other. Only a full batch, a digest (it queues its chart) or a new channel (its card) can leave something due behind.
        """
        due = outbox.due_messages(self.engine, now=self.clock(), key=key, limit=limit)
        groups: OrderedDict[str, list[int]] = OrderedDict()
        for message_id, message_key in due:
            groups.setdefault(message_key, []).append(message_id)
        if self._pool is None or len(groups) <= 1:
            results = [self._deliver_group(ids) for ids in groups.values()]
        else:
            results = list(self._pool.map(self._deliver_group, groups.values()))
        sent = sum(n for n, _ in results)
        again = len(due) >= limit or any(more for _, more in results)
        with self._count:
            self.sent += sent
        return sent, again

    def _deliver_group(self, ids: list[int]) -> tuple[int, bool]:
        sent, again = 0, False
        for message_id in ids:
            message = outbox.claim(self.engine, message_id, now=self.clock())
            if message is None:
                continue
            again = again or message.kind in (Kind.DIGEST_POST, Kind.CHANNEL_CREATE)  # they queue follow-ups
            if self._deliver_one(message):
                sent += 1
        return sent, again

    def _deliver_one(self, message: OutboxMessage) -> bool:
        try:
            attempt = self.send(message)
        except SlackApiError as exc:
            error = exc.response.get("error") or f"HTTP {exc.response.status_code}"
            retry_after = None
            if exc.response.status_code == 429:
                retry_after = float(exc.response.headers.get("Retry-After", exc.response.headers.get("retry-after", 30)))
            status = outbox.mark_failed(self.engine, message.id, now=self.clock(), error=error, retry_after=retry_after,
                                        permanent=error in PERMANENT)
            log.warning("outbox %s (%s) failed: %s; now %s", message.id, message.kind, error, status)
        except replies.ResponseUrlError as exc:
            status = outbox.mark_failed(self.engine, message.id, now=self.clock(), error=exc.error, retry_after=exc.retry_after,
                                        permanent=exc.permanent)
            log.warning("outbox %s (a reply to a command) failed: %s; now %s", message.id, exc.error, status)
        except PagerDutyError as exc:
            status = outbox.mark_failed(self.engine, message.id, now=self.clock(), error=exc.error, retry_after=exc.retry_after,
                                        permanent=exc.permanent)
            log.warning("outbox %s (PagerDuty event) failed: %s; now %s", message.id, exc.error, status)
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError) as exc:
            status = outbox.mark_failed(self.engine, message.id, now=self.clock(), error=f"{exc.__class__.__name__}: {exc}")
            log.warning("outbox %s (%s): Slack unreachable or too slow (%s); now %s", message.id, message.kind, exc, status)
        except Exception as exc:  # a bug while rendering: keep the message, retry later, log loudly
            status = outbox.mark_failed(self.engine, message.id, now=self.clock(), error=f"{exc.__class__.__name__}: {exc}", fault=True)
            log.exception("outbox %s (%s) could not be sent; now %s", message.id, message.kind, status)
        else:
            self._mark_sent(attempt)
            return True
        return False


class OutboxWorker:
    """Runs ``deliver_due`` in a background thread: woken by every commit that queued a message.

    ``interval`` is only the poll for retries that come due (and for messages another replica
    queued); a new message is sent at once because its commit calls ``wake()``.
    """

    def __init__(self, sender: OutboxSender, *, interval: float = 1.0):
        self.sender = sender
        self.interval = interval
        self._stop = threading.Event()
        self._cond = threading.Condition()
        self._woken = False
        self._busy = False
        self._unsubscribe: Callable[[], None] | None = None
        self._thread = threading.Thread(target=self._run, name="outbox-worker", daemon=True)

    def start(self) -> "OutboxWorker":
        self._unsubscribe = outbox.on_queued(self.sender.engine, self.wake)
        self._thread.start()
        return self

    def wake(self) -> None:
        with self._cond:
            self._woken = True
            self._cond.notify_all()

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Wait until the worker has nothing in hand and no wake-up pending (tests, the shell)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while (self._busy or self._woken) and self._thread.is_alive():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(min(remaining, 0.1))
        return True

    def stop(self, timeout: float = 10) -> None:
        """Finish the batch in hand, then stop."""
        if self._unsubscribe is not None:
            self._unsubscribe()
        self._stop.set()
        self.wake()
        self._thread.join(timeout)
        self.sender.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            with self._cond:
                self._woken = False
                self._busy = True
            try:
                self.sender.deliver_due()
            except Exception:
                log.exception("outbox delivery round failed")
            with self._cond:
                self._busy = False
                self._cond.notify_all()
                if not self._woken and not self._stop.is_set():
                    self._cond.wait(self.interval)


def make_sender(rt, *, client: WebClient | None = None, parallel: int = PARALLEL_CARDS) -> OutboxSender:
    """The sender as ``serve`` runs it: its own client, which never retries by itself."""
    from bot.slack.client import make_web_client

    client = client or make_web_client(rt.settings, telemetry=rt.telemetry, outbox=True)
    return OutboxSender(client, rt.engine, rt.now, production_environments=rt.settings.production_environments, parallel=parallel,
                        settings=rt.settings)


def start_worker(rt, *, client: WebClient | None = None, interval: float = 1.0) -> OutboxWorker:
    return OutboxWorker(make_sender(rt, client=client), interval=interval).start()
