"""App Home: the viewer's teams first, then the org's five keys, the viewer's services, open incidents."""

from __future__ import annotations

from sqlmodel import select

from bot.runtime import Runtime
from bot.services import gate, teams
from bot.services.incidents import list_open_incidents
from bot.services.lifecycle import led_by, open_followups
from bot.services.metrics import build_metrics
from bot.slack import blocks as bk
from bot.slack.ids import Action
from bot.slack.lifecycle_blocks import home_sections
from bot.slack.listeners.common import messenger, runtime, transaction
from bot.slack.usergroups import cache_of
from bot.store.db import session_scope
from bot.store.models import Deploy, Incident, Service, Team

MAX_TEAM_OPTIONS = 100  # a multi_static_select's options (https://docs.slack.dev/reference/block-kit/block-elements/multi-select-menus)


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
    groups = cache_of(rt).teams_of(user)  # the cache only: Slack is never called here
    with session_scope(rt.engine, write=False) as session:
        def report(service=None, team=None):
            return build_metrics(
                session, service=service, team=team, days=30, end=now, timezone_name=settings.timezone_name,
                production_environments=settings.production_environments,
            )

        mine_teams = [(t.name, svcs, report(team=t.name)) for t, svcs in teams.viewer_teams(session, user, groups)]
        all_teams = [(t.id, t.name) for t in session.exec(select(Team).order_by(Team.key).limit(MAX_TEAM_OPTIONS)).all()]
        picked = set(teams.picked_teams(session, user))
        mine = [(name, report(service=name)) for name in viewer_services(session, user)]
        freezes = gate.active_freezes(session, now=now, every=True)
        view = bk.home_view(report(), mine, list_open_incidents(session, limit=20), now=now, freezes=freezes)
        # The viewer's teams first, then the incidents they lead and their open follow-ups (bot.slack.lifecycle_blocks).
        first = team_blocks(mine_teams, all_teams, picked) + home_sections(
            led_by(session, user), open_followups(session, owner=user), now=now
        )
        view["blocks"] = (first + view["blocks"])[:bk.MAX_VIEW_BLOCKS]
        return view


def team_blocks(mine: list, all_teams: list[tuple[int, str]], picked: set[int]) -> list[dict]:
    """The viewer's teams (each a line of its five keys) and the picker of one's teams."""
    blocks: list[dict] = []
    if mine:
        blocks.append(bk.header("Your teams").to_dict())
        for name, services, report in mine:
            blocks.append(bk.md(f"*{bk.esc(name)}* ({', '.join(f'`{s}`' for s in services) or 'no services'})"
                                f"\n{bk.key_line(report)}").to_dict())
    if all_teams:
        options = [{"text": {"type": "plain_text", "text": bk.clip(name, 75)}, "value": str(tid)} for tid, name in all_teams]
        select_ = {"type": "multi_static_select", "action_id": Action.HOME_TEAMS.value,
                   "placeholder": {"type": "plain_text", "text": "Pick your teams"}, "options": options}
        initial = [o for o in options if int(o["value"]) in picked]
        if initial:
            select_["initial_options"] = initial
        blocks.append({"type": "section", "block_id": "home_teams", "text": {"type": "mrkdwn", "text": "Your teams are shown first."},
                       "accessory": select_})
    return blocks


def _publish(context, user: str) -> None:
    messenger(context).publish_home(user, home_view(runtime(context), user))


def home_opened(event, context, client) -> None:
    """Runs after Bolt acknowledged the event: the one place the user-group cache is refreshed."""
    if event.get("tab", "home") != "home":
        return
    rt = runtime(context)
    cache = cache_of(rt)
    if cache.stale():
        with session_scope(rt.engine, write=False) as session:
            keys = [t.key for t in session.exec(select(Team)).all()]
        if keys:
            cache.refresh(client, keys)
    _publish(context, event["user"])


def refresh_pressed(ack, body, context) -> None:
    ack()
    _publish(context, body["user"]["id"])


def teams_picked(ack, body, context) -> None:
    """The viewer picked their teams in App Home."""
    ack()
    user = body["user"]["id"]
    chosen = [o["value"] for o in body["actions"][0].get("selected_options") or [] if str(o.get("value", "")).isdigit()]
    with transaction(context) as session:
        teams.pick_teams(session, user=user, team_ids=chosen)
    _publish(context, user)
