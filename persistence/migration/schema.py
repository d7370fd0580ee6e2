"""A competition's schema read whole into a Competition, written from one in the caller's single
transaction, and its digest computed by the database itself (so the comparison is between what
each side holds, not between two copies in this process).

Writing: the schema is created (migrations), the events' indexes are dropped, the lines go in by
COPY, and the indexes are built again from their own definitions, all in the caller's transaction,
so a failure anywhere leaves the database as it was.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Final

import asyncpg
import orjson

from persistence.errors import StorageError, StorageLocked, StorageNotEmpty
from persistence.migration.competition import (
    BoxDigest,
    Competition,
    Digest,
    SetAside,
    StoredBox,
    checkpoint_digest,
    value_digest,
)
from persistence.postgres.connect import (
    UNAVAILABLE,
    Target,
    check_durable,
    describe_error,
    lock_holder,
    read_settings,
    record_writer,
    try_lock,
)
from persistence.postgres.load import CHECKPOINT_SQL
from persistence.postgres.reads import current_era
from persistence.postgres.recovery import MARK_SQL
from persistence.postgres.rows import EVENT_COLUMNS
from persistence.postgres.schema import ERA_KEY, MIGRATION_KEY_PREFIX, migrate, schema_version
from persistence.types import DOCUMENTS

FETCH_ROWS: Final = 20_000
COPY_ROWS: Final = 50_000  # rows per COPY: the progress bar moves between them
Tick = Callable[[int], None]
Timings = dict[str, float]


class SchemaSide:
    """A competition's schema as either side of a migration, through one connection that holds the
    schema's one-writer lock from `open_*` to `close` (no server starts on it meanwhile). As the
    target everything is written in one transaction, committed by `commit` only."""

    def __init__(self, dsn: str, schema: str) -> None:
        self._target = Target(dsn, schema)
        self.schema = schema
        self.location = self._target.location
        self._conn: asyncpg.Connection | None = None
        self._transaction: Any = None

    async def open_source(self, lock: bool) -> None:
        conn = await self._connect(lock)
        if await schema_version(conn, self.schema) is None:
            raise StorageError(f"{self.location} holds no Belay competition (check --from and --schema)")
        await conn.execute(f'SET search_path TO "{self.schema}"')
        if lock:  # a server that tries to start meanwhile names this process as the holder
            await record_writer(conn)

    async def open_target(self, lock: bool) -> None:
        conn = await self._connect(lock, writer=True)  # its COMMIT waits for the disk, as a server's do
        check_durable(await read_settings(conn), self.location)
        if not await is_empty(conn, self.schema):
            raise StorageNotEmpty(f"{self.location} is not empty; migrate only into a new or empty schema "
                                  f"(nothing was changed)")

    async def _connect(self, lock: bool, *, writer: bool = False) -> asyncpg.Connection:
        self._conn = conn = await self._target.connect(writer=writer)
        if lock:
            locked = await try_lock(conn, self.schema)
        else:  # a dry run only asks
            locked = await lock_holder(conn, self.schema) is None
        if not locked:
            found = await lock_holder(conn, self.schema)
            raise StorageLocked(f"{self.location} is in use by a Belay server ({found or 'unknown'})", found,
                                self.location)
        return conn

    async def size(self) -> int:
        return int(await self._ready().fetchval("SELECT pg_relation_size('events')"))

    async def read(self, tick: Tick | None = None) -> Competition:
        """Everything, from one snapshot (the lock keeps servers away; the snapshot, anyone else)."""
        conn = self._ready()
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            return await read_schema(conn, tick)

    async def write(self, competition: Competition, tick: Tick | None = None) -> Timings:
        conn = self._ready()
        self._transaction = conn.transaction()
        await self._transaction.start()
        return await write_schema(conn, self.schema, competition, tick)

    async def digest(self) -> Digest:
        """Computed by the database: a source's, of what is stored; a target's, of the open transaction."""
        return await digest(self._ready())

    async def commit(self, marker: dict[str, Any]) -> None:
        conn = self._ready()
        await record(conn, str(marker["at"]), marker)
        await self._transaction.commit()
        self._transaction = None

    async def record(self, marker: dict[str, Any]) -> None:
        """A source schema keeps a note of where it went, in its metadata."""
        conn = self._ready()
        try:
            async with conn.transaction():
                await record(conn, str(marker["at"]), marker)
        except (*UNAVAILABLE, asyncpg.PostgresError) as exc:
            raise StorageError(f"cannot record the migration in {self.location}: {describe_error(exc)}") from exc

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            if self._transaction is not None:
                await self._transaction.rollback()
        finally:
            self._transaction = None
            await conn.close()  # the lock goes with the session

    def _ready(self) -> asyncpg.Connection:
        assert self._conn is not None, "open the side first"
        return self._conn


async def is_empty(conn: asyncpg.Connection, schema: str) -> bool:
    if await schema_version(conn, schema) is None:
        return not await conn.fetchval("SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                                       "WHERE n.nspname = $1", schema)
    return not await conn.fetchval(
        f'SELECT EXISTS (SELECT 1 FROM "{schema}".events) OR EXISTS (SELECT 1 FROM "{schema}".checkpoints) '
        f'OR EXISTS (SELECT 1 FROM "{schema}".documents) OR EXISTS (SELECT 1 FROM "{schema}".set_aside)')


# -- reading -------------------------------------------------------------------------------------------

async def read_schema(conn: asyncpg.Connection, tick: Tick | None = None) -> Competition:
    """Everything in the connection's schema, in the caller's (repeatable read) transaction."""
    competition = Competition(era=await current_era(conn))
    done = 0
    async for row in conn.cursor(f"SELECT {', '.join(EVENT_COLUMNS)} FROM events ORDER BY pos", prefetch=FETCH_ROWS):
        competition.rows.append(tuple(row))
        done += len(row["line"])
        if tick is not None and len(competition.rows) % FETCH_ROWS == 0:
            tick(done)
    for row in await conn.fetch("SELECT box_id, seq, box_version, state, unrebuildable_reason FROM checkpoints"):
        competition.checkpoints[row["box_id"]] = StoredBox(*row)
    competition.set_aside = [SetAside(*row) for row in await conn.fetch(
        "SELECT era, box_id, seq, reason, content FROM set_aside ORDER BY id")]
    for row in await conn.fetch("SELECT name, value FROM documents"):
        competition.documents[row["name"]] = orjson.loads(row["value"])
    return competition


# -- writing -------------------------------------------------------------------------------------------

async def write_schema(conn: asyncpg.Connection, schema: str, competition: Competition,
                       tick: Tick | None = None) -> Timings:
    """The competition into `schema` (new or empty), in the caller's open transaction."""
    timings: Timings = {}
    await migrate(conn, schema)  # a savepoint inside the caller's transaction
    await conn.execute(f'SET LOCAL search_path TO "{schema}"')
    indexes = await conn.fetch("SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = $1 AND tablename = "
                               "'events' AND indexname NOT LIKE '%pkey'", schema)
    for index in indexes:
        await conn.execute(f'DROP INDEX "{schema}"."{index["indexname"]}"')
    started = time.monotonic()
    done = 0
    for start in range(0, len(competition.rows), COPY_ROWS):
        chunk = competition.rows[start:start + COPY_ROWS]
        await conn.copy_records_to_table("events", records=chunk, columns=EVENT_COLUMNS)
        done += sum(len(row[6]) for row in chunk)
        if tick is not None:
            tick(done)
    timings["copy"] = time.monotonic() - started
    started = time.monotonic()
    for index in indexes:
        await conn.execute(index["indexdef"])
    timings["indexes"] = time.monotonic() - started
    await conn.execute("UPDATE metadata SET value = to_jsonb($2::int) WHERE key = $1", ERA_KEY, competition.era)
    boxes = competition.checkpoints.values()
    states = [(b.box_id, b.seq, b.box_version, b.state) for b in boxes if b.state is not None]
    marks = [(b.box_id, b.seq, b.box_version, b.unrebuildable_reason) for b in boxes if b.state is None]
    if states:
        await conn.executemany(CHECKPOINT_SQL, states)
    if marks:
        await conn.executemany(MARK_SQL, marks)
    if competition.set_aside:
        await conn.executemany("INSERT INTO set_aside (era, box_id, seq, reason, content) VALUES ($1, $2, $3, $4, $5)",
                               [(s.era, s.box_id, s.seq, s.reason, s.content) for s in competition.set_aside])
    for name in DOCUMENTS:
        if name in competition.documents:
            await conn.execute("INSERT INTO documents (name, value) VALUES ($1, $2)", name,
                               orjson.dumps(competition.documents[name]).decode())
    return timings


async def record(conn: asyncpg.Connection, key: str, value: dict[str, Any]) -> None:
    """The migration in the schema's metadata (one row per migration, in the same transaction)."""
    await conn.execute("INSERT INTO metadata (key, value) VALUES ($1, $2::jsonb) ON CONFLICT (key) DO UPDATE SET "
                       "value = excluded.value, updated_at = now()", MIGRATION_KEY_PREFIX + key,
                       orjson.dumps(value).decode())


# -- the digest, by the database -------------------------------------------------------------------

async def digest(conn: asyncpg.Connection) -> Digest:
    """The schema's digest (persistence/migration/competition.py), computed in SQL."""
    rows = await conn.fetch("SELECT era, box_id, count(*) AS n, min(seq) AS first, max(seq) AS last, "
                            "sha256(string_agg(line, ''::bytea ORDER BY seq)) AS sha FROM events "
                            "WHERE seq IS NOT NULL GROUP BY era, box_id")
    boxes = {(r["era"], r["box_id"]): BoxDigest(r["n"], r["first"], r["last"], r["sha"].hex()) for r in rows}
    audit = {r["era"]: (r["n"], r["sha"].hex()) for r in await conn.fetch(
        "SELECT era, count(*) AS n, sha256(string_agg(line, ''::bytea ORDER BY pos)) AS sha FROM events "
        "WHERE seq IS NULL GROUP BY era")}
    events = await conn.fetchval("SELECT count(*) FROM events")
    checkpoints = {r["box_id"]: checkpoint_digest(r["seq"], r["box_version"], r["state"], r["unrebuildable_reason"])
                   for r in await conn.fetch("SELECT box_id, seq, box_version, state, unrebuildable_reason "
                                             "FROM checkpoints")}
    aside = tuple(sorted(r["sha"].hex() for r in await conn.fetch("SELECT sha256(content) AS sha FROM set_aside")))
    documents = {r["name"]: value_digest(orjson.loads(r["value"]))
                 for r in await conn.fetch("SELECT name, value FROM documents")}
    return Digest(events, boxes, audit, checkpoints, aside, documents, await current_era(conn))
