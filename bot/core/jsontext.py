"""The one JSON reader for bodies and lines from outside (ingest API, webhooks, import).

Besides the syntax it refuses what the stores cannot hold or what costs unbounded work: nesting
deeper than ``MAX_DEPTH`` (``json`` would recurse until ``RecursionError``), NUL characters
(PostgreSQL text cannot store them) and lone UTF-16 surrogates such as ``"\\ud800"`` (not
encodable as UTF-8). Each refusal is a ``ValidationError`` naming where the problem is.
"""

from __future__ import annotations

import json
from typing import Any

from bot.core.errors import ValidationError

MAX_DEPTH = 64  # deeper than any payload the senders document (GitHub's is under 10)


def _where(path: list) -> str | None:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or None


def _bad_text(value: str) -> str | None:
    if "\x00" in value:
        return "holds a NUL character (\\u0000), which cannot be stored"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "holds a lone UTF-16 surrogate (such as \\ud800), which is not text"
    return None


def check_tree(obj: Any, *, max_depth: int = MAX_DEPTH) -> None:
    """Walk a parsed document without recursion: depth, keys and strings."""
    stack: list[tuple[Any, list]] = [(obj, [])]
    while stack:
        value, path = stack.pop()
        if isinstance(value, str):
            if (problem := _bad_text(value)) is not None:
                raise ValidationError(problem, field=_where(path))
            continue
        if not isinstance(value, (dict, list)):
            continue
        if len(path) >= max_depth:
            raise ValidationError(f"is nested deeper than {max_depth} levels", field=_where(path))
        if isinstance(value, dict):
            for key, item in value.items():
                if (problem := _bad_text(key)) is not None:
                    raise ValidationError(f"a field name {problem}", field=_where(path))
                stack.append((item, [*path, key]))
        else:
            stack.extend((item, [*path, i]) for i, item in enumerate(value))


def _no_constant(name: str) -> Any:
    """``json`` also reads ``NaN``, ``Infinity`` and ``-Infinity``, which are not JSON (RFC 8259) and
    which no sender means: refused, before a handler compares or loops on them."""
    raise ValueError(f"{name} is not a JSON number")


def loads(data: bytes | str, *, max_depth: int = MAX_DEPTH) -> Any:
    """Parse and check one JSON document; a ``ValidationError`` says what is wrong and where."""
    try:
        obj = json.loads(data, parse_constant=_no_constant)
    except RecursionError:
        raise ValidationError(f"is not accepted: JSON nested deeper than {max_depth} levels") from None
    except UnicodeDecodeError:
        raise ValidationError("is not UTF-8 text") from None
    except ValueError as exc:
        raise ValidationError(f"is not valid JSON ({getattr(exc, 'msg', exc)}, at character {getattr(exc, 'pos', '?')})") from None
    check_tree(obj, max_depth=max_depth)
    return obj
