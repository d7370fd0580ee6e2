"""Reads of a competition's schema beside its writer (or without one): no lock, nothing changed.
Each call opens its own short connection; the writer's pool is its own."""
from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import asyncpg
import orjson

from persistence.errors import StorageError
from persistence.lines import parse_line
from persistence.postgres import reads
from persistence.postgres.connect import UNAVAILABLE, Target, describe_error, lock_holder
from persistence.postgres.schema import schema_version
from persistence.types import (
    INFO,
    PROBLEM,
    Checkpoint,
    Finding,
    Holder,
    Inspection,
    StateLoader,
    StoredCheckpoint,
)

T = TypeVar("T")


class PostgresReader:
    mode = "postgres"

    def __init__(self, dsn: str, schema: str) -> None:
        self._target = Target(dsn, schema)
        self.location = self._target.location

    async def exists(self) -> bool:
        return await self._with(lambda conn: schema_version(conn, self._target.schema)) is not None

    async def holder(self) -> Holder | None:
        return await self._with(lambda conn: lock_holder(conn, self._target.schema))

    async def read_document(self, name: str) -> Any | None:
        return await self._in_schema(lambda conn: reads.read_document(conn, name), None)

    async def read_audit(self, *, limit: int, box_id: int | None, include_payload: bool) -> list[dict[str, Any]]:
        return await self._in_schema(lambda conn: reads.read_audit(conn, limit=limit, box_id=box_id,
                                                                   include_payload=include_payload), [])

    async def read_box_events(self, box_id: int) -> list[dict[str, Any]]:
        return await self._in_schema(lambda conn: reads.read_box_events(conn, box_id), [])

    async def inspect(self, load_state: StateLoader) -> Inspection:
        async def look(conn: asyncpg.Connection) -> Inspection:
            holder = await lock_holder(conn, self._target.schema)
            findings: list[Finding] = []
            checkpoints: dict[int, StoredCheckpoint] = {}
            events: dict[int, dict[int, dict[str, Any]]] = {}
            if await schema_version(conn, self._target.schema) is None:
                findings.append((INFO, f"{self.location} holds no Belay tables yet"))
                return Inspection(holder, findings, checkpoints, events, 0)
            async with conn.transaction(isolation="repeatable_read", readonly=True):
                for row in await conn.fetch("SELECT box_id, seq, state FROM checkpoints ORDER BY box_id"):
                    checkpoints[row["box_id"]] = _judge(row, load_state, findings)
                era = await reads.current_era(conn)
                rows = await conn.fetch("SELECT box_id, seq, line FROM events WHERE era = $1 ORDER BY pos", era)
                aside = await conn.fetchval("SELECT count(*) FROM set_aside")
            bad = 0
            for row in rows:
                event = parse_line(row["line"])
                if event is None:
                    bad += 1
                elif row["seq"] is not None:
                    events.setdefault(row["box_id"], {})[row["seq"]] = event
            valid = sum(1 for cp in checkpoints.values() if cp.checkpoint is not None)
            findings.append((INFO, f"{valid} of {len(checkpoints)} box checkpoint(s) parse and validate"))
            findings.append((INFO, f"{len(rows)} event(s) read from era {era} of schema {self._target.schema}"))
            if bad:
                findings.append((PROBLEM, f"{bad} stored line(s) do not parse; they are skipped at start and kept"))
            if aside:
                findings.append((INFO, f"set_aside holds {aside} checkpoint(s) set aside earlier (kept, never used)"))
            return Inspection(holder, findings, checkpoints, events, len(rows))

        return await self._with(look)

    async def _in_schema(self, query: Callable[[asyncpg.Connection], Awaitable[T]], missing: T) -> T:
        """`query` on the schema, or `missing` when it has no Belay tables yet."""
        async def run(conn: asyncpg.Connection) -> T:
            if await schema_version(conn, self._target.schema) is None:
                return missing
            return await query(conn)

        return await self._with(run)

    async def _with(self, query: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
        conn = await self._target.connect()
        try:
            return await query(conn)
        except (*UNAVAILABLE, asyncpg.PostgresError) as exc:
            raise StorageError(f"cannot read {self.location}: {describe_error(exc)}") from exc
        finally:
            await conn.close()


def _judge(row: asyncpg.Record, load_state: StateLoader, findings: list[Finding]) -> StoredCheckpoint:
    """As opening judges a checkpoint (persistence/postgres/recovery.py), without setting it aside."""
    box, seq = row["box_id"], row["seq"]
    if row["state"] is None:  # a mark: judged by the replay
        return StoredCheckpoint(None, None, seq)
    state = orjson.loads(row["state"])
    try:
        return StoredCheckpoint(Checkpoint(box, seq, load_state(state)), state, seq)
    except Exception as exc:  # whatever the rule refuses
        findings.append((PROBLEM, (f"box {box}: its checkpoint is unusable (invalid state: {exc}); a start sets it "
                                  f"aside and rebuilds the box from its events")))
        return StoredCheckpoint(None, state, seq)
