"""How an error reads in Slack: people's words, not the API's field names, and one hint line.

The API names a bad field by its JSON path (``commits[0].sha``), which is right for a program;
a person who typed ``/deploy checkout 1.2 commit=zzz`` should read "commit `zzz` is not a commit
sha". A precise error is followed by one line: the form of the subcommand typed, or where the full
usage is (the usage itself is what ``help`` shows).
"""

from __future__ import annotations

import re

from bot.core import grammar as g
from bot.core.errors import ValidationError

# What a person calls each field the API names; None: the message names the thing itself.
FIELD_WORDS = {
    "sha": "commit", "commits[].sha": "commit", "commits[].committed_at": "commit time", "committed_at": "commit time",
    "commits[]": "commit", "commits": "commits", "deployed_at": "deploy time", "started_at": "start time",
    "acknowledged_at": "acknowledge time", "mitigated_at": "mitigation time", "resolved_at": "resolve time",
    "caused_by": None, "cause": None, "suspect": None, "fixes": None, "rollback_of": None, "to": None, "id": "id",
    "url": "link", "environment": "environment", "service": "service", "version": "version", "note": "note",
    "title": "title", "severity": "severity", "started": "start time", "committed": "commit time",
}


def _field_words(field: str | None) -> str | None:
    if not field:
        return None
    key = re.sub(r"\[\d+\]", "[]", field)
    return FIELD_WORDS.get(key, key.replace("_", " ").replace("[]", ""))


def one_error(field: str | None, message: str) -> str:
    """``commits[0].sha``, "`zzz` is not a commit sha" -> "commit `zzz` is not a commit sha"."""
    if field and message.startswith(f"{field}: "):
        message = message[len(field) + 2:]
    words = _field_words(field)
    if not words or message.lower().startswith(words.lower()):
        return message
    if message.startswith("`"):
        return f"{words} {message}"
    return f"{words}: {message}"


def error_text(error: ValidationError) -> str:
    """Every bad field of ``error``, in people's words."""
    return "; ".join(one_error(field, message) for field, message in error.errors)


def usage_hint(command: str | None, text: str | None) -> str | None:
    """One line after an error: the form of the subcommand that was typed, else where the usage is."""
    name = (command or "").lstrip("/")
    usage = g.USAGE.get(name)
    if usage is None:
        return None
    words = (text or "").lower().split()
    forms = [part.strip() for line in usage.splitlines() for part in line.split(" · ")]
    for n in (2, 1):
        if len(words) >= n:
            typed = f"`/{name} {' '.join(words[:n])}"
            for form in forms:
                if form.startswith(typed + " ") or form.startswith(typed + "`"):
                    return f"{form} · `/{name} help` for more"
    subcommands = {form.split()[1].strip("`") for form in forms if len(form.split()) > 1}
    if name in ("deploy", "dora") and words and words[0] not in subcommands:
        # no subcommand: the command's main form (record a deploy, the five keys) is the one meant
        main = re.match(r"`[^`]*`", usage).group(0)
        return f"{main} · `/{name} help` for more"
    return f"`/{name} help` shows every form."
