"""The JSON backend behind the storage protocol: plain files in one directory.

The blocking JsonStore runs on two dedicated threads: one for the write-ahead log (so an audit read
or a checkpoint never delays an fsync) and one for checkpoints and reads.
"""
from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from persistence.backup import BackupContents, Progress
from persistence.fs import FileSystem
from persistence.json.adopt import adopt_backup, check_empty
from persistence.json.audit_log import read_latest
from persistence.json.io_thread import IoThread
from persistence.json.store import JsonStore
from persistence.layout import RESULTS_DIR
from persistence.storage import Storage
from persistence.types import DurablePoint, FrozenPoint, Recovered, SavedState, StateLoader

DEFAULT_MAX_LOG_BYTES = 50 * 2**20


class JsonStorage:
    """Storage in plain files under one directory (see persistence/json/store.py for the layout)."""

    mode = "json"

    def __init__(self, root: Path, *, max_log_bytes: int = DEFAULT_MAX_LOG_BYTES, fs: FileSystem | None = None) -> None:
        self.root = root
        self.location = str(root)
        self.results_dir = root / RESULTS_DIR
        self._max_log_bytes = max_log_bytes
        self._store = JsonStore(root, fs=fs, max_log_bytes=max_log_bytes)
        self._wal_thread = IoThread("belay-wal")
        self._io_thread = IoThread("belay-io")
        self._closed = False

    async def open(self, reset_boxes: bool, load_state: StateLoader | None = None) -> Recovered:
        return await self._wal_thread.run(self._store.open, reset_boxes, load_state)

    async def append(self, lines: Sequence[bytes]) -> None:
        # The hot path: one hop to the log's thread, nothing else.
        await self._wal_thread.run(self._store.append, lines)

    async def write_checkpoints(self, items: Sequence[tuple[int, int, SavedState]]) -> None:
        await self._io_thread.run(self._store.write_checkpoints, items)

    async def maintain(self, checkpoint_all: Callable[[], Awaitable[None]]) -> bool:
        if not self._store.rotation_due():
            return False
        # Every box must be checkpointed at the committed point before its events leave the log.
        await checkpoint_all()
        await self._wal_thread.run(self._store.rotate)
        return True

    async def read_document(self, name: str) -> Any | None:
        return await self._io_thread.run(self._store.read_document, name)

    async def write_document(self, name: str, value: Any) -> None:
        await self._io_thread.run(self._store.write_document, name, value)

    async def read_audit(self, *, limit: int, box_id: int | None, include_payload: bool) -> list[dict[str, Any]]:
        def read() -> list[dict[str, Any]]:
            # Log, committed end and archives taken together: a rotation cannot fall between them.
            log_path, committed_end, archives = self._store.audit_view()
            return read_latest(log_path, committed_end, archives, limit=limit, box_id=box_id,
                               include_payload=include_payload)

        return await self._io_thread.run(read)

    async def read_box_events(self, box_id: int) -> list[dict[str, Any]]:
        return await self._io_thread.run(self._store.box_events, box_id)

    async def freeze(self) -> FrozenPoint:
        return await self._wal_thread.run(self._store.freeze)

    async def lay_out(self, frozen: FrozenPoint) -> DurablePoint:
        return DurablePoint(frozen.folder, frozen.entries)  # the links are the files already

    async def release(self, frozen: FrozenPoint) -> None:
        await self._io_thread.run(self._store.release, frozen)

    async def check_empty(self) -> None:
        await asyncio.to_thread(check_empty, self.root)

    async def adopt_backup(self, contents: BackupContents, verify: Callable[[Storage], Awaitable[None]],
                           progress: Progress | None = None) -> None:
        def staged(folder: Path) -> Storage:
            return JsonStorage(folder, max_log_bytes=self._max_log_bytes)

        await adopt_backup(self.root, contents, staged, verify, progress)

    def describe(self) -> dict[str, Any]:
        try:
            audit_bytes = self._store.committed_offset
        except Exception:  # not opened yet
            audit_bytes = 0
        return {
            "mode": self.mode,
            "directory": str(self.root.resolve()),
            "audit_bytes": audit_bytes,
            "archives": len(self._store.archives()) if self.root.exists() else 0,
        }

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            await self._wal_thread.run(self._store.close)
        finally:
            self._wal_thread.close()
            self._io_thread.close()
