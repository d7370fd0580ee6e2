"""A COMMIT whose answer never came is never guessed: Belay looks it up for COMMIT_READBACK_S, then
answers 503 storage_unavailable and keeps the box at box_unavailable until the database says.
A batch found committed is applied and broadcast; one that was not leaves the box as it was."""
from __future__ import annotations

import asyncio
from pathlib import Path

from aiohttp.test_utils import TestClient

from tests.conftest import serving
from tests.persistence.postgres.database import Cluster, Proxy, database_name, new_schema
from tests.persistence.postgres.servers import postgres_config, writer_pid
from tests.persistence.postgres.test_server_on_postgres import UNAVAILABLE, sql, wait_for_sleep
from tests.transport.test_live_protocol import command, init_route, next_of, post, state
from transport.app import create_app

BOX_UNAVAILABLE = {"detail": "box_unavailable"}
# Holds a COMMIT (deferred triggers run inside it) while `hold` is set: test-only, in the test's schema.
HOLD_COMMIT_SQL = """
CREATE TABLE hold (at_commit boolean NOT NULL);
INSERT INTO hold VALUES (false);
CREATE FUNCTION hold_commit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF (SELECT at_commit FROM hold) THEN PERFORM pg_sleep(60); END IF;
    RETURN NEW;
END $$;
CREATE CONSTRAINT TRIGGER hold_commit AFTER INSERT ON events DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION hold_commit();
"""


async def unavailable_boxes(client: TestClient) -> list[int]:
    return list((await (await client.get("/api/health")).json())["storage"]["unavailable_boxes"])


async def test_a_commit_whose_answer_was_lost_is_applied_and_broadcast_once_the_database_says(
    tmp_path: Path, postgres_url: str
) -> None:
    proxy = Proxy(5432)
    await proxy.start()
    url = proxy.url(database_name(postgres_url))
    try:
        async with serving(create_app(postgres_config(tmp_path / "data", url, new_schema()))) as client:
            assert await post(client, init_route(0)) == (200, {"status": "ok"})
            before = await state(client, 0)
            ws = await client.ws_connect("/api/ws/0")
            await next_of(ws, {"STATE_SNAPSHOT"})
            proxy.lose_next_commit_answer()

            assert await command(client, 0, "PROGRESS_UPDATE", delta=1) == (503, UNAVAILABLE)
            assert proxy.commit_dropped.is_set()
            again = {"boxId": 0, "type": "PROGRESS_UPDATE", "delta": 1, "sessionId": before["sessionId"]}
            assert await post(client, again) == (503, BOX_UNAVAILABLE)
            assert await unavailable_boxes(client) == [0]

            proxy.accept()  # the database is reachable again: it says the batch committed
            snapshot = await next_of(ws, {"STATE_SNAPSHOT"}, timeout=20)
            assert snapshot["boxVersion"] == before["boxVersion"] + 1
            assert (await state(client, 0))["boxVersion"] == before["boxVersion"] + 1
            assert await unavailable_boxes(client) == []
            assert (await command(client, 0, "PROGRESS_UPDATE", delta=1))[0] == 200
            audit = await (await client.get("/api/admin/audit/events?boxId=0")).json()
            assert [item["boxVersion"] for item in audit] == [3, 2, 1]
            await ws.close()
    finally:
        await proxy.close()


async def test_the_database_stopped_during_a_commit_and_restarted_leaves_the_box_as_it_was(
    tmp_path: Path
) -> None:
    cluster = await asyncio.to_thread(Cluster)
    try:
        schema = new_schema()
        async with serving(create_app(postgres_config(tmp_path / "data", cluster.url, schema))) as client:
            assert await post(client, init_route(0)) == (200, {"status": "ok"})
            before = await state(client, 0)
            await sql(cluster.url, schema, HOLD_COMMIT_SQL)
            await sql(cluster.url, schema, "UPDATE hold SET at_commit = true")
            reply = asyncio.create_task(command(client, 0, "PROGRESS_UPDATE", delta=1))
            await wait_for_sleep(cluster.url, await writer_pid(cluster.url, schema))

            await asyncio.to_thread(cluster.stop, "immediate")  # inside the COMMIT
            assert await reply == (503, UNAVAILABLE)
            again = {"boxId": 0, "type": "PROGRESS_UPDATE", "delta": 1, "sessionId": before["sessionId"]}
            assert await post(client, again) == (503, BOX_UNAVAILABLE)

            await asyncio.to_thread(cluster.start)
            await sql(cluster.url, schema, "UPDATE hold SET at_commit = false")
            for _ in range(200):
                if not await unavailable_boxes(client):
                    break
                await asyncio.sleep(0.1)
            assert await unavailable_boxes(client) == []
            assert await state(client, 0) == before  # it never committed
            assert (await command(client, 0, "PROGRESS_UPDATE", delta=1))[0] == 200
            assert (await state(client, 0))["boxVersion"] == before["boxVersion"] + 1
    finally:
        await asyncio.to_thread(cluster.remove)
