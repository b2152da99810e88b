"""``/dora team ...`` and ``/dora service rename|merge``: who owns which services, and fixing a
history split by a typo (admins; the rename or merge runs after its confirm dialog)."""

from __future__ import annotations

import json

from bot.core import grammar as g
from bot.core.report_text import counted
from bot.services import catalogue, teams
from bot.slack import blocks as bk
from bot.slack.ids import Action
from bot.slack.listeners.common import actor, reply, runtime, transaction
from bot.slack.listeners.dora_command import require_admin
from bot.store.db import session_scope


def handle(context, parsed, *, user: str | None, respond) -> None:
    rt = runtime(context)
    if isinstance(parsed, g.TeamList):
        with session_scope(rt.engine, write=False) as session:
            rows = teams.list_teams(session)
            lines = [f"*{bk.esc(t.name)}*: " + (", ".join(f"`{s}`" for s in svcs) or "_no services_") for t, svcs in rows]
        reply(respond, "\n".join(lines) if lines else "No teams yet: `/dora team set <team> <service>,...` makes one.")
    elif isinstance(parsed, g.TeamSet):
        require_admin(rt, user, "change teams")
        with transaction(context) as session:
            change = teams.set_team(session, team=parsed.team, services=parsed.services, now=rt.now())
            name = change.team.name
        text = (f":busts_in_silhouette: <@{user}> {'created' if change.created else 'set'} team *{bk.esc(name)}*: "
                + ", ".join(f"`{s}`" for s in change.services))
        if change.moved:
            text += "\n" + "; ".join(f"`{s}` left team {bk.esc(t)}" for s, t in change.moved.items())
        if change.dropped:
            text += "\nNo longer the team's: " + ", ".join(f"`{s}`" for s in change.dropped)
        reply(respond, text, public=True)
    elif isinstance(parsed, g.TeamRemove):
        require_admin(rt, user, "remove teams")
        with transaction(context) as session:
            team, services, digests = teams.remove_team(session, team=parsed.team)
            name = team.name
        text = f"Team *{bk.esc(name)}* removed; " + (
            f"{', '.join(f'`{s}`' for s in services)} keep their history and belong to no team." if services
            else "it owned no services."
        )
        if digests:
            text += f"\nDigests {', '.join(f'#{d}' for d in digests)} still name it and report no data until the team exists again."
        reply(respond, text, public=True)
    elif isinstance(parsed, (g.ServiceRename, g.ServiceMerge)):
        require_admin(rt, user, "rename or merge services")
        ask_to_confirm(rt, parsed, respond)


def ask_to_confirm(rt, parsed, respond) -> None:
    """The change, with its counts, and one button behind Slack's confirm dialog."""
    with session_scope(rt.engine, write=False) as session:
        if isinstance(parsed, g.ServiceRename):
            service, new = catalogue.check_rename(session, parsed.old, parsed.new)  # refused now, not after the dialog
            value = {"op": "rename", "a": service.name, "b": new}
            what = f"Rename `{service.name}` to `{new}`"
            detail = "Every deploy, incident, lead-time sample, digest and the team stay with it."
        else:
            source, into = catalogue.check_merge(session, parsed.source, parsed.into)
            deploys, incidents = catalogue.counts(session, source.id)
            value = {"op": "merge", "a": source.name, "b": into.name}
            what = f"Merge `{source.name}` into `{into.name}`"
            detail = (f"{counted(deploys, 'deploy')} and {counted(incidents, 'incident')} of `{source.name}` move to `{into.name}`;"
                      f" `{source.name}` is then gone.")
    confirm = {
        "title": {"type": "plain_text", "text": "Rename the service?" if value["op"] == "rename" else "Merge the services?"},
        "text": {"type": "mrkdwn", "text": bk.clip(f"{what}. {detail}", 300)},
        "confirm": {"type": "plain_text", "text": "Rename" if value["op"] == "rename" else "Merge"},
        "deny": {"type": "plain_text", "text": "Cancel"},
    }
    button = bk.button("Rename" if value["op"] == "rename" else "Merge", Action.SERVICE_CHANGE, json.dumps(value), style="danger").to_dict()
    button["confirm"] = confirm
    blocks = [bk.md(f"{what}? {detail}").to_dict(), {"type": "actions", "block_id": "service_change", "elements": [button]}]
    reply(respond, f"{what}?", blocks)


def service_change_confirmed(ack, body, respond, context) -> None:
    ack()
    rt = runtime(context)
    user = actor(body)
    require_admin(rt, user, "rename or merge services")
    value = json.loads(body["actions"][0]["value"])
    with transaction(context) as session:
        if value["op"] == "rename":
            change = catalogue.rename_service(session, old=value["a"], new=value["b"], actor=user, now=rt.now())
            text = f":label: <@{user}> renamed `{change.old}` to `{change.new}`."
        else:
            change = catalogue.merge_services(session, source=value["a"], into=value["b"], actor=user, now=rt.now())
            text = (
                f":twisted_rightwards_arrows: <@{user}> merged `{change.old}` into `{change.new}`:"
                f" {counted(change.deploys, 'deploy')}, {counted(change.incidents, 'incident')} and"
                f" {counted(change.samples, 'lead-time sample')} moved."
            )
        if change.digests:
            text += f" Digests {', '.join(f'#{d}' for d in change.digests)} follow it."
        if change.open_incidents:
            text += f" Noted on {', '.join(f'INC-{i}' for i in change.open_incidents)}."
    respond(text=text, replace_original=True)
    reply(respond, text, public=True)
