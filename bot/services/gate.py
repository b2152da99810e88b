"""The deploy gate: may CI deploy this service now?

No while the service — or every service (``all``) — is frozen (``/deploy freeze``), or while the
service has an open incident, neither mitigated nor resolved, at or above ``DORA_GATE_SEVERITY``
in the environment asked about — for a production environment, in any production environment
(``bot.core.rules.blocks_gate``). A freeze holds in every
environment until it is lifted (``/deploy unfreeze``) or its ``until`` comes
(``rules.freeze_holds``). ``GET /api/v1/gate`` answers with the reasons; ``/deploy`` replies,
deploy cards and App Home show the freezes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from typing import Sequence

from sqlalchemy import and_, or_
from sqlmodel import Session, col, select

from bot.core.errors import ValidationError
from bot.core.inputs import check_text, normalize_environment, normalize_service, service_key
from bot.core.timeutil import UTC, isoformat_z, parse_duration, parse_instant
from bot.store import rules as store_rules
from bot.store.models import DeployFreeze, Incident, Service

ALL = "all"
freeze_t = DeployFreeze.__table__


@dataclass(frozen=True)
class Freeze:
    id: int
    service: str | None  # None: every service
    reason: str | None
    until: datetime | None
    created_by: str | None
    created_at: datetime

    @property
    def target(self) -> str:
        return self.service or ALL

    def sentence(self) -> str:
        """Plain text, for the gate's reasons (Slack renders its own, escaped)."""
        what = "every service is frozen" if self.service is None else f"{self.service} is frozen"
        when = f" until {isoformat_z(self.until)}" if self.until else " until unfrozen"
        why = f": {self.reason}" if self.reason else ""
        return f"{what}{when}{why}"

    def as_json(self) -> dict:
        return {"service": self.target, "reason": self.reason, "until": isoformat_z(self.until),
                "by": self.created_by, "since": isoformat_z(self.created_at)}


@dataclass
class GateAnswer:
    service: str
    environment: str
    freezes: list[Freeze] = field(default_factory=list)
    incidents: list[tuple[Incident, str]] = field(default_factory=list)

    @property
    def allowed(self) -> bool:
        return not self.freezes and not self.incidents

    @property
    def reasons(self) -> list[str]:
        out = [f.sentence() for f in self.freezes]
        out += [f"INC-{i.id} ({i.severity}) is open and not mitigated on {name}: {i.title}" for i, name in self.incidents]
        return out

    def as_json(self) -> dict:
        body: dict = {"allowed": self.allowed, "service": self.service, "environment": self.environment}
        if not self.allowed:
            body["reasons"] = self.reasons
            body["freezes"] = [f.as_json() for f in self.freezes]
            body["incidents"] = [{"ref": f"INC-{i.id}", "severity": i.severity, "title": i.title,
                                  "started_at": isoformat_z(i.started_at)} for i, _ in self.incidents]
        return body


def parse_until(text: str, *, now: datetime, tz: tzinfo = UTC) -> datetime:
    """``until=``: how long from now (``2h``, ``3d``) or an ISO-8601 time (read in ``tz``), in the future."""
    raw = text.strip()
    try:
        at = now + parse_duration(raw)
    except ValidationError:
        try:
            at = parse_instant(raw, tz=tz)
        except ValidationError:
            raise ValidationError(
                f"`until={text}` is not a time: use how long from now (2h, 3d) or ISO-8601 (2026-11-27T18:00)", field="until"
            ) from None
    if at <= now:
        raise ValidationError(f"`until={text}` is not in the future", field="until")
    return at


def _target(session: Session, target: str) -> Service | None:
    """``all`` (None) or a known service, by the catalogue's one normalisation."""
    name = normalize_service(target)
    if name.lower() == ALL:
        return None
    service = session.exec(select(Service).where(Service.key == service_key(name))).first()
    if service is None:
        known = session.exec(select(Service.name).order_by(Service.name).limit(20)).all()
        hint = f" Known services: {', '.join(known)}." if known else ""
        raise ValidationError(f"No service called `{name}` to freeze; name a known service or `all`.{hint}", field="service")
    return service


def _rows(session: Session, where) -> list[Freeze]:
    query = (
        select(DeployFreeze, Service.name)
        .join(Service, col(Service.id) == col(DeployFreeze.service_id), isouter=True)
        .where(where)
        .order_by(col(DeployFreeze.id))
    )
    return [Freeze(f.id, name, f.reason, f.until, f.created_by, f.created_at) for f, name in session.exec(query).all()]


def freeze(session: Session, *, target: str, until: datetime | None, reason: str | None, actor: str | None, now: datetime) -> Freeze:
    """Freeze a service or ``all``; a freeze of the same target that holds is replaced (its end and reason updated)."""
    service = _target(session, target)
    reason = check_text(reason, "reason")
    service_id = service.id if service else None
    same = col(DeployFreeze.service_id).is_(None) if service_id is None else DeployFreeze.service_id == service_id
    for row in session.exec(select(DeployFreeze).where(same, store_rules.freeze_holds(freeze_t, now))).all():
        row.lifted_at, row.lifted_by = now, actor
        session.add(row)
    row = DeployFreeze(service_id=service_id, reason=reason, until=until, created_by=actor, created_at=now)
    session.add(row)
    session.flush()
    return Freeze(row.id, service.name if service else None, reason, until, actor, now)


def unfreeze(session: Session, *, target: str, actor: str | None, now: datetime) -> list[Freeze]:
    """Lift the freezes of a service (or the freeze of ``all``) that hold; returns those lifted."""
    service = _target(session, target)
    same = freeze_t.c.service_id.is_(None) if service is None else freeze_t.c.service_id == service.id
    lifted = _rows(session, and_(same, store_rules.freeze_holds(freeze_t, now)))
    for f in lifted:
        row = session.get(DeployFreeze, f.id)
        row.lifted_at, row.lifted_by = now, actor
        session.add(row)
    return lifted


def active_freezes(session: Session, *, now: datetime, service_id: int | None = None, every: bool = False) -> list[Freeze]:
    """Freezes that hold now: all of them (``every``), or those that apply to one service (its own and ``all``)."""
    holds = store_rules.freeze_holds(freeze_t, now)
    if every:
        return _rows(session, holds)
    applies = (freeze_t.c.service_id.is_(None) if service_id is None
               else or_(freeze_t.c.service_id.is_(None), freeze_t.c.service_id == service_id))
    return _rows(session, and_(holds, applies))


def freezes_at(session: Session, *, service_id: int, at: datetime) -> list[Freeze]:
    """Freezes that held at ``at`` for that service (a deploy's card: deployed during a freeze)."""
    held = and_(
        freeze_t.c.created_at <= at,
        or_(freeze_t.c.lifted_at.is_(None), freeze_t.c.lifted_at > at),
        or_(freeze_t.c.until.is_(None), freeze_t.c.until > at),
        or_(freeze_t.c.service_id.is_(None), freeze_t.c.service_id == service_id),
    )
    return _rows(session, held)


def check(
    session: Session, *, service: str, environment: str | None, now: datetime, threshold: str,
    production_environments: Sequence[str] = ("production",),
) -> GateAnswer:
    """The gate's answer for a deploy of ``service`` to ``environment`` (default production).

    A production environment is closed by an incident in any production environment (``prod``
    and ``production`` are one production when both are in ``DORA_PRODUCTION_ENVIRONMENTS``);
    another environment only by its own incidents."""
    try:
        name = normalize_service(service)
    except ValidationError as exc:
        raise ValidationError(exc.message, field="service") from None
    env = normalize_environment(environment or None)
    envs = list(production_environments) if env in production_environments else [env]
    row = session.exec(select(Service).where(Service.key == service_key(name))).first()
    answer = GateAnswer(service=row.name if row else name, environment=env)
    answer.freezes = active_freezes(session, now=now, service_id=row.id if row else None)
    if row is not None:
        incidents = session.exec(
            select(Incident)
            .where(Incident.service_id == row.id, col(Incident.environment).in_(envs), store_rules.blocks_gate(threshold))
            .order_by(col(Incident.id))
        ).all()
        answer.incidents = [(i, row.name) for i in incidents]
    return answer
