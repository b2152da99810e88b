"""Hygiene nudges: ask the one question that keeps change fail rate honest, and hint at commits.

* **Was this caused by a deploy?** When an incident is resolved with no cause (not marked "not
  caused by a deploy", not cancelled), its card's thread gets one message listing the service's
  last deploys before the incident started as buttons **Caused by D-n**, and **Not caused by a
  deploy**. The answer links the cause (the card is refreshed, the deploy becomes a change
  failure) or records ``not_caused_by_change`` (the incident then counts apart from the unlinked
  ones); the question is edited to show the answer and who gave it; a second click changes
  nothing.
* **Send commits**: a production deploy recorded with no commits gets one hint in its card's
  thread on how to send them (lead time needs them), at most once per service in any 7 days. The
  scheduler's ``nudges.commit_hints`` job looks for such deploys among those recorded in the last
  hour that have a card, whichever way they came in (Slack, the API, a webhook), and hints under
  the latest one of each service.

Each nudge is a ``nudge`` row with a unique key, written with its outbox message in the change's
transaction: it is posted once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Sequence

from sqlalchemy import Engine, String, cast, exists, func, literal
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from bot.core import rules
from bot.core.errors import NotFound, ValidationError
from bot.core.incident_events import EventKind
from bot.services import outbox
from bot.store import rules as store_rules
from bot.store.db import session_scope
from bot.store.models import Deploy, DeployCommit, Incident, IncidentEvent, Nudge, OutboxMessage, SlackMessage

CAUSE, COMMITS = "cause", "commits"
CAUSED_BY, NOT_CAUSED = "caused_by", "not_caused"
CANDIDATES = 5
HINT_EVERY = timedelta(days=7)
HINT_LOOKBACK = timedelta(hours=1)  # deploys recorded this recently are looked at by the job


def _has_card(session: Session, obj: str, object_id: int) -> bool:
    """The object has a card in Slack, or one waiting in the outbox (the nudge goes in its thread)."""
    posted = exists().where(SlackMessage.kind == obj, SlackMessage.object_id == object_id)
    queued = exists().where(
        OutboxMessage.key == outbox.card_key(obj, object_id), OutboxMessage.kind == outbox.Kind.CARD_POST,
        col(OutboxMessage.status) != outbox.Status.DEAD,
    )
    return bool(session.exec(select(posted | queued)).one())


def _record(session: Session, nudge: Nudge) -> Nudge | None:
    """Insert the nudge; None when its key was used already (it was posted before)."""
    try:
        with session.begin_nested():
            session.add(nudge)
            session.flush()
    except IntegrityError:
        return None
    return nudge


def candidate_deploys(
    session: Session, incident: Incident, *, production_environments: Sequence[str], limit: int = CANDIDATES
) -> list[Deploy]:
    """The service's latest qualifying deploys at or before the incident started, newest first."""
    return list(
        session.exec(
            select(Deploy)
            .where(store_rules.qualifying(production_environments, incident.service_id), Deploy.deployed_at <= incident.started_at)
            .order_by(col(Deploy.deployed_at).desc(), col(Deploy.id).desc())
            .limit(limit)
        ).all()
    )


def needs_cause(incident: Incident) -> bool:
    """Resolved with no known cause and no answer yet (a cancelled incident counts nowhere)."""
    return (
        incident.resolved_at is not None and incident.caused_by_id is None and not incident.not_caused_by_change
        and rules.counts(incident.status)
    )


def ask_for_cause(session: Session, incident: Incident, *, now: datetime) -> Nudge | None:
    """Queue the question under a just-resolved incident's card (once ever per incident)."""
    if not needs_cause(incident) or not _has_card(session, "incident", incident.id):
        return None
    nudge = _record(session, Nudge(key=f"{CAUSE}:{incident.id}", kind=CAUSE, service_id=incident.service_id, incident_id=incident.id,
                                   created_at=now))
    if nudge is not None:
        outbox.enqueue(session, kind=outbox.Kind.NUDGE_POST, key=outbox.card_key("incident", incident.id), payload={"nudge": nudge.id},
                       now=now)
    return nudge


@dataclass
class Answer:
    nudge: Nudge
    changed: bool
    message: str | None = None


def _locked_nudge(session: Session, nudge_id: int) -> Nudge:
    nudge = session.exec(select(Nudge).where(Nudge.id == nudge_id).with_for_update().execution_options(populate_existing=True)).first()
    if nudge is None or nudge.kind != CAUSE:
        raise NotFound("That question is no longer there.")
    return nudge


def answered_text(nudge: Nudge) -> str:
    what = f"caused by D-{nudge.answer_deploy_id}" if nudge.answer == CAUSED_BY else "not caused by a deploy"
    who = f"<@{nudge.answered_by}>" if nudge.answered_by else "someone"
    return f"{who} already answered: INC-{nudge.incident_id} was {what}."


def answer(session: Session, *, nudge_id: int, deploy_id: int | None, actor: str | None, now: datetime) -> Answer:
    """Record the answer to a cause question: ``deploy_id`` caused it, or (None) no deploy did.

    A second answer changes nothing and says who answered first.
    """
    from bot.services.incidents import link_cause

    nudge = _locked_nudge(session, nudge_id)
    if nudge.answer is not None:
        return Answer(nudge, changed=False, message=answered_text(nudge))
    incident = session.exec(
        select(Incident).where(Incident.id == nudge.incident_id).with_for_update().execution_options(populate_existing=True)
    ).one()
    if deploy_id is not None:
        link_cause(session, ref=f"INC-{incident.id}", deploy=f"D-{deploy_id}", now=now, actor=actor)  # records the answer
    else:
        if incident.caused_by_id is not None:
            raise ValidationError(
                f"INC-{incident.id} is linked to D-{incident.caused_by_id}; `/incident cause` changes the link",
                field="answer",
            )
        mark_not_caused(session, incident, now=now, actor=actor)
    session.refresh(nudge)
    return Answer(nudge, changed=True)


def record_answer(session: Session, incident: Incident, *, deploy_id: int | None, actor: str | None, now: datetime) -> None:
    """The incident's cause became known (a button, ``/incident cause``, the API): an open
    question under its card is edited to show the answer and who gave it."""
    nudge = session.exec(
        select(Nudge).where(Nudge.key == f"{CAUSE}:{incident.id}", col(Nudge.answer).is_(None)).with_for_update()
        .execution_options(populate_existing=True)
    ).first()
    if nudge is None:
        return
    nudge.answer = CAUSED_BY if deploy_id is not None else NOT_CAUSED
    nudge.answer_deploy_id, nudge.answered_by, nudge.answered_at = deploy_id, actor, now
    session.add(nudge)
    session.flush()
    outbox.enqueue(session, kind=outbox.Kind.NUDGE_UPDATE, key=outbox.card_key("incident", incident.id), payload={"nudge": nudge.id},
                   now=now)


def mark_not_caused(session: Session, incident: Incident, *, now: datetime, actor: str | None) -> None:
    """Record the incident as known-unlinked: counted in ``not_change_incidents``, not ``unlinked_incidents``."""
    incident.not_caused_by_change = True
    session.add(incident)
    event = IncidentEvent(incident_id=incident.id, at=now, kind=EventKind.NOT_CAUSED, actor=actor, text="not caused by a deploy")
    session.add(event)
    session.flush()
    outbox.incident_event(session, incident.id, event.id, now=now)
    record_answer(session, incident, deploy_id=None, actor=actor, now=now)


# --- commits --------------------------------------------------------------------------------

def hint_commits(session: Session, deploy: Deploy, *, now: datetime, production_environments: Sequence[str]) -> Nudge | None:
    """Queue the "send commits" hint under a production deploy's card that came with no commits,
    unless the service got one in the last 7 days."""
    if not rules.qualifies(deploy.status, deploy.environment, production_environments):
        return None
    if session.exec(select(func.count()).select_from(DeployCommit).where(DeployCommit.deploy_id == deploy.id)).one():
        return None
    recent = session.exec(
        select(Nudge.id).where(Nudge.kind == COMMITS, Nudge.service_id == deploy.service_id, Nudge.created_at > now - HINT_EVERY).limit(1)
    ).first()
    if recent is not None:
        return None
    year, week, _ = now.isocalendar()
    nudge = _record(
        session,
        Nudge(key=f"{COMMITS}:{deploy.service_id}:{year}-W{week:02d}", kind=COMMITS, service_id=deploy.service_id, deploy_id=deploy.id,
              created_at=now),
    )
    if nudge is not None:
        outbox.enqueue(session, kind=outbox.Kind.NUDGE_POST, key=outbox.card_key("deploy", deploy.id), payload={"nudge": nudge.id}, now=now)
    return nudge


def deploys_to_hint(session: Session, *, now: datetime, production_environments: Sequence[str]) -> list[Deploy]:
    """The latest qualifying deploy of each service recorded in the last hour with no commits and a
    card (posted or queued), for services not hinted in the last 7 days."""
    no_commits = ~exists().where(DeployCommit.deploy_id == Deploy.id)
    has_card = exists().where(SlackMessage.kind == "deploy", SlackMessage.object_id == Deploy.id) | exists().where(
        OutboxMessage.key == literal("deploy:") + cast(Deploy.id, String), OutboxMessage.kind == outbox.Kind.CARD_POST,
    )
    hinted = exists().where(Nudge.kind == COMMITS, Nudge.service_id == Deploy.service_id, Nudge.created_at > now - HINT_EVERY)
    rows = session.exec(
        select(Deploy)
        .where(store_rules.qualifying(production_environments), Deploy.created_at >= now - HINT_LOOKBACK, Deploy.created_at <= now,
               no_commits, has_card, ~hinted)
        .order_by(col(Deploy.created_at).desc(), col(Deploy.id).desc())
    ).all()
    latest: dict[int, Deploy] = {}
    for deploy in rows:
        latest.setdefault(deploy.service_id, deploy)
    return list(latest.values())


def send_commit_hints(engine: Engine, *, now: datetime, production_environments: Sequence[str]) -> int:
    """Queue the due commit hints (the scheduler's job); returns how many."""
    queued = 0
    with session_scope(engine) as session:
        for deploy in deploys_to_hint(session, now=now, production_environments=production_environments):
            if hint_commits(session, deploy, now=now, production_environments=production_environments) is not None:
                queued += 1
    return queued
