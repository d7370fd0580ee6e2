"""The core's publisher against a real Redis: what it writes, and that a dead Redis costs the
commands nothing."""
from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestClient

from tests.conftest import make_config, serving
from tests.redis_server import RedisServer
from transport.app import create_app
from transport.broker.wire import Names, decode_box, decode_control, decode_officials

INIT = {"boxId": 1, "type": "INIT_ROUTE", "routeIndex": 1, "holdsCount": 10, "categorie": "Seniors",
        "competitors": [{"nume": "Ana"}, {"nume": "Bea"}]}


async def command(client: TestClient, body: dict[str, Any]) -> None:
    state = await (await client.get(f"/api/state/{body['boxId']}")).json()
    response = await client.post("/api/cmd", json={"sessionId": state["sessionId"], "boxVersion": state["boxVersion"],
                                                   **body})
    assert response.status == 200, await response.text()


async def eventually(check: Callable[[], Any]) -> Any:
    for _ in range(400):
        result = check()
        if result:
            return result
        await asyncio.sleep(0.025)
    raise AssertionError("never happened")


async def test_each_commit_is_stored_and_published_as_the_spectators_see_it(redis_server: RedisServer,
                                                                           tmp_path: Path) -> None:
    names = Names(redis_server.prefix)
    redis = redis_server.client()
    listener = redis.pubsub()
    listener.subscribe(names.box(1))
    config = make_config(tmp_path / "data", redis_url=redis_server.add_core_account(), redis_prefix=names.prefix)
    async with serving(create_app(config)) as client:
        await eventually(lambda: redis.get(names.control))
        await command(client, INIT)
        await command(client, {"boxId": 1, "type": "PROGRESS_UPDATE", "delta": 1})
        state = await (await client.get("/api/state/1")).json()
        stored = await eventually(lambda: (raw := redis.get(names.box(1))) and
                                  decode_box(raw).box_version == state["boxVersion"] and decode_box(raw))
        assert stored.snapshot == {**state, "remaining": stored.snapshot["remaining"]}
        assert stored.public["categorie"] == "Seniors" and stored.kind == "BOX_FLOW_UPDATE"
        assert stored.timer_ends_at_ms is None
        control = decode_control(redis.get(names.control))
        assert control.boxes == (1,) and control.epoch == stored.epoch == int(redis.get(names.epoch))
        published = [decode_box(m["data"]) for m in iter(lambda: listener.get_message(timeout=1), None)
                     if m["type"] == "message"]
        assert published and published[-1] == stored
        assert [r.order for r in published] == sorted(r.order for r in published)

        response = await client.post("/api/admin/competition_officials", json={"judgeChief": "Dan"})
        assert response.status == 200
        await eventually(lambda: decode_officials(redis.get(names.officials)).officials["judgeChief"] == "Dan")
        await eventually(lambda: decode_box(redis.get(names.box(1))).snapshot["judgeChief"] == "Dan")


async def test_a_start_takes_a_new_epoch_and_removes_boxes_that_no_longer_exist(redis_server: RedisServer,
                                                                               tmp_path: Path) -> None:
    names = Names(redis_server.prefix)
    redis = redis_server.client()
    redis.set(names.epoch, 10**15)  # a core that started "later": the new epoch still goes above it
    redis.set(names.box(9), b"{}")
    config = make_config(tmp_path / "data", redis_url=redis_server.url, redis_prefix=names.prefix)
    async with serving(create_app(config)):
        control = await eventually(lambda: (raw := redis.get(names.control)) and decode_control(raw))
        assert control.epoch == 10**15 + 1 and control.boxes == ()
        assert redis.get(names.box(9)) is None


@pytest.mark.parametrize("where", ["nothing listens", "a port that is no number"])
async def test_commands_are_answered_while_redis_is_unreachable(tmp_path: Path, unused_tcp_port: int,
                                                                where: str) -> None:
    port = unused_tcp_port if where == "nothing listens" else "eighty"
    config = make_config(tmp_path / "data", redis_url=f"redis://127.0.0.1:{port}/0")
    async with serving(create_app(config)) as client:
        for _ in range(3):
            await command(client, INIT)
        reports: list[dict[str, Any]] = []

        async def health() -> dict[str, Any]:
            body = orjson.loads(await (await client.get("/health")).read())
            reports.append(body)
            return body  # type: ignore[no-any-return]

        while (await health())["details"]["redis"]["last_error"] is None:
            await asyncio.sleep(0.025)
        assert reports[-1]["status"] == "ok"  # the commands are fine; only the edges' feed is not
        assert reports[-1]["details"]["redis"]["connected"] is False


async def test_a_redis_that_restarted_empty_gets_everything_again_without_a_command(redis_server: RedisServer,
                                                                                   tmp_path: Path) -> None:
    """redis-py reconnects by itself, so only the publisher's periodic check sees the loss."""
    if not redis_server.restartable:
        pytest.skip("BELAY_TEST_REDIS_URL names a Redis this test cannot restart")
    names = Names(redis_server.prefix)
    config = make_config(tmp_path / "data", redis_url=redis_server.add_core_account(), redis_prefix=names.prefix)
    async with serving(create_app(config)) as client:
        await command(client, INIT)
        redis = redis_server.client()
        await eventually(lambda: redis.get(names.box(1)))
        redis_server.kill()
        redis_server.start()
        redis = redis_server.client()
        assert redis.get(names.control) is None
        await eventually(lambda: redis.get(names.control) and redis.get(names.box(1)))
