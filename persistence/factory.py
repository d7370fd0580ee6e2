"""The one place that picks a storage backend by STORAGE_MODE. Everything else speaks the protocol
(persistence/storage.py) and never names a backend.

Backends are imported only when picked: the configuration imports this module, and so does every
worker process (multiprocessing's spawn loads run.py again), which must not pay for a backend.
"""
from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final

from persistence.errors import StorageModeUnavailable

if TYPE_CHECKING:
    from persistence.backup import BackupContents
    from persistence.fs import FileSystem
    from persistence.storage import Storage, StorageReader

AVAILABLE_MODES: Final = ("json",)
PLANNED_MODES: Final = ("postgres",)  # issue 18


@dataclass(frozen=True)
class StorageSettings:
    mode: str
    # STORAGE_DIR: the JSON backend's files; in every mode the result sheets live under it.
    directory: Path
    max_log_bytes: int  # MAX_AUDIT_FILE_SIZE_MB: the JSON log rotates at this size


def mode_problem(mode: str) -> str | None:
    """Why STORAGE_MODE cannot be used, or None if it can."""
    if mode in AVAILABLE_MODES:
        return None
    if mode in PLANNED_MODES:
        return f"STORAGE_MODE {mode!r} is not available in this version; use 'json'"
    return f"STORAGE_MODE {mode!r} is not available; use 'json'"


def _require(mode: str) -> None:
    problem = mode_problem(mode)
    if problem is not None:
        raise StorageModeUnavailable(problem)


def storage_for(settings: StorageSettings, *, fs: FileSystem | None = None) -> Storage:
    """The competition's writer, not opened yet. `fs` is the JSON backend's door to the disk (tests
    hand in one that fails on demand)."""
    _require(settings.mode)
    from persistence.json.storage import JsonStorage

    return JsonStorage(settings.directory, max_log_bytes=settings.max_log_bytes, fs=fs)


def reader_for(settings: StorageSettings) -> StorageReader:
    """Read-only access beside (or without) the writer."""
    _require(settings.mode)
    from persistence.json.reader import JsonReader

    return JsonReader(settings.directory)


@asynccontextmanager
async def backup_as_storage(contents: BackupContents) -> AsyncIterator[Storage]:
    """A verified backup's contents as a storage of their own, not opened yet, gone afterwards.
    A backup's layout is the JSON backend's directory, whatever mode took it."""
    import asyncio
    import shutil
    import tempfile

    from persistence.backup import extract
    from persistence.json.storage import JsonStorage

    folder = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix="belay-restore-"))
    try:
        await asyncio.to_thread(extract, contents, folder)
        storage = JsonStorage(folder)
        try:
            yield storage
        finally:
            await storage.close()
    finally:
        await asyncio.to_thread(shutil.rmtree, folder, True)
