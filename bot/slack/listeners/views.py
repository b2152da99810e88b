"""Modal submissions: declare an incident, post an update."""

from __future__ import annotations

from slack_bolt import App

from bot.core.errors import DoraError
from bot.core.inputs import IncidentInput, normalize_service
from bot.core.timeutil import parse_time
from bot.runtime import Runtime
from bot.services.incidents import declare_incident, post_update
from bot.slack.ids import Action, Block, View
from bot.slack.listeners.common import log
from bot.slack.listeners.incident_command import announce
from bot.slack.messaging import Messenger
from bot.store.db import session_scope


def _value(values: dict, block: str, action: str = "value") -> str | None:
    element = values.get(block, {}).get(action) or {}
    if element.get("selected_option"):
        return element["selected_option"]["value"]
    return (element.get("value") or "").strip() or None


def normalize_or_none(name: str) -> str | None:
    try:
        return normalize_service(name)
    except DoraError:
        return None


def register(app: App, rt: Runtime) -> None:
    @app.view(View.DECLARE)
    def declare_submitted(ack, body, view, client):
        values = view["state"]["values"]
        user = body["user"]["id"]
        now = rt.now()
        errors: dict[str, str] = {}
        title = _value(values, Block.TITLE)
        picked = _value(values, Block.SERVICE, Action.DECLARE_SERVICE) or _value(values, Block.SERVICE)
        typed = _value(values, Block.NEW_SERVICE)
        service = typed or picked
        severity = _value(values, Block.SEVERITY) or "sev2"
        started_text = _value(values, Block.STARTED)
        suspect = _value(values, Block.SUSPECT)
        started = now
        if not title:
            errors[Block.TITLE] = "Say what is happening."
        if picked and typed and normalize_or_none(typed) != picked:
            errors[Block.NEW_SERVICE] = "Pick a service or type one, not both."
        elif service is None:
            errors[Block.SERVICE] = "Pick the service (or type its name below)."
        else:
            try:
                service = normalize_service(service)
            except DoraError as exc:
                errors[Block.NEW_SERVICE if typed else Block.SERVICE] = exc.message[:150]
        if typed and suspect:
            suspect = None if normalize_or_none(typed) != picked else suspect  # the deploy list was the picked service's
        if started_text:
            try:
                started = parse_time(started_text, now=now, tz=rt.settings.tz)
                if started > now:
                    errors[Block.STARTED] = "That is in the future."
            except DoraError as exc:
                errors[Block.STARTED] = exc.message[:150]
        if errors:
            ack(response_action="errors", errors=errors)
            return
        try:
            with session_scope(rt.engine) as session:
                outcome = declare_incident(
                    session,
                    data=IncidentInput(service=service, started_at=started, severity=severity, title=title),
                    now=now, source="slack", actor=user, suspect=f"D-{suspect}" if suspect else None,
                )
        except DoraError as exc:
            ack(response_action="errors", errors={Block.TITLE: exc.message[:150]})
            return
        ack()
        try:
            announce(rt, Messenger(client, rt), outcome.incident.id, declared_in=view.get("private_metadata") or None)
        except Exception:
            log.exception("posting the card of %s failed", outcome.ref)

    @app.view(View.UPDATE)
    def update_submitted(ack, body, view, client):
        text = _value(view["state"]["values"], Block.UPDATE_TEXT)
        if not text:
            ack(response_action="errors", errors={Block.UPDATE_TEXT: "Write the update first."})
            return
        try:
            with session_scope(rt.engine) as session:
                outcome = post_update(session, ref="INC-" + view["private_metadata"], text=text, now=rt.now(), actor=body["user"]["id"])
        except DoraError as exc:
            ack(response_action="errors", errors={Block.UPDATE_TEXT: exc.message[:150]})
            return
        ack()
        messenger = Messenger(client, rt)
        messenger.refresh_incident(outcome.incident.id, thread_line=messenger.thread_line_for_last_event(outcome.incident.id))
