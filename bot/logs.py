"""Logging: text or one JSON object per line, with the request id, and secrets never written.

``configure(settings)`` is called once by the composition root. The request id comes from a
context variable set by the HTTP middleware (``X-Request-Id`` when the caller sends one).
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
from datetime import datetime, timezone

request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)

# Slack tokens, bearer tokens, webhook secrets in URLs or messages: replaced before any output.
_SECRET_PATTERNS = [
    re.compile(r"xox[abposr]-[A-Za-z0-9-]+"),
    re.compile(r"xapp-[A-Za-z0-9-]+"),
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+"),
    re.compile(r"(?i)(postgres(?:ql)?(?:\+\w+)?:?//[^:/@\s]+:)[^@\s]+(@)"),
    # A response_url is a capability: whoever has it may post as the bot into that conversation
    # for 30 minutes (https://docs.slack.dev/interactivity/handling-user-interaction#message_responses).
    # Slack's hosts, and the field wherever it appears (JSON, a form body, a repr), escaped or not.
    re.compile(r"(?i)(https?:(?:\\?/){2}hooks\.slack(?:-gov)?\.com(?:\\?/))[^\s\"'<>]+"),
    re.compile(r"(?i)(response_url[\"']?\s*(?:[:=]|%3D)\s*[\"']?)[^\s\"'&,}]+"),
    # Slack's (deprecated) verification token in a form or JSON body.
    re.compile(r"(?i)((?<![a-z_])token[\"']?\s*(?:[:=])\s*[\"']?)(?!\[redacted)[^\s\"'&,}]+"),
]


# Where none of these occurs, none of the patterns above can match: most lines (the access log)
# are checked with this one search instead of four substitutions.
_MAYBE_SECRET = re.compile(r"xox[abposr]-|xapp-|(?i:bearer\s|postgres|hooks\.slack|response_url|token)")


def redact(text: str, secrets: tuple[str, ...] = ()) -> str:
    for secret in secrets:
        if secret and len(secret) >= 6:
            text = text.replace(secret, "[redacted]")
    if _MAYBE_SECRET.search(text) is None:
        return text
    for pattern in _SECRET_PATTERNS:
        if pattern.groups == 2:
            text = pattern.sub(r"\1[redacted]\2", text)
        elif pattern.groups == 1:
            text = pattern.sub(r"\1[redacted]", text)
        else:
            text = pattern.sub("[redacted]", text)
    return text


# slack_sdk's webhook client only ever talks to response_urls (and incoming webhooks): every URL
# it logs (DEBUG "Sending a request - url: ...") is a capability, whatever its host.
_WEBHOOK_LOGGERS = ("slack_sdk.webhook", "slack_bolt.context.respond")
_ANY_URL = re.compile(r"(https?://[^/\s]+/)[^\s,'\"]+")


class RedactingFilter(logging.Filter):
    def __init__(self, secrets: tuple[str, ...]):
        super().__init__()
        self.secrets = secrets

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if record.name.startswith(_WEBHOOK_LOGGERS):
            message = _ANY_URL.sub(r"\1[redacted]", message)
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        record.msg = redact(message, self.secrets)
        record.args = ()
        if record.exc_text:
            record.exc_text = redact(record.exc_text, self.secrets)
        rid = request_id.get()
        record.request_id = redact(rid, self.secrets) if rid else rid
        return True


class JSONFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None),
        }
        if record.exc_text:
            entry["exception"] = record.exc_text
        return json.dumps(entry, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    def __init__(self):
        super().__init__("%(asctime)s %(levelname)s %(name)s%(rid)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        rid = getattr(record, "request_id", None)
        record.rid = f" [{rid}]" if rid else ""
        return super().format(record)


def configure(*, level: str = "INFO", fmt: str = "text", secrets: tuple[str, ...] = (), stream=None) -> logging.Handler:
    """Send every log record (ours, uvicorn's, Bolt's) through one redacting handler."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JSONFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(RedactingFilter(tuple(s for s in secrets if s)))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "apscheduler"):
        logger = logging.getLogger(name)
        logger.handlers = []
        logger.propagate = True
    if level != "DEBUG":
        for noisy in ("apscheduler", "alembic"):  # a line per job run / per schema check is noise
            logging.getLogger(noisy).setLevel(logging.WARNING)
    return handler
