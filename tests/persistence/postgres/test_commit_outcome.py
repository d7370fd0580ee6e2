"""A COMMIT whose answer never came is never guessed: Belay looks it up for COMMIT_READBACK_S, then
answers 503 storage_unavailable and keeps the box at box_unavailable until the database says.
A batch found committed is applied and broadcast; one that was not leaves the box as it was. A
document (accounts, officials) is looked up the same way."""
from __future__ import annotations

import asyncio
from pathlib import Path

from aiohttp.test_utils import TestClient

from tests.conftest import serving
from tests.persistence.postgres.database import Cluster, Proxy, database_name, new_schema
from tests.persistence.postgres.servers import hold_sql, postgres_config, writer_pid
from tests.persistence.postgres.test_server_on_postgres import UNAVAILABLE, sql, wait_for_sleep
from tests.transport.test_live_protocol import command, init_route, next_of, post, state
from transport.app import create_app

BOX_UNAVAILABLE = {"detail": "box_unavailable"}


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
            proxy.lose_answer_after(b'"action":"PROGRESS_UPDATE"')

            assert await command(client, 0, "PROGRESS_UPDATE", delta=1) == (503, UNAVAILABLE)
            assert proxy.answer_lost.is_set()
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
            await sql(cluster.url, schema, hold_sql(at_commit=True))
            await sql(cluster.url, schema, "UPDATE hold SET active = true")
            reply = asyncio.create_task(command(client, 0, "PROGRESS_UPDATE", delta=1))
            await wait_for_sleep(cluster.url, await writer_pid(cluster.url, schema))

            await asyncio.to_thread(cluster.stop, "immediate")  # inside the COMMIT
            assert await reply == (503, UNAVAILABLE)
            again = {"boxId": 0, "type": "PROGRESS_UPDATE", "delta": 1, "sessionId": before["sessionId"]}
            assert await post(client, again) == (503, BOX_UNAVAILABLE)

            await asyncio.to_thread(cluster.start)
            await sql(cluster.url, schema, "UPDATE hold SET active = false")
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


async def test_a_document_write_whose_answer_was_lost_is_looked_up_and_counts_once_found(
    tmp_path: Path, postgres_url: str
) -> None:
    """The officials (like the accounts) in memory must be what is stored: a write that committed
    while its answer was lost is found and answered "ok", not refused with the change stored."""
    proxy = Proxy(5432)
    await proxy.start()
    schema = new_schema()
    try:
        async with serving(create_app(postgres_config(tmp_path / "data", proxy.url(database_name(postgres_url)),
                                                      schema))) as client:
            proxy.lose_answer_after(b"Answer Lost Judge")

            async def reachable_again() -> None:  # the database answers again before the lookup gives up
                await proxy.answer_lost.wait()
                proxy.accept()

            reopening = asyncio.create_task(reachable_again())
            response = await client.post("/api/admin/competition_officials", json={"judgeChief": "Answer Lost Judge"})
            await reopening
            assert response.status == 200, await response.text()
            shown = await (await client.get("/api/admin/competition_officials")).json()
            assert shown["judgeChief"] == "Answer Lost Judge"
    finally:
        await proxy.close()
    stored = await sql(postgres_url, schema, "SELECT value::text FROM documents WHERE name = $1", "officials")
    assert "Answer Lost Judge" in stored
