"""The reads of a competition's schema, the same for its writer and for a reader beside it. Each
is one indexed query: the newest N by the commit order (`events_pkey`, or `events_box_pos` for a
box), a box's events by (era, box, seq)."""
from __future__ import annotations

from typing import Any

import asyncpg
import orjson

from persistence.lines import parse_line
from persistence.postgres.schema import ERA_KEY
from persistence.types import audit_item


async def current_era(conn: asyncpg.Connection) -> int:
    return int(orjson.loads(await conn.fetchval("SELECT value FROM metadata WHERE key = $1", ERA_KEY)))


async def read_audit(conn: asyncpg.Connection, *, limit: int, box_id: int | None,
                     include_payload: bool) -> list[dict[str, Any]]:
    if limit <= 0:
        return []
    if box_id is None:
        rows = await conn.fetch("SELECT line FROM events ORDER BY pos DESC LIMIT $1", limit)
    else:
        rows = await conn.fetch("SELECT line FROM events WHERE box_id = $1 ORDER BY pos DESC LIMIT $2", box_id, limit)
    items = []
    for row in rows:
        event = parse_line(row["line"])
        if event is not None:
            items.append(audit_item(event, include_payload))
    return items


async def read_box_events(conn: asyncpg.Connection, box_id: int) -> list[dict[str, Any]]:
    rows = await conn.fetch("SELECT line FROM events WHERE era = (SELECT value::int FROM metadata WHERE key = $1) "
                            "AND box_id = $2 AND seq IS NOT NULL ORDER BY seq", ERA_KEY, box_id)
    return [event for row in rows if (event := parse_line(row["line"])) is not None]


async def read_document(conn: asyncpg.Connection, name: str) -> Any | None:
    raw = await conn.fetchval("SELECT value FROM documents WHERE name = $1", name)
    return orjson.loads(raw) if raw is not None else None
