"""App Home: the org's five keys, the viewer's services, open incidents."""

from __future__ import annotations

from sqlmodel import select

from bot.runtime import Runtime
from bot.services import gate
from bot.services.incidents import list_open_incidents
from bot.services.lifecycle import led_by, open_followups
from bot.services.metrics import build_metrics
from bot.slack import blocks as bk
from bot.slack.lifecycle_blocks import home_sections
from bot.slack.listeners.common import messenger, runtime
from bot.store.db import session_scope
from bot.store.models import Deploy, Incident, Service


def viewer_services(session, user: str, limit: int = 5) -> list[str]:
    """Services the viewer deployed or declared incidents on, most recent first."""
    names: list[str] = []
    for model, who in ((Deploy, Deploy.created_by), (Incident, Incident.declared_by)):
        rows = session.exec(
            select(Service.name).join(model, model.service_id == Service.id).where(who == user).order_by(model.id.desc()).limit(50)
        ).all()
        for name in rows:
            if name not in names:
                names.append(name)
    return names[:limit]


def home_view(rt: Runtime, user: str) -> dict:
    now = rt.now()
    settings = rt.settings
    with session_scope(rt.engine, write=False) as session:
        def report(service):
            return build_metrics(session, service=service, days=30, end=now, timezone_name=settings.timezone_name, production_environments=settings.production_environments)

        mine = [(name, report(name)) for name in viewer_services(session, user)]
        freezes = gate.active_freezes(session, now=now, every=True)
        view = bk.home_view(report(None), mine, list_open_incidents(session, limit=20), now=now, freezes=freezes)
        # The incidents I lead and my open follow-ups, first (bot.slack.lifecycle_blocks).
        view["blocks"] = (home_sections(led_by(session, user), open_followups(session, owner=user), now=now) + view["blocks"])[:bk.MAX_VIEW_BLOCKS]
        return view


def home_opened(event, context) -> None:
    if event.get("tab", "home") != "home":
        return
    messenger(context).publish_home(event["user"], home_view(runtime(context), event["user"]))


def refresh_pressed(ack, body, context) -> None:
    ack()
    user = body["user"]["id"]
    messenger(context).publish_home(user, home_view(runtime(context), user))
