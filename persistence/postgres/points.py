"""Durable points and restores of a PostgreSQL storage, in the one backup layout.

A point is one REPEATABLE READ snapshot, taken in the writer's turn on a connection of its own,
plus hard links of the result sheets. It is written out as files (events.ndjson for the current
era, events.NNNNNN.ndjson for each earlier one, boxes/, the documents) after that turn, while
appends go on: however long that takes, the snapshot holds exactly what was acknowledged. A
restore loads the backup into a staging schema beside the target, lets the caller verify that
one, and only then renames it into place, in one transaction.
"""
from __future__ import annotations

import asyncio
import functools
import os
import shutil
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Final

import asyncpg
import orjson

from persistence.backup import BackupContents, Progress
from persistence.errors import StorageError, StorageLocked, StorageNotEmpty
from persistence.layout import BOXES_DIR, DOCUMENT_FILES, LOG_NAME, RESULT_FILE, RESULTS_DIR, checkpoint_name
from persistence.postgres.connect import UNAVAILABLE, Target, describe_error, lock_holder, try_lock
from persistence.postgres.load import load_files
from persistence.postgres.reads import current_era
from persistence.postgres.recovery import checkpoint_file_bytes
from persistence.postgres.schema import migrate, schema_version
from persistence.storage import Storage
from persistence.types import DurablePoint, FrozenPoint

STAGING_DIR: Final = ".backup-staging"
FETCH_ROWS: Final = 5_000
CLOSE_TIMEOUT_S: Final = 5.0
# One round trip: the snapshot is taken by the transaction's first query, not by its BEGIN.
SNAPSHOT_SQL: Final = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SELECT 1"
StagedStorage = Callable[[str, Path], Storage]  # (schema, directory) -> a storage there, not opened
MidLayout = Callable[[int], Awaitable[None]]  # tests: a point's backend pid, its events written out, the rest not


class Points:
    def __init__(self, target: Target, directory: Path, *, mid_layout: MidLayout | None = None) -> None:
        self._target = target
        self._directory = directory
        self._mid_layout = mid_layout
        self._snapshots: dict[Path, asyncpg.Connection] = {}  # frozen points not laid out yet, by folder

    async def freeze(self) -> FrozenPoint:
        """A snapshot taken on a connection of its own (one round trip) and the result sheets
        linked: a few ms in the writer's turn, however large the database. `lay_out` writes the
        files from the snapshot later; it stays open until then."""
        folder = self._directory / STAGING_DIR / uuid.uuid4().hex
        conn: asyncpg.Connection | None = None
        try:
            conn = await self._target.connect()
            await conn.execute(SNAPSHOT_SQL)
            linked = await asyncio.to_thread(_link_results, self._directory / RESULTS_DIR, folder)
        except BaseException as exc:
            if conn is not None:
                conn.terminate()
            await asyncio.to_thread(_remove, folder, in_staging=True)
            self._raise_if_storage_failed("cannot take a durable point of", exc)
            raise
        self._snapshots[folder] = conn
        return FrozenPoint(folder, tuple(linked))

    async def lay_out(self, frozen: FrozenPoint) -> DurablePoint:
        conn = self._snapshots.pop(frozen.folder, None)
        if conn is None:
            raise RuntimeError("this durable point was laid out or released already")
        midway = None if self._mid_layout is None else functools.partial(self._mid_layout, conn.get_server_pid())
        try:
            entries = await write_layout(conn, frozen.folder, midway)
        except BaseException as exc:
            conn.terminate()
            await asyncio.to_thread(_remove, frozen.folder, in_staging=True)  # no half-written point stays behind
            self._raise_if_storage_failed("cannot write out the durable point of", exc)
            raise
        await _let_go(conn)
        return DurablePoint(frozen.folder, (*entries, *frozen.entries))

    async def release(self, frozen: FrozenPoint) -> None:
        conn = self._snapshots.pop(frozen.folder, None)
        if conn is not None:  # never laid out
            await _let_go(conn)
        await asyncio.to_thread(_remove, frozen.folder, in_staging=True)

    async def sweep(self) -> None:
        """Remove points a crash cut short; call it holding the writer's lock (only a writer makes any)."""
        await asyncio.to_thread(_remove, self._directory / STAGING_DIR)

    async def close(self) -> None:
        """Points never laid out or released (a backup cut short by a shutdown) go with the storage."""
        snapshots, self._snapshots = self._snapshots, {}
        for folder, conn in snapshots.items():
            conn.terminate()
            await asyncio.to_thread(_remove, folder, in_staging=True)

    def _raise_if_storage_failed(self, what: str, exc: BaseException) -> None:
        """A failure of the database or the disk as a StorageError; anything else goes on as it is."""
        if isinstance(exc, (*UNAVAILABLE, asyncpg.PostgresError, OSError)):
            raise StorageError(f"{what} {self._target.location}: {describe_error(exc)}") from exc

    async def check_empty(self) -> None:
        conn = await self._target.connect()
        try:
            if await _holds_anything(conn, self._target.schema):
                raise StorageNotEmpty(f"{self._target.location} is not empty; restore only into a new or empty "
                                      f"schema (nothing was changed)")
        finally:
            await conn.close()

    async def adopt(self, contents: BackupContents, staged: StagedStorage,
                    verify: Callable[[Storage], Awaitable[None]], progress: Progress | None) -> None:
        await self.check_empty()
        schema = self._target.schema
        staging = f"{schema[:40]}_restoring_{uuid.uuid4().hex[:8]}"
        scratch = self._directory.resolve().parent / f".{self._directory.name}.restoring-{uuid.uuid4().hex[:8]}"
        conn = await self._target.connect()
        try:
            if not await try_lock(conn, schema):  # held until this connection closes: no server starts meanwhile
                holder = await lock_holder(conn, schema)
                raise StorageLocked(f"a Belay server ({holder or 'unknown'}) is using {self._target.location}",
                                    holder, self._target.location)
            await migrate(conn, staging)
            async with conn.transaction():
                await conn.execute(f'SET LOCAL search_path TO "{staging}"')
                await load_files(conn, contents.files)
            results = {name: data for name, data in contents.files.items() if name.startswith(f"{RESULTS_DIR}/")}
            await asyncio.to_thread(_write_files, scratch, results)
            if progress is not None:
                total = sum(len(data) for data in contents.files.values())
                progress(total, total)
            await verify(staged(staging, scratch))
            async with conn.transaction():
                if await _holds_anything(conn, schema):
                    raise StorageNotEmpty(f"{self._target.location} was filled meanwhile (nothing was changed)")
                await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
                await conn.execute(f'ALTER SCHEMA "{staging}" RENAME TO "{schema}"')
            await asyncio.to_thread(_move_results, scratch, self._directory)
        finally:
            try:
                await conn.execute(f'DROP SCHEMA IF EXISTS "{staging}" CASCADE')
            finally:
                await conn.close()
                await asyncio.to_thread(_remove, scratch)


async def write_layout(conn: asyncpg.Connection, folder: Path,
                       midway: Callable[[], Awaitable[None]] | None = None) -> list[tuple[str, int | None]]:
    """The connection's schema written out as files named as in persistence/layout.py (all but the
    result sheets, which are files already); call it inside a REPEATABLE READ transaction, so the
    files are one point. Durable points use it; so may `run.py migrate`. `midway` runs once the
    events are written (tests hold or cut the writing there)."""
    await asyncio.to_thread((folder / BOXES_DIR).mkdir, parents=True, exist_ok=True)
    era = await current_era(conn)
    entries = await _write_events(conn, folder, era)
    if midway is not None:
        await midway()
    for row in await conn.fetch("SELECT box_id, seq, box_version, state, unrebuildable_reason "
                                "FROM checkpoints ORDER BY box_id"):
        name = f"{BOXES_DIR}/{checkpoint_name(row['box_id'])}"
        await asyncio.to_thread((folder / name).write_bytes, checkpoint_file_bytes(row))
        entries.append((name, None))
    for document, file_name in DOCUMENT_FILES.items():
        raw = await conn.fetchval("SELECT value FROM documents WHERE name = $1", document)
        if raw is not None:
            data = orjson.dumps(orjson.loads(raw), option=orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE)
            await asyncio.to_thread((folder / file_name).write_bytes, data)
            entries.append((file_name, None))
    return entries


async def _write_events(conn: asyncpg.Connection, folder: Path, era: int) -> list[tuple[str, int | None]]:
    """Each earlier era as an archive numbered by it, the current era as the log; the files are
    written off the loop, a few thousand lines at a time."""
    names: dict[int, str] = {era: LOG_NAME}
    pending: dict[int, list[bytes]] = {}
    current, lines = -1, []  # eras follow each other in commit order: one list at a time
    count = 0
    async for number, line in conn.cursor("SELECT era, line FROM events ORDER BY pos", prefetch=FETCH_ROWS):
        if number != current:
            current, lines = number, pending.setdefault(number, [])
            if number not in names:
                names[number] = f"events.{number:06d}.ndjson"
        lines.append(line)
        count += 1
        if count % FETCH_ROWS == 0:
            await asyncio.to_thread(_append_files, folder, names, pending)
            pending = {current: (lines := [])}
    await asyncio.to_thread(_append_files, folder, names, pending)
    return [(names[number], None) for number in sorted(names, key=lambda n: (n == era, n))]


def _append_files(folder: Path, names: dict[int, str], pending: dict[int, list[bytes]]) -> None:
    for number, name in names.items():
        with open(folder / name, "ab") as out:
            out.write(b"".join(pending.get(number, ())))


async def _holds_anything(conn: asyncpg.Connection, schema: str) -> bool:
    if await schema_version(conn, schema) is None:
        return bool(await conn.fetchval("SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                                        "WHERE n.nspname = $1", schema))
    return bool(await conn.fetchval(
        f'SELECT EXISTS (SELECT 1 FROM "{schema}".events) OR EXISTS (SELECT 1 FROM "{schema}".checkpoints) '
        f'OR EXISTS (SELECT 1 FROM "{schema}".documents)'))


async def _let_go(conn: asyncpg.Connection) -> None:
    """Close a snapshot's connection (its transaction only read: nothing is lost), or cut it if the
    database does not answer."""
    try:
        await conn.close(timeout=CLOSE_TIMEOUT_S)
    except (*UNAVAILABLE, asyncpg.PostgresError):
        conn.terminate()


def _link_results(results: Path, folder: Path) -> list[tuple[str, int | None]]:
    entries: list[tuple[str, int | None]] = []
    if not results.is_dir():
        return entries
    for category in sorted(p for p in results.iterdir() if p.is_dir()):
        for sheet in sorted(p for p in category.iterdir() if RESULT_FILE.match(p.name)):
            name = f"{RESULTS_DIR}/{category.name}/{sheet.name}"
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            os.link(sheet, folder / name)
            entries.append((name, None))
    return entries


def _write_files(folder: Path, files: dict[str, bytes]) -> None:
    for name, data in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)


def _move_results(scratch: Path, directory: Path) -> None:
    source = scratch / RESULTS_DIR
    if not source.is_dir():
        return
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / RESULTS_DIR
    if not target.exists():
        os.replace(source, target)
        return
    for category in source.iterdir():
        os.replace(category, target / category.name)


def _remove(folder: Path, *, in_staging: bool = False) -> None:
    shutil.rmtree(folder, ignore_errors=True)
    if not in_staging:
        return
    try:
        os.rmdir(folder.parent)  # the staging folder, if no other point is in it
    except OSError:
        pass
