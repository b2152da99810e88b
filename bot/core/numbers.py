"""The one parser for whole numbers typed or sent by people and programs (Slack options, query strings).

Only ASCII digits are a number here: ``str.isdigit`` also accepts ``²`` or ``٣`` (which ``int`` then
refuses or reads), and an unbounded ``int`` reaches the database as an overflow. Every value is
range-checked, and a bad one is a ``ValidationError`` naming the field.
"""

from __future__ import annotations

import re
from typing import Any

from bot.core.errors import ValidationError

_DIGITS = re.compile(r"[0-9]{1,18}")
# The largest id the database holds (BIGINT / SQLite INTEGER): references beyond it name nothing.
MAX_ID = 2**63 - 1


def is_digits(text: Any) -> bool:
    """True for 1 to 18 ASCII digits (what ``parse_int`` reads), nothing else."""
    return isinstance(text, str) and _DIGITS.fullmatch(text) is not None


def parse_int(value: Any, *, field: str, lo: int, hi: int) -> int:
    """A whole number from ``lo`` to ``hi``, written in ASCII digits (``+``, spaces, ``²`` refused)."""
    text = value.strip() if isinstance(value, str) else value
    if isinstance(text, int) and not isinstance(text, bool):
        number = text
    elif is_digits(text):
        number = int(text)
    else:
        number = None
    if number is None or not lo <= number <= hi:
        raise ValidationError(f"must be a whole number from {lo} to {hi}", field=field)
    return number
