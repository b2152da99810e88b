"""What a number is about: one service, a team (the pooled events of its services) or the org.

One abstraction for every reader of the metrics (the SQL aggregates, ``/dora explain``, the
chart, the digest): each asks ``scope.condition(column)`` for the rows of its scope, so no query
is written once per kind of scope. A team's numbers pool the raw events of its services, as the
org roll-up pools every service's.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, false, select, true

from bot.core.inputs import service_key
from bot.store.models import Service, Team

ORG, SERVICE, TEAM = "org", "service", "team"


@dataclass(frozen=True)
class Scope:
    """``service_ids`` is None for the org (every service); a team with no service has ``()``."""

    kind: str = ORG
    name: str | None = None  # display name of the service or team
    service_ids: tuple[int, ...] | None = None

    @property
    def single(self) -> int | None:
        """The one service id when the scope is exactly one service (a team of one included)."""
        return self.service_ids[0] if self.service_ids is not None and len(self.service_ids) == 1 else None

    @property
    def empty(self) -> bool:
        return self.service_ids is not None and not self.service_ids

    def condition(self, column):
        """The rows of this scope, for a ``service_id`` column."""
        if self.service_ids is None:
            return true()
        if not self.service_ids:
            return false()
        if len(self.service_ids) == 1:
            return column == self.service_ids[0]
        return column.in_(self.service_ids)

    def label(self) -> str:
        """How a message names it: `checkout`, team `payments`, all services."""
        if self.kind == SERVICE:
            return f"`{self.name}`"
        if self.kind == TEAM:
            return f"team `{self.name}`"
        return "all services"


ORG_SCOPE = Scope()


def as_scope(value: "Scope | int | None") -> Scope:
    """Older callers pass a service id (or None for the org)."""
    if isinstance(value, Scope):
        return value
    if value is None:
        return ORG_SCOPE
    return Scope(kind=SERVICE, service_ids=(int(value),))


def service_scope(conn: Connection, name: str) -> Scope | None:
    """The scope of the service ``name`` means, or None when there is no such service."""
    row = conn.execute(select(Service.id, Service.name).where(Service.key == service_key(name))).first()
    return None if row is None else Scope(kind=SERVICE, name=row[1], service_ids=(row[0],))


def team_scope(conn: Connection, name: str) -> Scope | None:
    """The scope of the team ``name`` means (its services, in id order), or None."""
    rows = conn.execute(
        select(Team.name, Service.id)
        .select_from(Team)
        .outerjoin(Service, Service.team_id == Team.id)
        .where(Team.key == service_key(name))
        .order_by(Service.id)
    ).all()  # one statement: a row per service, or one with no service for a team without any
    if not rows:
        return None
    return Scope(kind=TEAM, name=rows[0][0], service_ids=tuple(sid for _, sid in rows if sid is not None))
