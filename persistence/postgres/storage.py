"""The PostgreSQL backend behind the storage protocol: one schema per competition.

Writes go through the one locked connection (persistence/postgres/writer.py), each batch in one
transaction committed with synchronous_commit=on; reads go through a small pool beside it, so an
audit read never waits for a commit. Result sheets stay local files under `directory`.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any, Final

import asyncpg
import orjson

from persistence.backup import BackupContents, Progress
from persistence.errors import StorageError
from persistence.layout import RESULTS_DIR
from persistence.lines import check_lines
from persistence.postgres import points, reads
from persistence.postgres.connect import UNAVAILABLE, Target, describe_error, redact
from persistence.postgres.recovery import MARK_SQL, recover
from persistence.postgres.rows import EVENT_COLUMNS, event_row
from persistence.postgres.writer import BeforeCommit, Writer, row_stored
from persistence.storage import Storage
from persistence.types import (
    MAX_STORED_BOX_ID,
    DurablePoint,
    FrozenPoint,
    Recovered,
    SavedState,
    StateLoader,
    Unrebuildable,
    is_box_id,
)

log = logging.getLogger("belay.persistence")

READ_POOL_SIZE: Final = 4
CLOSE_TIMEOUT_S: Final = 5.0  # a database gone away must not hang a shutdown
# Above this many lines a batch goes by COPY; below, one pipelined INSERT costs fewer round trips.
COPY_FROM_LINES: Final = 64
INSERT_EVENT: Final = (f"INSERT INTO events ({', '.join(EVENT_COLUMNS)}) "
                       f"VALUES ({', '.join(f'${n}' for n in range(1, len(EVENT_COLUMNS) + 1))})")
# A checkpoint never moves backwards: an older one is ignored, an equal one replaces it.
UPSERT_CHECKPOINT: Final = (
    "INSERT INTO checkpoints (box_id, seq, box_version, state, unrebuildable_reason) VALUES ($1, $2, $3, $4, NULL) "
    "ON CONFLICT (box_id) DO UPDATE SET seq = excluded.seq, box_version = excluded.box_version, "
    "state = excluded.state, unrebuildable_reason = NULL, saved_at = now() WHERE checkpoints.seq <= excluded.seq")
MARK_IF_NEWER: Final = MARK_SQL + " WHERE checkpoints.seq <= excluded.seq"
UPSERT_DOCUMENT: Final = ("INSERT INTO documents (name, value) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE "
                          "SET value = excluded.value, updated_at = now()")


class PostgresStorage:
    mode = "postgres"

    def __init__(self, dsn: str, schema: str, directory: Path, *, before_commit: BeforeCommit | None = None,
                 mid_layout: points.MidLayout | None = None) -> None:
        self._target = Target(dsn, schema)
        self.location = self._target.location
        self.directory = directory
        self.results_dir = directory / RESULTS_DIR
        self._before_commit = before_commit
        self._writer = Writer(self._target, before_commit)
        self._pool: asyncpg.Pool | None = None
        self._era = 0
        self._points = points.Points(self._target, directory, mid_layout=mid_layout)
        self._opened = False

    async def open(self, reset_boxes: bool, load_state: StateLoader | None = None) -> Recovered:
        if self._opened or self._writer.closed:
            raise RuntimeError("PostgresStorage opens once")
        conn = await self._writer.start()
        try:
            self._era, recovered = await recover(conn, reset_boxes, load_state)
            await self._points.sweep()
            self._pool = await asyncpg.create_pool(self._target.dsn, min_size=0, max_size=READ_POOL_SIZE,
                                                   server_settings={"search_path": f'"{self._target.schema}"',
                                                                    "application_name": "belay-reader"})
        except BaseException as exc:
            await self.close()
            if isinstance(exc, (*UNAVAILABLE, asyncpg.PostgresError)):
                raise StorageError(f"cannot open {self.location}: {describe_error(exc)}") from exc
            raise
        self._opened = True
        settings = self._writer.settings
        log.info("database %s", redact(self._target.dsn))
        log.info("PostgreSQL %s: fsync=%s, synchronous_commit=on for the writer (server default %s), "
                 "full_page_writes=%s", settings.get("server_version"), settings.get("fsync"),
                 settings.get("synchronous_commit"), settings.get("full_page_writes"))
        log.info("schema %s at version %d%s", self._target.schema, self._writer.schema_version,
                 f" (migrations {self._writer.migrated} applied now)" if self._writer.migrated else "")
        log.info("lock acquired: this server is the one writer of schema %s", self._target.schema)
        return recovered

    async def append(self, lines: Sequence[bytes]) -> None:
        check_lines(lines)
        if not lines:
            return
        self._require_open()
        rows = [event_row(line, self._era) for line in lines]

        async def insert(conn: asyncpg.Connection) -> None:
            if len(rows) >= COPY_FROM_LINES:
                await conn.copy_records_to_table("events", records=rows, columns=EVENT_COLUMNS)
            else:
                await conn.executemany(INSERT_EVENT, rows)  # pipelined, one Sync: one transaction

        await self._writer.write(insert, partial(row_stored, probe=rows[0]))

    async def write_checkpoints(self, items: Sequence[tuple[int, int, SavedState]]) -> None:
        for box_id, _, _ in items:
            if not is_box_id(box_id):
                raise ValueError(f"a box id is an int from 0 to {MAX_STORED_BOX_ID}, got {box_id!r}")
        if not items:
            return
        self._require_open()
        states = [(box, seq, state.get("boxVersion", 0) if isinstance(state.get("boxVersion"), int) else 0,
                   orjson.dumps(state).decode()) for box, seq, state in items if not isinstance(state, Unrebuildable)]
        marks = [(box, seq, state.box_version, state.reason) for box, seq, state in items
                 if isinstance(state, Unrebuildable)]

        async def upsert(conn: asyncpg.Connection) -> None:
            if states:
                await conn.executemany(UPSERT_CHECKPOINT, states)
            if marks:
                await conn.executemany(MARK_IF_NEWER, marks)

        await self._writer.run(upsert)

    async def maintain(self, checkpoint_all: Callable[[], Awaitable[None]]) -> bool:
        return False  # a database keeps its own house

    async def read_document(self, name: str) -> Any | None:
        return await self._read(reads.read_document, name)

    async def write_document(self, name: str, value: Any) -> None:
        self._require_open()
        text = orjson.dumps(value).decode()

        async def upsert(conn: asyncpg.Connection) -> None:
            await conn.execute(UPSERT_DOCUMENT, name, text)

        async def stored(conn: asyncpg.Connection) -> bool:  # a json column keeps the text as written
            return bool(await conn.fetchval("SELECT value::text = $2 FROM documents WHERE name = $1", name, text))

        # One statement, so an answer lost is looked up like a batch's: the accounts and officials
        # in memory must be what is stored.
        await self._writer.write(upsert, stored)

    async def read_audit(self, *, limit: int, box_id: int | None, include_payload: bool) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = await self._read(reads.read_audit, limit=limit, box_id=box_id,
                                                        include_payload=include_payload)
        return result

    async def read_box_events(self, box_id: int) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = await self._read(reads.read_box_events, box_id)
        return result

    async def freeze(self) -> FrozenPoint:
        self._require_open()
        return await self._points.freeze()

    async def lay_out(self, frozen: FrozenPoint) -> DurablePoint:
        return await self._points.lay_out(frozen)

    async def release(self, frozen: FrozenPoint) -> None:
        await self._points.release(frozen)

    async def check_empty(self) -> None:
        await self._points.check_empty()

    async def adopt_backup(self, contents: BackupContents, verify: Callable[[Storage], Awaitable[None]],
                           progress: Progress | None = None) -> None:
        def staged(schema: str, folder: Path) -> Storage:
            return PostgresStorage(self._target.dsn, schema, folder, before_commit=self._before_commit)

        await self._points.adopt(contents, staged, verify, progress)

    def describe(self) -> dict[str, Any]:
        settings = self._writer.settings
        pool = self._pool
        return {
            "mode": self.mode,
            "directory": str(self.directory.resolve()),
            "database": redact(self._target.dsn),
            "schema": self._target.schema,
            "server_version": settings.get("server_version"),
            "schema_version": self._writer.schema_version,
            "settings": {"fsync": settings.get("fsync"), "synchronous_commit": "on",
                         "server_synchronous_commit": settings.get("synchronous_commit"),
                         "full_page_writes": settings.get("full_page_writes")},
            "writer": {"connected": self._writer.connected, "commits_in_doubt": self._writer.in_doubt},
            # Health says degraded while the writer has no connection, even with no write to fail.
            "degraded": self._opened and not self._writer.connected,
            "pool": {"size": pool.get_size() if pool else 0, "idle": pool.get_idle_size() if pool else 0,
                     "max": READ_POOL_SIZE},
            "audit_bytes": 0,
            "archives": 0,
        }

    async def close(self) -> None:
        await self._points.close()
        pool, self._pool = self._pool, None
        if pool is not None:
            try:
                await asyncio.wait_for(pool.close(), CLOSE_TIMEOUT_S)
            except (*UNAVAILABLE, asyncpg.PostgresError):
                pool.terminate()
        await self._writer.close()

    def _require_open(self) -> None:
        if not self._opened:
            raise RuntimeError("PostgresStorage is not open")

    async def _read(self, query: Callable[..., Awaitable[Any]], *args: Any, **kwargs: Any) -> Any:
        """One read from the pool; connections the database dropped meanwhile (a restart) are replaced."""
        self._require_open()
        assert self._pool is not None
        attempts = READ_POOL_SIZE + 1
        for attempt in range(1, attempts + 1):
            try:
                async with self._pool.acquire(timeout=5.0) as conn:
                    return await query(conn, *args, **kwargs)
            except UNAVAILABLE as exc:
                if attempt == attempts:
                    raise StorageError(f"cannot read {self.location}: {describe_error(exc)}") from exc
            except asyncpg.PostgresError as exc:
                raise StorageError(f"cannot read {self.location}: {describe_error(exc)}") from exc
        raise AssertionError("unreachable")
