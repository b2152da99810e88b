"""The composition root: settings, engine and clock built once, handed to every adapter."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable

from sqlalchemy import Engine
from sqlalchemy.engine import make_url

from bot.config import Settings
from bot.core.errors import DoraError
from bot.store.db import make_engine, restore_sequences, schema_status, session_scope, upgrade
from bot.store.derived import ensure_production_set

log = logging.getLogger(__name__)


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


class SchemaOutOfDate(DoraError):
    """The database is behind the code; ``dora-bot db upgrade`` fixes it."""


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    clock: Callable[[], datetime] = field(default=utc_now)
    telemetry: Any = None  # bot.telemetry.Telemetry when serving
    # Whether Slack answered the start-up auth.test yet (set by the Slack adapter; for /readyz).
    slack_identity: Any = None
    # Slack user groups by team (bot.slack.usergroups.UsergroupCache), made on first use.
    usergroups: Any = None

    def now(self) -> datetime:
        return self.clock()

    def prepare(self, *, migrate: bool) -> None:
        """Bring the schema up to date (or insist it is) and the derived data in line with settings."""
        current, rev, head = schema_status(self.engine)
        if not current:
            if not migrate:
                where = f"at revision {rev}" if rev else "empty"
                raise SchemaOutOfDate(
                    f"The database schema is out of date ({where}, this version needs {head}). "
                    "Run `dora-bot db upgrade` first."
                )
            upgrade(self.engine)
        with session_scope(self.engine) as session:
            ensure_production_set(session.connection(), self.settings.production_environments)
        restore_sequences(self.engine)  # numbers a killed import drew are given back at start
        from bot.services import lifecycle

        lifecycle.install(self.engine, self.settings)  # DORA_INCIDENT_CHANNELS and PAGERDUTY_* apply to every change


def build_runtime(settings: Settings, *, clock: Callable[[], datetime] = utc_now) -> Runtime:
    return Runtime(settings=settings, engine=make_engine(settings.database_url), clock=clock)


def database_label(url: str) -> str:
    """The URL without its password, for messages."""
    return make_url(url).render_as_string(hide_password=True)
