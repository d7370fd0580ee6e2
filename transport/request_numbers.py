"""Whole numbers typed by a client (paths, query strings, form fields, command-line arguments).

The one way request text becomes an int (box ids: actors/rules/limits.py). Only ASCII digits
count: `str.isdigit` also admits "²" and "١", and `int` also admits " 7", "+7", "-7" and "1_0".
The length is checked before `int()`: Python refuses to convert more than 4,300 digits (a
ValueError nobody expects, once a 500), and converting a long string costs time quadratic in its
length.
"""
from __future__ import annotations

from typing import Final

# The most audit events one read returns: `GET /api/admin/audit/events?limit=` and `run.py audit --tail`.
AUDIT_MAX_EVENTS: Final = 2000


def whole_number(text: str, low: int, high: int, *, max_digits: int | None = None) -> int | None:
    """`text` as an int in low..high, or None. `max_digits` (default: the digits of `high`) bounds
    the text itself, leading zeros included."""
    limit = len(str(high)) if max_digits is None else max_digits
    if not 0 < len(text) <= limit or not text.isascii() or not text.isdigit():
        return None
    value = int(text)
    return value if low <= value <= high else None
