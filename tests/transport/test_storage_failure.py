"""Disk full and I/O errors through the fault-injecting file-system layer (a real directory)."""
from __future__ import annotations

import asyncio
import errno
from collections.abc import AsyncIterator
from pathlib import Path

import orjson
import pytest
from aiohttp.test_utils import TestClient

from persistence.fs import FaultyFileSystem
from tests.conftest import assert_silent, make_config, serving
from tests.transport.test_live_protocol import command, init_route, next_json, post, state
from tests.transport.ws.test_fanout_order import HeldDisk
from transport.app import create_app


@pytest.fixture
def fs() -> FaultyFileSystem:
    return FaultyFileSystem()


@pytest.fixture
async def faulty_client(tmp_path: Path, fs: FaultyFileSystem) -> AsyncIterator[TestClient]:
    app = create_app(make_config(tmp_path / "data"), fs=fs)
    async with serving(app) as client:
        yield client


def log_lines(tmp_path: Path) -> list[dict]:
    raw = (tmp_path / "data" / "events.ndjson").read_bytes()
    assert raw == b"" or raw.endswith(b"\n"), "the log must end at a committed line"
    return [orjson.loads(line) for line in raw.splitlines()]


async def test_disk_full_on_append_answers_503_and_recovers(faulty_client: TestClient, fs: FaultyFileSystem,
                                                            tmp_path: Path) -> None:
    client = faulty_client
    assert (await post(client, init_route()))[0] == 200
    ws = await client.ws_connect("/api/ws/0")
    await next_json(ws)
    before = await state(client)

    fs.inject("write_all", errno.ENOSPC, path_contains="events.ndjson", partial=17)
    status, body = await command(client, 0, "PROGRESS_UPDATE", delta=1)
    assert (status, body) == (503, {"detail": "storage_unavailable"})
    await assert_silent(ws)
    assert await state(client) == {**before, "remaining": before["remaining"]}
    assert [e["boxVersion"] for e in log_lines(tmp_path)] == [1]
    health = await (await client.get("/api/health")).json()
    assert health["status"] == "degraded" and health["storage"]["degraded"] is True
    assert (await client.get("/api/health/ready")).status == 503

    status, _ = await command(client, 0, "PROGRESS_UPDATE", delta=1)
    assert status == 200
    assert (await next_json(ws))["type"] == "PROGRESS_UPDATE"
    after = await state(client)
    assert after["holdCount"] == 1 and after["boxVersion"] == before["boxVersion"] + 1
    assert [e["boxVersion"] for e in log_lines(tmp_path)] == [1, 2]
    assert (await (await client.get("/api/health")).json())["status"] == "ok"
    await ws.close()


async def test_fsync_failure_then_success_loses_nothing_acknowledged(faulty_client: TestClient,
                                                                     fs: FaultyFileSystem, tmp_path: Path) -> None:
    client = faulty_client
    assert (await post(client, init_route()))[0] == 200
    assert (await command(client, 0, "PROGRESS_UPDATE", delta=1))[0] == 200

    fs.inject("fdatasync", errno.EIO, path_contains="events.ndjson")
    status, body = await command(client, 0, "PROGRESS_UPDATE", delta=1)
    assert (status, body) == (503, {"detail": "storage_unavailable"})
    # The failed batch was cut off: a later successful fsync proves nothing about it.
    assert [e["boxVersion"] for e in log_lines(tmp_path)] == [1, 2]

    assert (await command(client, 0, "PROGRESS_UPDATE", delta=1))[0] == 200
    assert (await state(client))["holdCount"] == 2
    assert [e["boxVersion"] for e in log_lines(tmp_path)] == [1, 2, 3]


async def test_failures_under_concurrent_boxes_never_acknowledge_a_lost_event(
        faulty_client: TestClient, fs: FaultyFileSystem, tmp_path: Path) -> None:
    client = faulty_client
    for box in range(6):
        assert (await post(client, init_route(box)))[0] == 200
    fs.inject("fdatasync", errno.EIO, path_contains="events.ndjson", skip=2, times=2)
    acknowledged: list[tuple[int, int]] = []

    async def drive(box: int) -> None:
        for _ in range(6):
            status, _ = await command(client, box, "PROGRESS_UPDATE", delta=1)
            assert status in (200, 503)
            if status == 200:
                acknowledged.append((box, (await state(client, box))["boxVersion"]))

    await asyncio.gather(*(drive(box) for box in range(6)))
    logged = {(e["boxId"], e["boxVersion"]) for e in log_lines(tmp_path)}
    assert set(acknowledged) <= logged
    for box in range(6):
        live = await state(client, box)
        assert (box, live["boxVersion"]) in logged


async def test_a_box_decides_nothing_new_while_an_early_answered_event_is_not_durable(tmp_path: Path) -> None:
    """A clock sync on a paused clock is answered before its fdatasync. The box's next command,
    even one that needs no disk, is decided only once that event is durable: it must never build
    on an event that may still be lost."""
    disk = HeldDisk()
    async with serving(create_app(make_config(tmp_path / "data", rate_limits=False), fs=disk)) as client:
        assert (await post(client, init_route(0)))[0] == 200
        disk.free.clear()
        assert await asyncio.wait_for(command(client, 0, "TIMER_SYNC", remaining=200), 2) == (200, {"status": "ok"})
        following = asyncio.create_task(command(client, 0, "TIMER_SYNC", remaining=199))
        await asyncio.sleep(0.3)
        assert not following.done()
        disk.free.set()
        assert await asyncio.wait_for(following, 2) == (200, {"status": "ok"})
        # `following` was answered early too, maybe before its write: a durable command after it
        # is acknowledged only once everything before it in the log is on disk.
        assert (await command(client, 0, "PROGRESS_UPDATE", delta=1))[0] == 200
        assert [e["action"] for e in log_lines(tmp_path)] == ["INIT_ROUTE", "TIMER_SYNC", "TIMER_SYNC",
                                                             "PROGRESS_UPDATE"]
