"""Belay on PostgreSQL, end to end over real sockets: the same answers as in JSON mode, a restart
that brings every box back, one writer per schema, health that names the database but no password,
and the faults of a database: a session cut mid-batch, the database gone and back."""
from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from persistence.errors import StorageLocked
from tests.conftest import assert_silent, serving
from tests.persistence.postgres.database import new_schema, refuse_connections, terminate, with_database
from tests.persistence.postgres.servers import postgres_config, writer_pid
from tests.transport.test_live_protocol import command, init_route, next_of, post, state
from transport.app import create_app

UNAVAILABLE = {"detail": "storage_unavailable"}
# A trigger that holds a batch inside its transaction while `hold` is set, so a test can cut the
# writer's session in the middle of it (test-only: it lives in the test's own schema).
HOLD_SQL = """
CREATE TABLE hold (on_insert boolean NOT NULL);
INSERT INTO hold VALUES (false);
CREATE FUNCTION hold_batch() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF (SELECT on_insert FROM hold) THEN PERFORM pg_sleep(30); END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER hold_batch BEFORE INSERT ON events FOR EACH ROW EXECUTE FUNCTION hold_batch();
"""


async def sql(url: str, schema: str, text: str, *args: Any) -> Any:
    conn = await asyncpg.connect(url, server_settings={"search_path": schema})
    try:
        return await conn.fetchval(text, *args) if args else await conn.execute(text)
    finally:
        await conn.close()


async def test_commands_survive_a_restart_and_retries_stay_answered(tmp_path: Path, postgres_url: str) -> None:
    schema = new_schema()
    config = postgres_config(tmp_path / "data", postgres_url, schema)
    async with serving(create_app(config)) as client:
        assert await post(client, init_route(3)) == (200, {"status": "ok"})
        assert (await command(client, 3, "PROGRESS_UPDATE", delta=1, actionId="judge-3-1"))[0] == 200
        assert (await command(client, 3, "SUBMIT_SCORE", competitor="Ana Pop", score=12.1))[0] == 200
        before = await state(client, 3)

    async with serving(create_app(config)) as client:
        assert await state(client, 3) == before
        retried = {"boxId": 3, "type": "PROGRESS_UPDATE", "delta": 1, "actionId": "judge-3-1",
                   "sessionId": before["sessionId"]}
        assert await post(client, retried) == (200, {"status": "ok"})  # answered, not applied again
        assert (await state(client, 3))["boxVersion"] == before["boxVersion"]
        audit = await (await client.get("/api/admin/audit/events?limit=2&boxId=3")).json()
        assert [item["action"] for item in audit] == ["SUBMIT_SCORE", "PROGRESS_UPDATE"]
        users = await sql(postgres_url, schema, "SELECT count(*) FROM documents WHERE name = $1", "users")
        assert users == 1  # the accounts live in the database too


async def test_a_second_server_on_the_schema_is_refused_and_told_who_holds_it(tmp_path: Path,
                                                                             postgres_url: str) -> None:
    config = postgres_config(tmp_path / "data", postgres_url, new_schema())
    async with serving(create_app(config)):
        with pytest.raises(StorageLocked) as refused:
            async with serving(create_app(config.replace(storage_dir=tmp_path / "other"))):
                pass
    assert "pid" in str(refused.value) and refused.value.holder is not None and refused.value.holder.host


async def test_health_shows_the_database_and_its_settings_but_never_a_password(tmp_path: Path,
                                                                               postgres_url: str) -> None:
    url = postgres_url.replace("postgres@", "postgres:s3cret-word@", 1)  # trust auth ignores it
    async with serving(create_app(postgres_config(tmp_path / "data", url, new_schema()))) as client:
        report = (await (await client.get("/api/health")).json())["storage"]
        client.session.cookie_jar.clear()
        anonymous = await (await client.get("/health")).text() + await (await client.get("/api/health")).text()

    assert report["mode"] == "postgres" and report["schema_version"] >= 1
    assert report["settings"]["fsync"] == "on" and report["settings"]["synchronous_commit"] == "on"
    assert report["server_version"] and report["writer"]["connected"] is True
    assert "s3cret-word" not in str(report) and "***" in report["database"]
    assert "s3cret-word" not in anonymous and "127.0.0.1" not in anonymous


async def test_a_session_cut_mid_batch_answers_503_broadcasts_nothing_and_service_resumes(
    tmp_path: Path, postgres_url: str
) -> None:
    schema = new_schema()
    async with serving(create_app(postgres_config(tmp_path / "data", postgres_url, schema))) as client:
        assert await post(client, init_route(0)) == (200, {"status": "ok"})
        await sql(postgres_url, schema, HOLD_SQL)
        before = await state(client, 0)
        ws = await client.ws_connect("/api/ws/0")
        await next_of(ws, {"STATE_SNAPSHOT"})
        await sql(postgres_url, schema, "UPDATE hold SET on_insert = true")

        reply = asyncio.create_task(command(client, 0, "PROGRESS_UPDATE", delta=1))
        pid = await writer_pid(postgres_url, schema)
        await wait_for_sleep(postgres_url, pid)
        await terminate(postgres_url, pid)  # the batch is inside its transaction: it never commits

        assert await reply == (503, UNAVAILABLE)
        await assert_silent(ws)
        health = await (await client.get("/api/health")).json()
        assert health["status"] == "degraded"
        await sql(postgres_url, schema, "UPDATE hold SET on_insert = false")
        assert (await state(client, 0))["boxVersion"] == before["boxVersion"]

        await until_ready(client)  # reconnected by itself
        assert (await command(client, 0, "PROGRESS_UPDATE", delta=1))[0] == 200
        assert (await state(client, 0))["boxVersion"] == before["boxVersion"] + 1
        assert (await (await client.get("/api/health")).json())["status"] == "ok"
        await ws.close()


async def test_the_database_gone_and_back_answers_503_then_resumes_by_itself(tmp_path: Path,
                                                                             postgres_url: str) -> None:
    own = with_database(postgres_url, f"belay_gone_{new_schema()}")
    await sql(postgres_url, "public", f'CREATE DATABASE "{own.rsplit("/", 1)[1]}"')
    try:
        async with serving(create_app(postgres_config(tmp_path / "data", own, "belay"))) as client:
            assert await post(client, init_route(1)) == (200, {"status": "ok"})
            await refuse_connections(own, True)
            for _ in range(2):
                assert await command(client, 1, "PROGRESS_UPDATE", delta=1) == (503, UNAVAILABLE)
            assert (await (await client.get("/api/health/ready")).json())["status"] == "not_ready"
            await refuse_connections(own, False)
            await until_ready(client)  # back by itself, before any command proves it
            assert (await command(client, 1, "PROGRESS_UPDATE", delta=1))[0] == 200
            assert (await state(client, 1))["boxVersion"] == 2
    finally:
        await refuse_connections(own, False)
        await sql(postgres_url, "public", f'DROP DATABASE IF EXISTS "{own.rsplit("/", 1)[1]}" WITH (FORCE)')


async def until_ready(client: TestClient) -> None:
    for _ in range(300):
        if (await (await client.get("/api/health/ready")).json())["status"] == "ready":
            return
        await asyncio.sleep(0.05)
    raise AssertionError("health never came back")


async def wait_for_sleep(url: str, pid: int) -> None:
    """Until the writer's session sits in the trigger's pg_sleep (another process's state)."""
    for _ in range(200):
        event = await sql(url, "public", "SELECT wait_event FROM pg_stat_activity WHERE pid = $1", pid)
        if event == "PgSleep":
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the writer never reached the held batch")
