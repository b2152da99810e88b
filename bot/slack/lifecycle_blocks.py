"""Block Kit builders of the incident lifecycle: the cancel form, the "add to timeline" form, the
follow-up list with its **Done** buttons, the App Home sections. Same rules as ``bot.slack.blocks``
(every outside text through ``esc``/``link``, Slack's limits kept)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Sequence

from slack_sdk.models.blocks import (
    InputBlock,
    PlainTextInputElement,
    PlainTextObject,
    SectionBlock,
    StaticSelectElement,
)

from bot.core.timeutil import format_duration
from bot.slack.blocks import (
    MAX_MESSAGE_BLOCKS,
    SECTION_TEXT,
    SEVERITY_ICON,
    _option,
    button,
    clip,
    context,
    dicts,
    esc,
    md,
    modal_heading,
    typed_in_slack,
)
from bot.slack.ids import Action, Block, View
from bot.store.models import Incident, IncidentFollowup

PRIVATE_METADATA = 3000  # a view's private_metadata: at most 3000 characters


def cancel_modal(incident: Incident, service: str) -> dict:
    return {
        "type": "modal",
        "callback_id": View.CANCEL,
        "private_metadata": str(incident.id),
        "title": {"type": "plain_text", "text": clip(f"Cancel INC-{incident.id}", 24)},
        "submit": {"type": "plain_text", "text": "Cancel incident"},
        "close": {"type": "plain_text", "text": "Keep it"},
        "blocks": [
            modal_heading(incident, service),
            InputBlock(
                block_id=Block.CANCEL_REASON,
                label=PlainTextObject(text="Why is it cancelled?"),
                hint=PlainTextObject(text="A cancelled incident is counted in no metric."),
                element=PlainTextInputElement(action_id="value", multiline=True, max_length=2000,
                                              placeholder=PlainTextObject(text="False alarm: the synthetic check broke")),
            ).to_dict(),
        ],
    }


def timeline_metadata(channel: str, ts: str, text: str, permalink: str | None) -> str:
    """What the form carries to its submission: the message, clipped to fit ``private_metadata``."""
    data = {"c": channel, "ts": ts, "p": permalink, "t": ""}
    room = PRIVATE_METADATA - len(json.dumps(data, ensure_ascii=False)) - 50
    for n in (room, room // 2, room // 4, room // 8):  # quotes and backslashes grow when JSON-escaped
        data["t"] = text[:max(n, 0)]
        if len(json.dumps(data, ensure_ascii=False)) <= PRIVATE_METADATA:
            break
    return json.dumps(data, ensure_ascii=False)


def timeline_modal(incidents: Sequence[tuple[Incident, str]], *, selected: int | None, text: str, metadata: str) -> dict:
    """The message shortcut's form: which incident the message goes to (pre-selected in its channel)."""
    options = [_option(f"INC-{i.id} [{i.severity.upper()}] {service}: {i.title}", str(i.id)) for i, service in incidents[:100]]
    initial = next((o for o in options if o.value == str(selected)), None)
    preview = esc(clip(" ".join(text.split()), 500), mentions=True) or "_(no text)_"
    return {
        "type": "modal",
        "callback_id": View.TIMELINE,
        "private_metadata": metadata,
        "title": {"type": "plain_text", "text": "Add to timeline"},
        "submit": {"type": "plain_text", "text": "Add"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            md(f"> {preview}").to_dict(),
            InputBlock(
                block_id=Block.TIMELINE_INCIDENT,
                label=PlainTextObject(text="Incident"),
                element=StaticSelectElement(action_id="value", options=options, initial_option=initial,
                                            placeholder=PlainTextObject(text="Pick an open incident")),
            ).to_dict(),
        ],
    }


def no_incident_modal() -> dict:
    return {
        "type": "modal",
        "callback_id": View.TIMELINE,
        "title": {"type": "plain_text", "text": "Add to timeline"},
        "close": {"type": "plain_text", "text": "Close"},
        "blocks": [md(":white_check_mark: There is no open incident to add this message to.").to_dict()],
    }


def followup_line(f: IncidentFollowup, incident: Incident) -> str:
    owner = f" · <@{f.owner}>" if f.owner else ""
    return f"*F-{f.id}* (INC-{incident.id}) {esc(clip(f.text, 500), mentions=typed_in_slack(f.created_by))}{owner}"


def followups_message(rows: Sequence[tuple[IncidentFollowup, Incident]], *, mine: bool) -> tuple[str, list[dict]]:
    """Open follow-ups, each with a **Done** button (at most 50 blocks: the rest is counted)."""
    whose = "your " if mine else ""
    if not rows:
        return f"No open {whose}follow-ups.", dicts([md(f":white_check_mark: No open {whose}follow-ups.")])
    blocks: list = [md(f"*{len(rows)} open {whose}follow-up{'s' if len(rows) != 1 else ''}*")]
    shown = rows[: MAX_MESSAGE_BLOCKS - 2]
    for f, incident in shown:
        blocks.append(SectionBlock(text={"type": "mrkdwn", "text": clip(followup_line(f, incident), SECTION_TEXT)},
                                   accessory=button("Done", Action.FOLLOWUP_DONE, str(f.id), style="primary")))
    if len(rows) > len(shown):
        blocks.append(context(f"_{len(rows) - len(shown)} more not shown_"))
    return f"{len(rows)} open {whose}follow-up(s)", dicts(blocks)


def home_sections(
    led: Sequence[tuple[Incident, str]], followups: Sequence[tuple[IncidentFollowup, Incident]], *, now: datetime
) -> list[dict]:
    """App Home: the incidents I lead and my open follow-ups (with **Done**)."""
    from bot.slack.blocks import header

    blocks: list = [header("Incidents you lead")]
    if led:
        lines = [
            f"{SEVERITY_ICON.get(i.severity, '')} *INC-{i.id}* `{service}` {esc(clip(i.title, 120), mentions=typed_in_slack(i.source))}"
            f" · {i.state}, open for {format_duration((now - i.started_at).total_seconds())}"
            for i, service in led
        ]
        blocks.append(md(clip("\n".join(lines), SECTION_TEXT)))
    else:
        blocks.append(context("You lead no open incident."))
    blocks.append(header("Your follow-ups"))
    if followups:
        for f, incident in followups[:20]:
            blocks.append(SectionBlock(text={"type": "mrkdwn", "text": clip(followup_line(f, incident), SECTION_TEXT)},
                                       accessory=button("Done", Action.FOLLOWUP_DONE, str(f.id), style="primary")))
    else:
        blocks.append(context("No open follow-ups."))
    return [b.to_dict() if hasattr(b, "to_dict") else b for b in blocks]
