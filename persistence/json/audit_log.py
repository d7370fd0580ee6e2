"""Reader behind `GET /api/admin/audit/events`: the newest events of the write-ahead log.

It reads backwards from the committed end in fixed blocks, so answering "the last 200" costs
about 200 lines of I/O however large the log is, and it never sees a batch still being written.
"""
from __future__ import annotations

import os
from collections.abc import Generator, Sequence
from contextlib import closing
from pathlib import Path
from typing import Any

from persistence.errors import StorageError
from persistence.fs import FileSystem
from persistence.lines import parse_line
from persistence.types import audit_item

BLOCK_SIZE = 64 * 1024
# Reads run on a thread while the event loop serves commands. The loop waits for the GIL up to
# the switch interval (0.5 ms) each time it wants it back; handing it over every 50 events
# (about 0.15 ms of parsing) keeps that wait short while an admin reads the log back to back.
EVENTS_PER_GIL_HANDOVER = 50
_hand_over_gil = getattr(os, "sched_yield", lambda: None)  # releases the GIL without sleeping


def read_latest(
    log_path: Path,
    committed_end: int,
    archives_newest_first: Sequence[Path],
    *,
    limit: int,
    box_id: int | None,
    include_payload: bool,
    fs: FileSystem | None = None,
    block_size: int = BLOCK_SIZE,
) -> list[dict[str, Any]]:
    """Newest first, at most `limit` events, each with exactly AUDIT_KEYS.

    Take `log_path`, `committed_end` and the archive list in one step of the store's owner:
    a rotation in between would make them describe different files.
    """
    fs = fs or FileSystem()
    found: list[dict[str, Any]] = []
    sources: list[tuple[Path, int | None]] = [(log_path, committed_end)]
    sources += [(archive, None) for archive in archives_newest_first]
    for path, end in sources:
        if len(found) >= limit:
            break
        # closing(): stopping early must release the file descriptor now, not at GC time.
        with closing(_events_backwards(fs, path, end, block_size)) as events:
            for parsed, event in enumerate(events, 1):
                if parsed % EVENTS_PER_GIL_HANDOVER == 0:  # parsed, not found: a box filter may skip most
                    _hand_over_gil()
                if box_id is not None and not _same_box(event.get("boxId"), box_id):
                    continue
                found.append(audit_item(event, include_payload))
                if len(found) >= limit:
                    break
    return found


def _events_backwards(
    fs: FileSystem, path: Path, end: int | None, block_size: int
) -> Generator[dict[str, Any], None, None]:
    """Parsable lines of `path` before `end` (whole file if None), last line first."""
    try:
        fd = fs.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return  # no log yet, or an archive removed by the operator
    except OSError as exc:
        raise StorageError(f"cannot read {path}: {exc}") from exc
    try:
        pos = fs.file_size(fd) if end is None else min(end, fs.file_size(fd))
        partial = b""  # the end of a line whose start lies in a block not read yet
        while pos > 0:
            start = max(0, pos - block_size)
            lines = (fs.pread(fd, pos - start, start) + partial).split(b"\n")
            pos = start
            partial = lines.pop(0) if pos > 0 else b""
            for line in reversed(lines):
                event = parse_line(line) if line else None
                if event is not None:
                    yield event
    except OSError as exc:
        raise StorageError(f"cannot read {path}: {exc}") from exc
    finally:
        fs.close(fd)


def _same_box(value: object, box_id: int) -> bool:
    return value == box_id and not isinstance(value, bool)
