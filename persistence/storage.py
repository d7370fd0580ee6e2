"""The storage interface the actors use, and its JSON-files implementation.

Actors and transport only see `Storage`; a PostgreSQL backend implements the same methods.
The JSON backend's blocking calls run on dedicated threads: one for the write-ahead log (so an
audit read or a checkpoint never delays an fsync) and one for checkpoints and reads.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Protocol, Sequence, TypeVar

from persistence.json.audit_log import read_latest
from persistence.json.checkpoints import SavedState, StateLoader, Unrebuildable
from persistence.fs import FileSystem
from persistence.json.io_thread import IoThread
from persistence.json.store import FrozenPoint, JsonStore, Recovered, StorageError

__all__ = ["Storage", "JsonStorage", "Recovered", "SavedState", "StateLoader", "StorageError", "Unrebuildable"]

T = TypeVar("T")


class Storage(Protocol):
    mode: str

    async def open(self, reset_boxes: bool, load_state: StateLoader | None = None) -> Recovered:
        """Lock the storage and return what to replay. A checkpoint whose state `load_state`
        refuses is set aside like a corrupt one, and the box is rebuilt from its events."""
        ...

    async def append(self, lines: Sequence[bytes]) -> None: ...
    async def write_checkpoints(self, items: Sequence[tuple[int, int, SavedState]]) -> None:
        """(box, seq, state) as the box's checkpoint; an Unrebuildable instead of a state keeps a box
        its history cannot rebuild known to later starts."""
        ...

    async def rotate_if_due(self, checkpoint_all: Callable[[], Any]) -> bool: ...
    async def read_document(self, name: str) -> Any | None: ...
    async def freeze(self, staging: Path) -> FrozenPoint: ...
    async def write_document(self, name: str, value: Any) -> None: ...
    async def read_audit(self, *, limit: int, box_id: int | None, include_payload: bool) -> list[dict[str, Any]]: ...

    async def read_box_events(self, box_id: int) -> list[dict[str, Any]]:
        """Every committed event of one box since the last reset, ascending by seq (history, rollback)."""
        ...

    def describe(self) -> dict[str, Any]: ...
    async def close(self) -> None: ...


class JsonStorage:
    """Storage in plain files under one directory (see persistence/json_store.py for the layout)."""

    mode = "json"

    def __init__(self, root: Path, *, max_log_bytes: int, fs: FileSystem | None = None) -> None:
        self.root = root
        self._store = JsonStore(root, fs=fs, max_log_bytes=max_log_bytes)
        self._wal_thread = IoThread("belay-wal")
        self._io_thread = IoThread("belay-io")

    async def _on(self, thread: IoThread, fn: Callable[..., T], *args: Any) -> T:
        return await thread.run(fn, *args)

    async def open(self, reset_boxes: bool, load_state: StateLoader | None = None) -> Recovered:
        return await self._on(self._wal_thread, self._store.open, reset_boxes, load_state)

    async def append(self, lines: Sequence[bytes]) -> None:
        await self._on(self._wal_thread, self._store.append, lines)

    async def write_checkpoints(self, items: Sequence[tuple[int, int, SavedState]]) -> None:
        await self._on(self._io_thread, self._store.write_checkpoints, items)

    async def freeze(self, staging: Path) -> FrozenPoint:
        return await self._on(self._wal_thread, self._store.freeze, staging)

    async def read_document(self, name: str) -> Any | None:
        return await self._on(self._io_thread, self._store.read_document, name)

    async def write_document(self, name: str, value: Any) -> None:
        await self._on(self._io_thread, self._store.write_document, name, value)

    async def rotate_if_due(self, checkpoint_all: Callable[[], Any]) -> bool:
        if not self._store.rotation_due():
            return False
        # Every box must be checkpointed at the committed point before its events leave the log.
        await checkpoint_all()
        await self._on(self._wal_thread, self._store.rotate)
        return True

    async def read_audit(self, *, limit: int, box_id: int | None, include_payload: bool) -> list[dict[str, Any]]:
        def read() -> list[dict[str, Any]]:
            # Log, committed end and archives taken together: a rotation cannot fall between them.
            log_path, committed_end, archives = self._store.audit_view()
            return read_latest(log_path, committed_end, archives, limit=limit, box_id=box_id,
                               include_payload=include_payload)

        return await self._on(self._io_thread, read)

    async def read_box_events(self, box_id: int) -> list[dict[str, Any]]:
        return await self._on(self._io_thread, self._store.box_events, box_id)

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
        try:
            await self._on(self._wal_thread, self._store.close)
        finally:
            self._wal_thread.close()
            self._io_thread.close()

