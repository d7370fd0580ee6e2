"""Reads of a JSON storage directory without its lock: the organiser commands beside a running server.

Nothing here writes. A batch the server is still writing is never read (only complete lines
count), and a rotation that falls between listing the files and opening them is retried.
"""
from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

from persistence.fs import FileSystem
from persistence.json.audit_log import read_latest
from persistence.json.documents import Documents
from persistence.json.inspect import inspect
from persistence.json.lock import lock_holder
from persistence.json.store import read_box_events_offline
from persistence.json.wal import list_archives
from persistence.layout import LOG_NAME
from persistence.types import Holder, Inspection, StateLoader

BLOCK = 64 * 1024


class JsonReader:
    mode = "json"

    def __init__(self, root: Path) -> None:
        self.root = root
        self.location = str(root)

    async def exists(self) -> bool:
        return await asyncio.to_thread(self.root.is_dir)

    async def holder(self) -> Holder | None:
        return await asyncio.to_thread(lock_holder, self.root)

    async def read_document(self, name: str) -> Any | None:
        return await asyncio.to_thread(Documents(self.root, FileSystem()).peek, name)

    async def read_audit(self, *, limit: int, box_id: int | None, include_payload: bool) -> list[dict[str, Any]]:
        return await asyncio.to_thread(self._read_audit, limit, box_id, include_payload)

    async def read_box_events(self, box_id: int) -> list[dict[str, Any]]:
        return await asyncio.to_thread(read_box_events_offline, self.root, box_id)

    async def inspect(self, load_state: StateLoader) -> Inspection:
        return await asyncio.to_thread(inspect, self.root, load_state)

    def _read_audit(self, limit: int, box_id: int | None, include_payload: bool) -> list[dict[str, Any]]:
        # Archives first: if the server rotates meanwhile, the old log is then listed as well or the
        # new log is read; never is an event missed twice over.
        archives = [path for _, path in reversed(list_archives(self.root, FileSystem()))]
        log_path = self.root / LOG_NAME
        return read_latest(log_path, _last_complete_line_end(log_path), archives, limit=limit, box_id=box_id,
                           include_payload=include_payload)


def _last_complete_line_end(path: Path) -> int:
    """Offset just after the last "\\n": a batch still being written is never read."""
    try:
        with open(path, "rb") as source:
            pos = source.seek(0, os.SEEK_END)
            while pos > 0:
                start = max(0, pos - BLOCK)
                source.seek(start)
                chunk = source.read(pos - start)
                found = chunk.rfind(b"\n")
                if found >= 0:
                    return start + found + 1
                pos = start
    except FileNotFoundError:
        pass
    return 0
