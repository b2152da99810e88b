"""The nudges in Slack: the "caused by a deploy?" question with its buttons, its answered form, and
the hint to send commits; and their delivery from the outbox (``nudge.post``, ``nudge.update``).

A nudge goes in the thread of its object's first card (the alert channel's, for an incident
declared elsewhere too): one message, edited in place once it is answered (its ``ts`` is kept as a
``slack_message`` row of kind ``nudge``).
"""

from __future__ import annotations

import logging
from typing import Sequence

from slack_sdk.models.blocks import ActionsBlock
from sqlmodel import select

from bot.services import nudges
from bot.slack import blocks as bk
from bot.slack.ids import Action
from bot.store.db import session_scope
from bot.store.models import Deploy, Incident, Nudge, Service, SlackMessage

log = logging.getLogger(__name__)
NUDGE_CARD = "nudge"
INGEST_DOCS = "docs/ingest.md"


def cause_question(nudge: Nudge, incident: Incident, service: str, deploys: Sequence[Deploy]) -> tuple[str, list[dict]]:
    text = f"INC-{incident.id} was resolved with no known cause. Was it caused by a deploy?"
    head = (
        f":mag: *INC-{incident.id} was resolved with no known cause.* Was it caused by a deploy of `{bk.esc(service)}`?"
        " Your answer keeps change fail rate honest."
    )
    blocks = [bk.md(head)]
    if deploys:
        lines = [f"• *D-{d.id}* {bk.esc(bk.clip(d.version, 60))} · {bk.ts(d.deployed_at)}" for d in deploys]
        blocks.append(bk.md("Its last production deploys before the incident started:\n" + "\n".join(lines)))
    else:
        blocks.append(bk.md(f"No production deploy of `{bk.esc(service)}` before the incident started is recorded."))
    buttons = [bk.button(f"Caused by D-{d.id}", f"{Action.NUDGE_CAUSE}_{d.id}", f"{nudge.id}:{d.id}") for d in deploys]
    buttons.append(bk.button("Not caused by a deploy", Action.NUDGE_NOT_CAUSED, str(nudge.id)))
    blocks.append(ActionsBlock(block_id=f"nudge_{nudge.id}", elements=buttons))
    return text, bk.dicts(blocks)


def cause_answered(nudge: Nudge, incident: Incident, answer_deploy: Deploy | None) -> tuple[str, list[dict]]:
    if nudge.answer == nudges.CAUSED_BY:
        version = f" ({bk.esc(bk.clip(answer_deploy.version, 60))})" if answer_deploy is not None else ""
        what = f"caused by *D-{nudge.answer_deploy_id}*{version}: it counts as a change failure"
    else:
        what = "*not caused by a deploy*: it counts apart from the incidents with no known cause"
    line = f":white_check_mark: INC-{incident.id} was {what}. Answered by {bk.who(nudge.answered_by)}"
    if nudge.answered_at is not None:
        line += f" {bk.ts(nudge.answered_at)}"
    text = f"INC-{incident.id}: " + (
        "caused by D-" + str(nudge.answer_deploy_id) if nudge.answer == nudges.CAUSED_BY else "not caused by a deploy"
    )
    return text, bk.dicts([bk.md(line + ".")])


def commits_hint(deploy: Deploy, service: str) -> tuple[str, list[dict]]:
    name = bk.esc(service)
    text = f"D-{deploy.id} was recorded with no commits: change lead time has nothing to measure for {name}."
    body = (
        f":bulb: *D-{deploy.id} was recorded with no commits*, so change lead time has nothing to measure for `{name}`."
        " Send the commits with each deploy:\n"
        f"• from Slack: `/deploy {name} &lt;version&gt; commit=&lt;sha&gt; committed=&lt;time&gt;`\n"
        "• from CI: `\"commits\": [{\"sha\": ..., \"committed_at\": ...}]` in `POST /api/v1/deploys`"
        f" (`{INGEST_DOCS}`, _Report a deploy from GitHub Actions_), or the GitHub webhook, which finds them itself"
    )
    return text, bk.dicts([bk.md(body), bk.context(f"Shown at most once a week for `{name}`.")])


# --- delivery -------------------------------------------------------------------------------

def _render(session, nudge: Nudge, environments: Sequence[str]) -> tuple[str, int, tuple[str, list[dict]]]:
    """(card kind, thread object id, the message) for a nudge as it stands now."""
    service = session.get(Service, nudge.service_id).name
    if nudge.kind == nudges.COMMITS:
        deploy = session.get(Deploy, nudge.deploy_id)
        return "deploy", nudge.deploy_id, commits_hint(deploy, service)
    incident = session.get(Incident, nudge.incident_id)
    if nudge.answer is not None:
        answer_deploy = session.get(Deploy, nudge.answer_deploy_id) if nudge.answer_deploy_id else None
        return "incident", incident.id, cause_answered(nudge, incident, answer_deploy)
    deploys = nudges.candidate_deploys(session, incident, production_environments=environments)
    return "incident", incident.id, cause_question(nudge, incident, service, deploys)


def send_nudge(sender, attempt) -> None:
    with session_scope(sender.engine, write=False) as session:
        nudge = session.get(Nudge, attempt.payload["nudge"])
        if nudge is None:
            return
        kind, object_id, (text, blocks) = _render(session, nudge, sender.production_environments)
        cards = list(session.exec(
            select(SlackMessage).where(SlackMessage.kind == kind, SlackMessage.object_id == object_id).order_by(SlackMessage.id)
        ).all())
        posted = session.exec(select(SlackMessage).where(SlackMessage.kind == NUDGE_CARD, SlackMessage.object_id == nudge.id)).first()
    if posted is not None or not cards:
        return  # already in Slack (recorded), or the card never made it there
    card = cards[0]
    found = sender.post_once(attempt, channel=card.channel, thread_ts=card.ts, text=text, blocks=blocks)
    attempt.cards.append(SlackMessage(kind=NUDGE_CARD, object_id=nudge.id, channel=found["channel"], ts=found["ts"],
                                      created_at=sender.clock()))


def update_nudge(sender, attempt) -> None:
    with session_scope(sender.engine, write=False) as session:
        nudge = session.get(Nudge, attempt.payload["nudge"])
        if nudge is None:
            return
        _, _, (text, blocks) = _render(session, nudge, sender.production_environments)
        posted = session.exec(select(SlackMessage).where(SlackMessage.kind == NUDGE_CARD, SlackMessage.object_id == nudge.id)).first()
    if posted is None:
        return
    sender.client.chat_update(channel=posted.channel, ts=posted.ts, text=text, blocks=blocks)
