"""Settings from the environment (and a ``.env`` file, loaded by the entry point).

Nothing is read at import time: ``Settings.from_env()`` is called once by the composition root,
and tests build their own ``Settings``. A wrong value raises ``ConfigError`` naming the variable.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Mapping
from urllib.parse import urlparse
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.core.errors import ConfigError, ValidationError
from bot.core.numbers import parse_int
from bot.core.timeutil import parse_duration

DEFAULT_DATABASE_URL = "sqlite:///dora-bot.db"
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}
_ENV_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")


def _split(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())


@dataclass(frozen=True)
class Settings:
    database_url: str = DEFAULT_DATABASE_URL
    slack_bot_token: str | None = None
    slack_signing_secret: str | None = None
    slack_app_token: str | None = None
    slack_api_url: str = "https://slack.com/api/"
    host: str = "0.0.0.0"
    port: int = 3000
    timezone_name: str = "UTC"
    production_environments: tuple[str, ...] = ("production", "prod")
    alert_channel: str | None = None
    ingest_tokens: tuple[str, ...] = ()
    github_webhook_secret: str | None = None
    gitlab_webhook_token: str | None = None
    pagerduty_webhook_secret: str | None = None
    gate_severity: str = "sev1"
    run_scheduler: bool = True
    ack_reminder: timedelta = timedelta(minutes=15)
    update_reminder: timedelta = timedelta(hours=1)
    admins: tuple[str, ...] = ()
    log_level: str = "INFO"
    log_format: str = "text"
    # The incident lifecycle (README "Incident lifecycle"): dedicated channels from this severity
    # on ("none" | "sev1" | "sev2" | "all"), and the PagerDuty Events API v2 hand-off.
    incident_channels: str = "none"
    pagerduty_routing_key: str | None = None
    pagerduty_min_severity: str = "sev2"
    pagerduty_events_url: str = "https://events.pagerduty.com/v2/enqueue"

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone_name)

    @property
    def secrets(self) -> tuple[str, ...]:
        """Every configured secret, replaced by ``[redacted]`` in any log line (bot.logs): the
        Slack credentials, the ingest tokens, each webhook source's secret (bot.ingest.sources)
        and the PagerDuty routing key of the paging hand-off."""
        values = (
            self.slack_bot_token, self.slack_signing_secret, self.slack_app_token,
            self.github_webhook_secret, self.gitlab_webhook_token, self.pagerduty_webhook_secret,
            self.pagerduty_routing_key, *self.ingest_tokens,
        )
        return tuple(dict.fromkeys(v for v in values if v))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "Settings":
        """Read and check every variable of the product contract."""
        env = os.environ if environ is None else environ

        def get(name: str) -> str | None:
            value = env.get(name)
            return value.strip() if value is not None and value.strip() != "" else None

        kwargs: dict = {}
        if (url := get("DATABASE_URL")) is not None:
            kwargs["database_url"] = _check_database_url(url)
        for name, key in (
            ("SLACK_BOT_TOKEN", "slack_bot_token"),
            ("SLACK_SIGNING_SECRET", "slack_signing_secret"),
            ("SLACK_APP_TOKEN", "slack_app_token"),
            ("GITHUB_WEBHOOK_SECRET", "github_webhook_secret"),
            ("GITLAB_WEBHOOK_TOKEN", "gitlab_webhook_token"),
            ("PAGERDUTY_WEBHOOK_SECRET", "pagerduty_webhook_secret"),
            ("DORA_ALERT_CHANNEL", "alert_channel"),
            ("HOST", "host"),
        ):
            if (value := get(name)) is not None:
                kwargs[key] = value
        # Tokens are not checked for their prefix here: Slack says whether it accepts them
        # (`/readyz` asks auth.test), and commands that never talk to Slack must not fail on them.
        if (api := get("SLACK_API_URL")) is not None:
            parsed = urlparse(api)
            if parsed.scheme not in ("http", "https") or not parsed.netloc:
                raise ConfigError("SLACK_API_URL", f"`{api}` is not an http(s) URL")
            kwargs["slack_api_url"] = api if api.endswith("/") else api + "/"
        if (port := get("PORT")) is not None:
            try:
                kwargs["port"] = parse_int(port, field="PORT", lo=1, hi=65535)
            except ValidationError:
                raise ConfigError("PORT", f"`{port[:40]}` is not a port number (1-65535)") from None
        if (tz := get("DORA_TIMEZONE")) is not None:
            kwargs["timezone_name"] = _check_timezone(tz, "DORA_TIMEZONE")
        if (envs := get("DORA_PRODUCTION_ENVIRONMENTS")) is not None:
            names = tuple(dict.fromkeys(name.lower() for name in _split(envs)))
            bad = [name for name in names if not _ENV_NAME_RE.match(name)]
            if not names or bad:
                raise ConfigError(
                    "DORA_PRODUCTION_ENVIRONMENTS",
                    "must be a comma-separated list of environment names like production,prod",
                )
            kwargs["production_environments"] = names
        if (tokens := get("INGEST_TOKENS")) is not None:
            kwargs["ingest_tokens"] = _split(tokens)
        if (flag := get("RUN_SCHEDULER")) is not None:
            if flag.lower() in _TRUE:
                kwargs["run_scheduler"] = True
            elif flag.lower() in _FALSE:
                kwargs["run_scheduler"] = False
            else:
                raise ConfigError("RUN_SCHEDULER", f"`{flag}` is not true or false")
        for name, key in (("DORA_ACK_REMINDER", "ack_reminder"), ("DORA_UPDATE_REMINDER", "update_reminder")):
            if (value := get(name)) is not None:
                try:
                    kwargs[key] = parse_duration(value)
                except ValidationError as exc:
                    raise ConfigError(name, exc.message) from None
        if (gate := get("DORA_GATE_SEVERITY")) is not None:
            if gate.lower() not in ("sev1", "sev2", "sev3", "sev4"):
                raise ConfigError("DORA_GATE_SEVERITY", f"`{gate}` is not one of sev1, sev2, sev3, sev4")
            kwargs["gate_severity"] = gate.lower()
        if (admins := get("DORA_ADMINS")) is not None:
            kwargs["admins"] = _split(admins)
        if (level := get("LOG_LEVEL")) is not None:
            if level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
                raise ConfigError("LOG_LEVEL", f"`{level}` is not one of DEBUG, INFO, WARNING, ERROR, CRITICAL")
            kwargs["log_level"] = level.upper()
        if (fmt := get("LOG_FORMAT")) is not None:
            if fmt.lower() not in ("text", "json"):
                raise ConfigError("LOG_FORMAT", f"`{fmt}` is not text or json")
            kwargs["log_format"] = fmt.lower()
        if (channels := get("DORA_INCIDENT_CHANNELS")) is not None:
            if channels.lower() not in ("none", "sev1", "sev2", "all"):
                raise ConfigError("DORA_INCIDENT_CHANNELS", f"`{channels}` is not one of none, sev1, sev2, all")
            kwargs["incident_channels"] = channels.lower()
        if (key := get("PAGERDUTY_ROUTING_KEY")) is not None:
            kwargs["pagerduty_routing_key"] = key
        if (sev := get("PAGERDUTY_MIN_SEVERITY")) is not None:
            if sev.lower() not in ("sev1", "sev2", "sev3", "sev4"):
                raise ConfigError("PAGERDUTY_MIN_SEVERITY", f"`{sev}` is not one of sev1, sev2, sev3, sev4")
            kwargs["pagerduty_min_severity"] = sev.lower()
        if (events := get("PAGERDUTY_EVENTS_URL")) is not None:
            parsed = urlparse(events)
            if parsed.scheme not in ("http", "https") or not parsed.netloc:
                raise ConfigError("PAGERDUTY_EVENTS_URL", f"`{events}` is not an http(s) URL")
            kwargs["pagerduty_events_url"] = events
        return cls(**kwargs)


def _check_timezone(name: str, variable: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(variable, f"`{name}` is not an IANA time zone like Europe/Berlin") from None
    return name


def shown_url(url: str) -> str:
    """A database URL as it may be printed: the password, or whatever stands where it would, masked."""
    head, at, tail = url.rpartition("@")
    if not at:
        return url
    scheme, sep, userinfo = head.rpartition("//")
    user = userinfo.split(":", 1)[0] if ":" in userinfo else userinfo
    return f"{scheme}{sep}{user}:***@{tail}" if ":" in userinfo else f"{scheme}{sep}{user}@{tail}"


def _check_database_url(url: str) -> str:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
        port = parsed.port  # SQLAlchemy reads it with int(): a word there is a ValueError
    except ArgumentError:
        raise ConfigError("DATABASE_URL", f"`{shown_url(url)}` is not a database URL like sqlite:///dora-bot.db") from None
    except ValueError:
        raise ConfigError("DATABASE_URL", f"the port in `{shown_url(url)}` is not a number (1-65535)") from None
    if port is not None and not 0 < port < 65536:
        raise ConfigError("DATABASE_URL", f"the port in `{shown_url(url)}` is not a port number (1-65535)")
    backend = "postgresql" if parsed.get_backend_name() == "postgres" else parsed.get_backend_name()
    if backend not in ("sqlite", "postgresql"):
        raise ConfigError(
            "DATABASE_URL",
            f"`{backend}` is not supported: the metrics are computed in SQL written for SQLite and PostgreSQL"
            " (sqlite:///dora-bot.db or postgresql+psycopg://user:pass@host/db)",
        )
    if backend == "postgresql" and parsed.drivername != "postgresql+psycopg":
        # postgres:// and postgresql:// (what hosting providers hand out) mean the psycopg 3 driver
        # the `postgres` extra installs; SQLAlchemy would otherwise look for psycopg2.
        if parsed.drivername not in ("postgresql", "postgres"):
            raise ConfigError("DATABASE_URL", "use the psycopg driver: postgresql+psycopg://user:pass@host/db")
        return parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    return url
