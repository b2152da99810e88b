"""Teams: who owns which services (a service belongs to at most one team), and who is in a team.

A team's numbers pool the raw events of its services (``bot.store.scope``). Membership is what
App Home reads to show a viewer's teams first: a user who picked the team there, or a member of
the Slack user group whose handle or name matches the team (``bot.slack.usergroups``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Iterable

from sqlalchemy import delete, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from bot.core.errors import NotFound
from bot.core.inputs import normalize_service, normalize_team, service_key
from bot.services.catalogue import unknown_service
from bot.store.models import DigestSubscription, Service, Team, TeamMember


@dataclass
class TeamChange:
    team: Team
    services: list[str]  # display names, now the team's
    moved: dict[str, str] = field(default_factory=dict)  # service -> the team it left
    dropped: list[str] = field(default_factory=list)  # services the team no longer owns
    created: bool = False


def find_team(session: Session, name: str) -> Team:
    team = session.exec(select(Team).where(Team.key == service_key(normalize_team(name)))).first()
    if team is None:
        known = session.exec(select(Team.name).order_by(Team.name).limit(20)).all()
        hint = f" Teams: {', '.join(known)}." if known else " No team yet: `/dora team set <team> <service>,...` makes one."
        raise NotFound(f"No team called `{name}`.{hint}")
    return team


def get_or_create_team(session: Session, name: str, *, now: datetime) -> tuple[Team, bool]:
    """The team ``name`` means, created with that display name on first use; (team, created)."""
    name = normalize_team(name)
    key = service_key(name)
    team = session.exec(select(Team).where(Team.key == key)).first()
    if team is not None:
        return team, False
    try:
        with session.begin_nested():
            team = Team(name=name, key=key, created_at=now)
            session.add(team)
    except IntegrityError:  # created concurrently
        return session.exec(select(Team).where(Team.key == key)).one(), False
    return team, True


def team_names(session: Session) -> dict[int, str]:
    return dict(session.exec(select(Team.id, Team.name)).all())


def set_team(session: Session, *, team: str, services: Iterable[str], now: datetime) -> TeamChange:
    """Make ``services`` (known services) exactly the services of ``team`` (created if new)."""
    wanted: list[Service] = []
    for raw in services:
        name = normalize_service(raw)
        found = session.exec(select(Service).where(Service.key == service_key(name))).first()
        if found is None:
            raise unknown_service(session, name)
        if found not in wanted:
            wanted.append(found)
    row, created = get_or_create_team(session, team, now=now)
    session.flush()
    names = team_names(session)
    change = TeamChange(team=row, services=[s.name for s in wanted], created=created)
    for service in wanted:
        if service.team_id is not None and service.team_id != row.id:
            change.moved[service.name] = names.get(service.team_id, "?")
        service.team_id = row.id
        session.add(service)
    keep = [s.id for s in wanted]
    for service in session.exec(select(Service).where(Service.team_id == row.id, col(Service.id).not_in(keep))).all():
        change.dropped.append(service.name)
        service.team_id = None
        session.add(service)
    session.flush()
    return change


def assign_team(session: Session, service_id: int, team: str, *, now: datetime) -> bool:
    """The API's and import's ``"team"``: the service joins the team (created if new); True if it moved."""
    row, _ = get_or_create_team(session, team, now=now)
    session.flush()
    moved = session.execute(
        update(Service).where(Service.id == service_id, (Service.team_id.is_(None)) | (Service.team_id != row.id)).values(team_id=row.id)
    ).rowcount
    return bool(moved)


def list_teams(session: Session) -> list[tuple[Team, list[str]]]:
    teams = session.exec(select(Team).order_by(Team.key)).all()
    owned: dict[int, list[str]] = {}
    for team_id, name in session.exec(
        select(Service.team_id, Service.name).where(col(Service.team_id).is_not(None)).order_by(Service.key)
    ).all():
        owned.setdefault(team_id, []).append(name)
    return [(t, owned.get(t.id, [])) for t in teams]


def remove_team(session: Session, *, team: str) -> tuple[Team, list[str], list[int]]:
    """Delete a team: its services keep their history and belong to no team. Returns (team, its
    services, the digests that still name it: they report no data until the team exists again)."""
    row = find_team(session, team)
    services = list(session.exec(select(Service.name).where(Service.team_id == row.id).order_by(Service.key)).all())
    session.execute(update(Service).where(Service.team_id == row.id).values(team_id=None))
    session.execute(delete(TeamMember).where(TeamMember.team_id == row.id))
    digests = [
        d.id for d in session.exec(select(DigestSubscription).where(col(DigestSubscription.team).is_not(None))).all()
        if service_key(d.team) == row.key
    ]
    session.delete(row)
    session.flush()
    return row, services, digests


# --- members -------------------------------------------------------------------------------

def picked_teams(session: Session, user: str) -> list[int]:
    return list(session.exec(select(TeamMember.team_id).where(TeamMember.user == user)).all())


def pick_teams(session: Session, *, user: str, team_ids: Iterable[int]) -> list[str]:
    """The teams ``user`` picked in App Home (replacing the earlier pick); their names."""
    ids = {int(i) for i in team_ids}
    known = dict(session.exec(select(Team.id, Team.name).where(col(Team.id).in_(ids))).all()) if ids else {}
    session.execute(delete(TeamMember).where(TeamMember.user == user))
    for team_id in sorted(known):
        session.add(TeamMember(team_id=team_id, user=user))
    session.flush()
    return [known[i] for i in sorted(known)]


def viewer_teams(session: Session, user: str, usergroup_teams: Iterable[str] = ()) -> list[tuple[Team, list[str]]]:
    """The viewer's teams with their services: picked in App Home, or by a matching user group."""
    keys = {service_key(n) for n in usergroup_teams}
    picked = set(picked_teams(session, user))
    return [(t, svcs) for t, svcs in list_teams(session) if t.id in picked or t.key in keys]


def require_scope(session: Session, *, service: str | None = None, team: str | None = None):
    """The scope a person named (``/dora``, ``/dora explain``): an unknown service or team is an
    error that shows the closest names, not a card of n/a."""
    from bot.services.metrics import resolve_scope

    if team:
        find_team(session, team)
    elif service:
        from bot.services.catalogue import require

        require(session, service)
    return resolve_scope(session, service=service, team=team)
