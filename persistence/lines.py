"""The event log's lines, the same in every backend: one JSON object per line, ending with b"\\n"."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson


def check_lines(lines: Sequence[bytes]) -> None:
    """What every backend refuses to append: anything but one newline-terminated line each."""
    if sum(line.count(b"\n") for line in lines) != len(lines) or not all(line.endswith(b"\n") for line in lines):
        raise ValueError("each line must be one JSON object ending with a single b'\\n'")


def parse_line(line: bytes) -> dict[str, Any] | None:
    """The JSON object on one line, or None if the line is not one."""
    try:
        value = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None
