"""The one place that picks a storage backend by STORAGE_MODE. Everything else speaks the protocol
(persistence/storage.py) and never names a backend.

Backends are imported only when picked: the configuration imports this module, and so does every
worker process (multiprocessing's spawn loads run.py again), which must not pay for a backend.
"""
from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Final

from persistence.errors import StorageModeUnavailable

if TYPE_CHECKING:
    from persistence.backup import BackupContents
    from persistence.fs import FileSystem
    from persistence.storage import Storage, StorageReader

AVAILABLE_MODES: Final = ("json", "postgres")
DEFAULT_DATABASE_SCHEMA: Final = "belay"


@dataclass(frozen=True)
class StorageSettings:
    mode: str
    # STORAGE_DIR: the JSON backend's files; in every mode the result sheets live under it.
    directory: Path
    max_log_bytes: int  # MAX_AUDIT_FILE_SIZE_MB: the JSON log rotates at this size
    # STORAGE_MODE=postgres: DATABASE_URL (may hold a password: never shown) and DATABASE_SCHEMA.
    database_url: str = field(default="", repr=False)
    database_schema: str = DEFAULT_DATABASE_SCHEMA


def mode_problem(mode: str) -> str | None:
    """Why STORAGE_MODE cannot be used, or None if it can."""
    if mode in AVAILABLE_MODES:
        return None
    return f"STORAGE_MODE {mode!r} is not available; use one of {', '.join(AVAILABLE_MODES)}"


def database_problem(settings: StorageSettings) -> str | None:
    """Why the PostgreSQL settings cannot be used, or None (the JSON mode needs none)."""
    if settings.mode != "postgres":
        return None
    if not settings.database_url:
        return "STORAGE_MODE=postgres needs DATABASE_URL (postgresql://user@host:5432/database)"
    if not settings.database_url.startswith(("postgresql://", "postgres://")):
        return "DATABASE_URL must start with postgresql://"
    from persistence.postgres.schema import check_schema_name

    try:
        check_schema_name(settings.database_schema)
    except ValueError as exc:
        return str(exc)
    return None


def _require(mode: str) -> None:
    problem = mode_problem(mode)
    if problem is not None:
        raise StorageModeUnavailable(problem)


def storage_for(settings: StorageSettings, *, fs: FileSystem | None = None,
                before_commit: Callable[[int], Awaitable[None]] | None = None) -> Storage:
    """The competition's writer, not opened yet. `fs` is the JSON backend's door to the disk, and
    `before_commit` runs before each PostgreSQL write (an event batch or a document) with the
    writer's backend pid (tests fail on demand through them)."""
    _require(settings.mode)
    if settings.mode == "postgres":
        from persistence.postgres.storage import PostgresStorage

        return PostgresStorage(settings.database_url, settings.database_schema, settings.directory,
                               before_commit=before_commit)
    from persistence.json.storage import JsonStorage

    return JsonStorage(settings.directory, max_log_bytes=settings.max_log_bytes, fs=fs)


def reader_for(settings: StorageSettings) -> StorageReader:
    """Read-only access beside (or without) the writer."""
    _require(settings.mode)
    if settings.mode == "postgres":
        from persistence.postgres.reader import PostgresReader

        return PostgresReader(settings.database_url, settings.database_schema)
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
