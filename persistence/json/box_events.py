"""One box's events read back from the log and its archives: what history and rollback replay.

The files are opened first and read afterwards: an open descriptor keeps reading the same file
even if the log is rotated meanwhile, so the server opens them under its rotation lock and a
command-line reader beside a running server retries until no rotation fell between the listing
and the opening.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from persistence.errors import StorageError
from persistence.fs import FileSystem
from persistence.json.wal import committed_length, iter_lines
from persistence.types import is_int

Source = tuple[int, int | None]  # an open descriptor, and where its committed data ends (None: the whole file)


def open_sources(fs: FileSystem, log_path: Path, log_end: int | None, archives: Sequence[Path]) -> list[Source]:
    """The log (up to `log_end`), then the archives newest first: the order in which recovery
    lets the first copy of a seq win. A missing file is skipped."""
    sources: list[Source] = []
    try:
        for path, end in [(log_path, log_end), *((archive, None) for archive in reversed(archives))]:
            try:
                sources.append((fs.open(path, os.O_RDONLY), end))
            except FileNotFoundError:
                continue
    except OSError as exc:
        close_all(fs, sources)
        raise StorageError(f"cannot open the log for reading: {exc}") from exc
    return sources


def read_box_events(fs: FileSystem, sources: Sequence[Source], box_id: int) -> list[dict[str, Any]]:
    """The events of `box_id` in the sources, ascending by seq; closes the descriptors."""
    by_seq: dict[int, dict[str, Any]] = {}
    try:
        for fd, end in sources:
            size = fs.file_size(fd)
            data = fs.pread(fd, size if end is None else min(end, size), 0)
            if end is None:
                data = data[:committed_length(data)]
            for event in iter_lines(data):
                if event is None or event.get("boxId") != box_id or isinstance(event.get("boxId"), bool):
                    continue
                seq = event.get("seq")
                if is_int(seq):
                    by_seq.setdefault(seq, event)
    except OSError as exc:
        raise StorageError(f"cannot read the log: {exc}") from exc
    finally:
        close_all(fs, sources)
    return [by_seq[seq] for seq in sorted(by_seq)]


def close_all(fs: FileSystem, sources: Sequence[Source]) -> None:
    for fd, _ in sources:
        try:
            fs.close(fd)
        except OSError:
            pass
