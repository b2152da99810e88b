"""The SQL form of the domain rules of ``bot.core.rules``, each defined once.

The metrics queries, the live write path, the bulk import and ``/dora explain`` build their
statements from these expressions, so "a qualifying deploy", "a counted incident", "a change
failure" and "rework" mean the same thing everywhere (``docs/metrics.md``).
"""

from __future__ import annotations

from typing import Sequence

from sqlalchemy import and_, exists, or_, true

from bot.core.rules import SUCCESS, severities_at_or_above
from bot.store.models import Deploy, Incident
from bot.store.scope import Scope, as_scope

deploy_t = Deploy.__table__
incident_t = Incident.__table__


def qualifying(environments: Sequence[str], service_id: Scope | int | None = None, table=deploy_t):
    """A qualifying deploy (status success, environment in the production set), optionally of a
    scope (a service id, or a ``Scope``: a service, a team's services)."""
    conds = [table.c.status == SUCCESS, table.c.environment.in_(list(environments))]
    if service_id is not None:
        conds.append(as_scope(service_id).condition(table.c.service_id))
    return and_(*conds)


def counted_incident(table=incident_t):
    """An incident that takes part in the metrics: every one but a cancelled one (``status`` is
    NULL for a live incident and ``cancelled`` otherwise; the model allows nothing else)."""
    return table.c.status.is_(None)


def incident_in_scope(environments: Sequence[str], service_id: Scope | int | None = None, table=incident_t):
    """A counted incident in a production environment, optionally of a scope (as ``qualifying``)."""
    conds = [table.c.environment.in_(list(environments)), counted_incident(table)]
    if service_id is not None:
        conds.append(as_scope(service_id).condition(table.c.service_id))
    return and_(*conds)


def incidents_caused_by(deploy_id_col, table=incident_t):
    """Counted incidents that name this deploy as their cause."""
    return and_(table.c.caused_by_id == deploy_id_col, counted_incident(table))


def rollbacks_of(deploy_id_col, table=None):
    """Successful deploys that roll back this deploy."""
    table = table if table is not None else deploy_t.alias("rollback")
    return and_(table.c.rollback_of_id == deploy_id_col, table.c.status == SUCCESS)


def change_failure_expr(table=deploy_t):
    """A change failure: marked failed, the cause of a counted incident, or rolled back."""
    rollback = deploy_t.alias("rollback")
    return or_(
        table.c.marked_failed == true(),
        exists().where(incidents_caused_by(table.c.id)),
        exists().where(rollbacks_of(table.c.id, rollback)),
    )


def in_window(column, start, end):
    """The half-open window ``[start, end)``."""
    return and_(column >= start, column < end)


def freeze_holds(table, now):
    """The SQL form of ``rules.freeze_holds``."""
    return and_(table.c.lifted_at.is_(None), or_(table.c.until.is_(None), table.c.until > now))


def blocks_gate(threshold: str, table=incident_t):
    """The SQL form of ``rules.blocks_gate``."""
    return and_(
        counted_incident(table), table.c.mitigated_at.is_(None), table.c.resolved_at.is_(None),
        table.c.severity.in_(list(severities_at_or_above(threshold))),
    )
