"""Block Kit as plain text, for ``dora-bot shell``: what a person would see in Slack, in a terminal."""

from __future__ import annotations

import re
from typing import Callable

_DATE = re.compile(r"<!date\^\d+\^[^|>]*\|([^>]*)>")
_LINK = re.compile(r"<(https?://[^|>]+)\|([^>]+)>")
_BARE_LINK = re.compile(r"<(https?://[^>]+)>")
_USER = re.compile(r"<@([A-Z0-9]+)(?:\|[^>]*)?>")
_CHANNEL = re.compile(r"<#([A-Z0-9]+)(?:\|([^>]*))?>")
_BOLD = re.compile(r"(?<![\w*])\*([^*\n]+)\*(?![\w*])")
_EMOJI = {
    ":rotating_light:": "[!]", ":eyes:": "[ack]", ":white_check_mark:": "[ok]", ":warning:": "[!]",
    ":rocket:": "[deploy]", ":rewind:": "[rollback]", ":boom:": "[fail]", ":speech_balloon:": "[update]",
    ":link:": "[cause]", ":red_circle:": "(red)", ":large_orange_circle:": "(orange)", ":large_yellow_circle:": "(yellow)",
    ":white_circle:": "( )", ":large_green_circle:": "(green)", ":star2:": "(*)", ":arrow_up:": "^", ":arrow_down:": "v",
    ":alarm_clock:": "[reminder]", ":calendar:": "[digest]", ":zzz:": "[snoozed]",
    ":adhesive_bandage:": "[mitigated]", ":no_entry_sign:": "[cancelled]", ":bust_in_silhouette:": "[lead]",
    ":pushpin:": "[note]", ":ballot_box_with_check:": "[follow-up]", ":heavy_check_mark:": "[done]", ":hash:": "[channel]",
    ":memo:": "[postmortem]", ":arrows_counterclockwise:": "[severity]",
}


def mrkdwn(text: str, channels: dict[str, str] | None = None) -> str:
    channels = channels or {}
    text = _DATE.sub(r"\1", text)
    text = _LINK.sub(r"\2 (\1)", text)
    text = _BARE_LINK.sub(r"\1", text)
    text = _USER.sub(r"@\1", text)
    text = _CHANNEL.sub(lambda m: "#" + (m.group(2) or channels.get(m.group(1), m.group(1))), text)
    text = _BOLD.sub(r"\1", text)
    for code, plain in _EMOJI.items():
        text = text.replace(code, plain)
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def _text(obj: dict | None, channels) -> str:
    if not obj:
        return ""
    return mrkdwn(obj.get("text", ""), channels)


def render_blocks(blocks: list[dict], *, buttons: list[tuple[str, dict]], channels: dict[str, str] | None = None, indent: str = "",
                  number: Callable[[str, dict], int] | None = None) -> list[str]:
    """Lines for ``blocks``; every button is appended to ``buttons`` and shown as ``[n] label``:
    ``n`` is its place in ``buttons``, or what ``number(block_id, button)`` says (the shell keeps
    a button's number across updates)."""
    lines: list[str] = []
    for block in blocks:
        kind = block.get("type")
        if kind == "header":
            lines.append(_text(block.get("text"), channels).upper())
        elif kind == "section":
            if block.get("text"):
                lines.extend(_text(block["text"], channels).splitlines())
            for field in block.get("fields", []):  # "*Name*\nvalue\nnote" -> "Name value · note"
                name, _, value = _text(field, channels).partition("\n")
                lines.append(f"{name} {value.replace(chr(10), ' · ')}" if value else name)
            accessory = block.get("accessory") or {}
            if accessory.get("type") == "button":  # a button beside the text (a follow-up's Done)
                buttons.append((block.get("block_id", ""), accessory))
                n = number(block.get("block_id", ""), accessory) if number else len(buttons)
                lines.append(f"  [{n}] {_text(accessory.get('text'), channels)}")
        elif kind == "context":
            text = "  ".join(_text(e, channels) for e in block.get("elements", []) if e.get("type") != "image")
            lines.extend("  " + line for line in text.splitlines())
        elif kind == "divider":
            lines.append("-" * 40)
        elif kind == "actions":
            labels = []
            for element in block.get("elements", []):
                if element.get("type") == "button":
                    buttons.append((block.get("block_id", ""), element))
                    n = number(block.get("block_id", ""), element) if number else len(buttons)
                    labels.append(f"[{n}] {_text(element.get('text'), channels)}")
            lines.append("  ".join(labels))
    return [indent + line for line in lines]


def render_message(message: dict, *, buttons: list[tuple[str, dict]], channels: dict[str, str] | None = None, indent: str = "",
                   number: Callable[[str, dict], int] | None = None) -> list[str]:
    if message.get("blocks"):
        return render_blocks(message["blocks"], buttons=buttons, channels=channels, indent=indent, number=number)
    return [indent + line for line in mrkdwn(message.get("text", ""), channels).splitlines()]
