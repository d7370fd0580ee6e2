"""Edges (issue 19): a core and two edges as run.py subprocesses on a real Redis, spectators on both."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
import redis
from aiohttp import ClientSession

from tests.conftest import ROOT
from tests.redis_server import RedisServer
from tests.system.edge_cluster import (
    Cluster,
    Spectator,
    admin_session,
    get_json,
    get_state,
    health,
    init_boxes,
    progress,
    spectator_token,
    until,
)

BOXES = range(2)


@pytest.fixture
async def cluster(redis_server: RedisServer, tmp_path: Path, spawn_server) -> Cluster:
    """The processes stop with spawn_server's teardown."""
    cluster = Cluster(redis_server, tmp_path, spawn_server)
    cluster.start_core()
    cluster.start_edge()
    cluster.start_edge()
    return cluster


async def test_spectators_on_both_edges_reach_each_boxs_final_state_in_order(cluster: Cluster,
                                                                             http: ClientSession) -> None:
    aggregates = [await http.ws_connect(f"{edge.url.replace('http', 'ws', 1)}/api/public/ws") for edge in cluster.edges]
    watchers = [Spectator(http, edge.url, box, await spectator_token(http, edge.url))
                for edge in cluster.edges for box in BOXES]
    for watcher in watchers:
        await watcher.__aenter__()
    try:
        async with await admin_session(cluster.core_url) as judge:
            await init_boxes(judge, cluster.core_url, BOXES)
            for box in BOXES:
                await progress(judge, cluster.core_url, box, 5 + box)
        for watcher in watchers:
            box = watcher.box
            final = await watcher.until(lambda s, box=box: s["holdCount"] == 5 + box)
            assert final["initiated"] and final["categorie"] == f"Cat {box}"
            assert watcher.versions() == sorted(watcher.versions()), "a box never goes back"
        for ws in aggregates:  # the rankings page's socket: the first snapshot, then each box's updates
            first = orjson.loads((await ws.receive(timeout=30)).data)
            assert first["type"] == "PUBLIC_STATE_SNAPSHOT"
            initiated: set[int] = set()
            while initiated != set(BOXES):
                update = orjson.loads((await ws.receive(timeout=30)).data)
                if update["type"] in ("BOX_STATUS_UPDATE", "BOX_FLOW_UPDATE") and update["box"]["initiated"]:
                    initiated.add(update["box"]["boxId"])
    finally:
        for watcher in watchers:
            await watcher.__aexit__()
        for ws in aggregates:
            await ws.close()


async def test_edges_answer_the_public_http_as_the_core_does(cluster: Cluster, http: ClientSession) -> None:
    async with await admin_session(cluster.core_url) as admin:
        await init_boxes(admin, cluster.core_url, BOXES)
        await progress(admin, cluster.core_url, 1, 2)
        async with admin.post(f"{cluster.core_url}/api/admin/competition_officials",
                              json={"judgeChief": "Ana Pop", "competitionDirector": "Dan"}) as response:
            assert response.status == 200
    token = await spectator_token(http, cluster.edges[0].url)  # one key: an edge's token works everywhere
    urls = [cluster.core_url, *(edge.url for edge in cluster.edges)]
    for path in (f"/api/public/boxes?token={token}", f"/api/public/officials?token={token}",
                 "/api/public/rankings", f"/api/public/rankings?token={token}"):
        expected = await get_json(http, cluster.core_url + path)
        assert expected[0] == 200
        for url in urls[1:]:
            async def same(url: str = url, path: str = path, expected: tuple[int, object] = expected) -> bool:
                return await get_json(http, url + path) == expected
            await until(same, f"{url}{path} answers as the core")
    # The refusals are the same too.
    for url in urls:
        assert await get_json(http, f"{url}/api/public/boxes") == (401, {"detail": "token_required"})
        assert (await get_json(http, f"{url}/api/public/boxes?token=forged"))[0] == 401


async def test_commands_sent_to_an_edge_are_refused(cluster: Cluster, http: ClientSession) -> None:
    edge = cluster.edges[0].url
    detail = {"detail": "this is an edge; commands go to the core"}
    async with http.post(f"{edge}/api/cmd", json={"boxId": 0, "type": "START_TIMER"}) as response:
        assert (response.status, await response.json()) == (421, detail)
    for path in ("/api/state/0", "/api/admin/audit/events", "/api/auth/me", "/status/summary"):
        assert await get_json(http, edge + path) == (421, detail)
    async with http.post(f"{edge}/api/auth/login", json={"username": "admin", "password": "x"}) as response:
        assert response.status == 421
    assert (await health(http, edge))["role"] == "edge"


async def test_redis_killed_and_restarted_the_core_keeps_scoring_and_edges_catch_up(
        cluster: Cluster, http: ClientSession) -> None:
    if not cluster.redis.restartable:
        pytest.skip("BELAY_TEST_REDIS_URL names a Redis this test cannot kill")
    edge = cluster.edges[0].url
    async with await admin_session(cluster.core_url) as judge:
        await init_boxes(judge, cluster.core_url, BOXES)
        async with Spectator(http, edge, 0, await spectator_token(http, edge)) as watcher:
            await watcher.until(lambda s: s["initiated"])
            cluster.redis.kill()
            await progress(judge, cluster.core_url, 0, 4)  # every command still answered 200

            async def edge_stale() -> bool:
                return (await health(http, edge))["status"] == "stale"
            await until(edge_stale, "the edge says it is stale")
            assert (await health(http, cluster.core_url))["details"]["redis"]["connected"] is False
            # Meanwhile the edge serves the last state it has.
            status, rankings = await get_json(http, f"{edge}/api/public/rankings")
            assert status == 200 and [box["initiated"] for box in rankings["boxes"]] == [True, True]

            cluster.redis.start()  # empty: Redis saved nothing
            final = await watcher.until(lambda s: s["holdCount"] == 4)
            assert watcher.versions() == sorted(watcher.versions())
            assert final["boxVersion"] == (await get_state(judge, cluster.core_url, 0))["boxVersion"]

            async def edge_fresh() -> bool:
                return (await health(http, edge))["status"] == "ok"
            await until(edge_fresh, "the edge is in step again")
            assert (await health(http, cluster.core_url))["details"]["redis"]["connected"] is True


async def test_an_edge_killed_and_restarted_serves_the_latest_state(cluster: Cluster, http: ClientSession) -> None:
    async with await admin_session(cluster.core_url) as judge:
        await init_boxes(judge, cluster.core_url, BOXES)
        cluster.edges[0].kill()
        await progress(judge, cluster.core_url, 1, 3)
    edge = cluster.start_edge().url
    async with Spectator(http, edge, 1, await spectator_token(http, edge)) as watcher:
        first = await watcher.until(lambda s: True)
        assert first["holdCount"] == 3 and first["initiated"]


async def test_core_restarted_gives_a_new_epoch_and_a_reset_box_disappears_from_the_edges(
        cluster: Cluster, http: ClientSession) -> None:
    edge = cluster.edges[1].url
    token = await spectator_token(http, edge)
    async with await admin_session(cluster.core_url) as judge:
        await init_boxes(judge, cluster.core_url, BOXES)
        await progress(judge, cluster.core_url, 0, 2)
    first_epoch = await core_epoch(http, cluster.core_url)

    async def edge_boxes() -> list[int]:
        status, body = await get_json(http, f"{edge}/api/public/boxes?token={token}")
        assert status == 200
        return [box["boxId"] for box in body["boxes"]]

    async def edge_has(boxes: list[int]) -> bool:
        return await edge_boxes() == boxes

    await until(lambda: edge_has([0, 1]), "both boxes on the edge")
    async with Spectator(http, edge, 0, token) as watcher:
        await watcher.until(lambda s: s["holdCount"] == 2)
        assert cluster.core is not None and cluster.core.terminate() == 0
        cluster.start_core()  # same storage: the same boxes, a new epoch
        second_epoch = await core_epoch(http, cluster.core_url)
        assert second_epoch > first_epoch

        async def edge_epoch() -> bool:
            return (await health(http, edge))["redis"]["epoch"] == second_epoch
        await until(edge_epoch, "the edge follows the new core")
        assert await edge_boxes() == [0, 1]

        assert cluster.core.terminate() == 0
        cluster.start_core(RESET_BOXES_ON_START="1")  # a clean start: every box is gone
        await until(lambda: edge_has([]), "the reset boxes disappear from the edge")
        gone = await watcher.until(lambda s: not s["initiated"])
        assert gone["holdCount"] == 0
    assert not any(key.startswith(f"{cluster.redis.prefix}:box:".encode())
                   for key in cluster.redis.client().scan_iter(match=f"{cluster.redis.prefix}:*"))


async def core_epoch(http: ClientSession, url: str) -> int:
    """The core's epoch once it has reached Redis (it starts serving without waiting for it)."""
    async def epoch() -> int | None:
        return (await health(http, url))["details"]["redis"]["epoch"]  # type: ignore[no-any-return]
    return await until(epoch, "the core publishes")  # type: ignore[no-any-return]


def test_an_edges_redis_account_can_read_but_never_write(redis_server: RedisServer) -> None:
    edge_url = redis_server.add_edge_account()
    key = f"{redis_server.prefix}:box:1"
    with redis_server.client() as core:
        core.set(key, b"{}")
    with redis_server.client(edge_url) as edge:
        assert edge.get(key) == b"{}"
        for write in (lambda: edge.set(key, b"x"), lambda: edge.delete(key), lambda: edge.publish(key, b"x"),
                      lambda: edge.get("another-prefix:box:1"), lambda: edge.eval("return 1", 0),
                      edge.flushall):
            with pytest.raises(redis.exceptions.NoPermissionError):
                write()
    with redis_server.client() as core:
        assert core.get(key) == b"{}"


def test_an_edge_refuses_to_start_with_the_login_key_in_its_environment(tmp_path: Path) -> None:
    env = {**os.environ, "JWT_SECRET": "x" * 40, "SPECTATOR_JWT_SECRET": "y" * 40}
    done = subprocess.run([sys.executable, str(ROOT / "run.py"), "edge", "--redis-url", "redis://127.0.0.1:1"],
                          cwd=ROOT, env=env, capture_output=True, timeout=60, check=False)
    assert done.returncode == 2
    assert b"JWT_SECRET is set: an edge must not hold the key that signs login tokens" in done.stderr
