"""The PagerDuty Events API v2 hand-off (https://developer.pagerduty.com/docs/events-api-v2/trigger-events/).

An incident at or above ``PAGERDUTY_MIN_SEVERITY`` is queued as a ``trigger`` event and, when it is
resolved or cancelled, a ``resolve`` event, both with the dedup key ``dora-bot-INC-<n>``
(``bot.services.lifecycle.after_change`` queues them in the change's transaction). The outbox
worker sends them with ``send_event``: PagerDuty answers ``202`` when it accepted the event; ``429``
(too many events) and ``5xx`` are retried with backoff (the dedup key makes a repeat harmless);
any other ``4xx`` (an invalid event or routing key) is recorded as failed and logged, never
retried. The routing key is read from the settings when sending, never stored in the outbox.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request

from bot.core.numbers import is_digits
from bot.services.lifecycle import dedup_key
from bot.store.models import Incident

SUMMARY_MAX = 1024  # payload.summary: "maximum length of 1024 characters"
# dora-bot's severities in PagerDuty's four (payload.severity: critical, error, warning or info).
SEVERITY = {"sev1": "critical", "sev2": "error", "sev3": "warning", "sev4": "info"}
TIMEOUT = 10


class PagerDutyError(Exception):
    """An event PagerDuty did not accept: ``permanent`` when retrying cannot help (a 4xx)."""

    def __init__(self, error: str, *, permanent: bool, retry_after: float | None = None):
        super().__init__(error)
        self.error = error
        self.permanent = permanent
        self.retry_after = retry_after


def event_body(incident: Incident, service: str, action: str, routing_key: str) -> dict:
    body = {"routing_key": routing_key, "event_action": action, "dedup_key": dedup_key(incident.id)}
    if action == "trigger":
        summary = f"[{incident.severity.upper()}] INC-{incident.id} {service}: {incident.title}"
        body["payload"] = {
            "summary": summary[:SUMMARY_MAX],
            "source": f"dora-bot:{service}"[:255],
            "severity": SEVERITY.get(incident.severity, "error"),
            "timestamp": incident.started_at.isoformat(),
            "component": service,
            "custom_details": {"incident": f"INC-{incident.id}", "environment": incident.environment},
        }
    return body


def send_event(url: str, body: dict, *, timeout: float = TIMEOUT) -> None:
    """POST one event; raises ``PagerDutyError`` unless PagerDuty accepted it (2xx)."""
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), method="POST",
        headers={"Content-Type": "application/json", "User-Agent": "dora-bot"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:  # noqa: S310 - a configured http(s) URL
            resp.read()
    except urllib.error.HTTPError as exc:
        detail = exc.read(500).decode("utf-8", "replace") if exc.fp else ""
        retry_after = exc.headers.get("Retry-After") if exc.headers else None
        retryable = exc.code == 429 or exc.code >= 500
        raise PagerDutyError(
            f"PagerDuty answered HTTP {exc.code}: {detail.strip()[:300]}", permanent=not retryable,
            retry_after=float(retry_after) if is_digits(retry_after) else None,
        ) from None
