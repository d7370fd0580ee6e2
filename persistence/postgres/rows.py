"""Event lines and checkpoints as rows: the columns a line is queried by, and back.

The line itself is stored byte for byte; the columns are read out of it once, when it is written
(here, for appends, backups restored and `run.py migrate`).
"""
from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Final

from persistence.lines import parse_line
from persistence.types import MAX_SEQ, is_box_id, is_int

EVENT_COLUMNS: Final = ("era", "box_id", "seq", "action", "action_id", "time_ms", "line")
EventRow = tuple[int, int | None, int | None, str | None, str | None, int | None, bytes]


def event_row(line: bytes, era: int) -> EventRow:
    """The row of one line: box and seq only when the line is a box's event (an account change may
    name a box but has no seq), so the unique index holds exactly what replay keys on."""
    event = parse_line(line)
    if event is None:
        return era, None, None, None, None, None, line
    box = event.get("boxId")
    box_id = box if is_box_id(box) else None
    seq = event.get("seq")
    box_seq = seq if box_id is not None and is_int(seq) and 0 <= seq <= MAX_SEQ else None
    action, action_id = event.get("action"), event.get("actionId")
    return (era, box_id, box_seq, action if isinstance(action, str) else None,
            action_id if isinstance(action_id, str) else None, _time_ms(event), line)


def _time_ms(event: dict[str, Any]) -> int | None:
    now_ms = event.get("nowMs")
    if is_int(now_ms) and abs(now_ms) < 2**62:
        return now_ms
    created = event.get("createdAt")
    if isinstance(created, str):
        try:
            return int(datetime.fromisoformat(created).timestamp() * 1000)
        except (ValueError, OverflowError):
            return None
    return None


def split_lines(data: bytes) -> list[bytes]:
    """A log file's complete lines, each with its newline (a torn tail has none and is left out)."""
    parts = data.split(b"\n")
    return [part + b"\n" for part in parts[:-1]]


def assign_eras(lines_in_order: Sequence[bytes], first_era: int = 1) -> list[EventRow]:
    """Rows for a whole log read from files, oldest first. A file layout holds no reset marks, so a
    box's seq going back (a clean start numbered it from 1 again) begins the next era."""
    era = first_era
    last: dict[int, int] = {}
    rows: list[EventRow] = []
    for line in lines_in_order:
        row = event_row(line, era)
        box_id, seq = row[1], row[2]
        if box_id is not None and seq is not None:
            if seq <= last.get(box_id, 0):
                era += 1
                last = {}
                row = (era, *row[1:])
            last[box_id] = seq
        rows.append(row)
    return rows
