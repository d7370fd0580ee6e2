"""Details of the PostgreSQL backend the contract suite does not see: migrations, the settings a
writer refuses, eras found again in a file layout, the DSN never shown with its password."""
from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg
import pytest

from persistence.errors import StorageError
from persistence.factory import StorageSettings, storage_for
from persistence.postgres.connect import redact
from persistence.postgres.rows import assign_eras
from persistence.postgres.schema import LATEST_VERSION, MIGRATIONS, SchemaTooNew, migrate
from tests.persistence.helpers import line
from tests.persistence.postgres.database import Cluster, new_schema


async def test_migrations_create_the_schema_once_and_record_each_step(postgres_url: str) -> None:
    schema = new_schema()
    conn = await asyncpg.connect(postgres_url)
    try:
        assert await migrate(conn, schema) == (LATEST_VERSION, [version for version, _, _ in MIGRATIONS])
        assert await migrate(conn, schema) == (LATEST_VERSION, [])
        recorded = await conn.fetch(f'SELECT version FROM "{schema}".schema_version ORDER BY version')
        assert [row["version"] for row in recorded] == [version for version, _, _ in MIGRATIONS]

        await conn.execute(f'INSERT INTO "{schema}".schema_version (version, description) VALUES (999, $1)', "later")
        with pytest.raises(SchemaTooNew):
            await migrate(conn, schema)
    finally:
        await conn.close()


async def test_a_server_without_fsync_is_refused(tmp_path: Path) -> None:
    cluster = await asyncio.to_thread(Cluster, "-c fsync=off")
    try:
        storage = storage_for(StorageSettings("postgres", tmp_path / "data", 0, cluster.url, "belay"))
        with pytest.raises(StorageError, match="fsync=off"):
            await storage.open(False)
        await storage.close()
    finally:
        await asyncio.to_thread(cluster.remove)


def test_a_box_seq_starting_over_in_a_file_layout_begins_the_next_era() -> None:
    lines = [line(0, 1), line(1, 1), line(0, 2), b'{"id":"a","action":"USER_ADDED"}\n', line(0, 1), line(1, 1)]

    assert [row[0] for row in assign_eras(lines)] == [1, 1, 1, 1, 2, 2]


def test_a_dsn_is_shown_without_its_password() -> None:
    assert redact("postgresql://belay:s3cret@db:5432/belay") == "postgresql://belay:***@db:5432/belay"
    assert redact("postgresql://belay@db/belay") == "postgresql://belay@db/belay"
    assert redact("postgresql://belay@db/belay?password=s3cret&sslmode=require") == (
        "postgresql://belay@db/belay?password=***&sslmode=require")
