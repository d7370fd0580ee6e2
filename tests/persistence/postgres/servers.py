"""A Belay app or `run.py` on PostgreSQL for the tests: its config, its environment, its log."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import asyncpg
import orjson

from tests.conftest import make_config
from tests.persistence.postgres.database import run
from transport.config import Config


def postgres_config(storage_dir: Path, url: str, schema: str, **overrides: object) -> Config:
    return make_config(storage_dir, storage_mode="postgres", database_url=url, database_schema=schema, **overrides)


def postgres_env(url: str, schema: str) -> dict[str, str]:
    """For `run.py` in a subprocess (tests.conftest.spawn_server)."""
    return {"STORAGE_MODE": "postgres", "DATABASE_URL": url, "DATABASE_SCHEMA": schema}


async def stored_events(url: str, schema: str) -> list[dict[str, Any]]:
    """Every stored line of the schema, in commit order (what the JSON tests read from the log file)."""
    conn = await asyncpg.connect(url, server_settings={"search_path": schema})
    try:
        return [orjson.loads(row["line"]) for row in await conn.fetch("SELECT line FROM events ORDER BY pos")]
    finally:
        await conn.close()


def stored_events_now(url: str, schema: str) -> list[dict[str, Any]]:
    """`stored_events` from synchronous code, even inside a running loop."""
    return run(stored_events(url, schema))


async def writer_pid(url: str, schema: str) -> int:
    """The backend pid of the session holding the schema's writer lock."""
    conn = await asyncpg.connect(url)
    try:
        raw = await conn.fetchval(f'SELECT value FROM "{schema}".metadata WHERE key = $1', "writer")
        return int(orjson.loads(raw)["backend_pid"])
    finally:
        await conn.close()
