"""Settings changed from Slack at run time (stored, so every replica sees them)."""

from __future__ import annotations

from sqlmodel import Session

from bot.store.models import AppMeta

ALERT_CHANNEL = "slack.alert_channel"


def get_alert_channel(session: Session, *, default: str | None) -> str | None:
    row = session.get(AppMeta, ALERT_CHANNEL)
    return row.value if row is not None else default


def set_alert_channel(session: Session, channel_id: str) -> None:
    row = session.get(AppMeta, ALERT_CHANNEL) or AppMeta(key=ALERT_CHANNEL, value=channel_id)
    row.value = channel_id
    session.add(row)
