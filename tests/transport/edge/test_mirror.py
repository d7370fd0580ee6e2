"""An edge's mirror against a real Redis, with the core played by hand: what it keeps and serves."""
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from tests.redis_server import RedisServer
from transport.broker.wire import BoxRecord, Control, Names, OfficialsRecord
from transport.edge.mirror import EdgeMirror
from transport.ws.hub import Hub

NOW_MS = 1_800_000_000_000


def record(epoch: int, version: int, n: int, *, box_id: int = 1, ends_at: int | None = None,
           remaining: float = 240.0) -> BoxRecord:
    snapshot = {"type": "STATE_SNAPSHOT", "boxId": box_id, "initiated": True, "boxVersion": version,
                "remaining": remaining, "timerState": "running" if ends_at else "idle"}
    public = {"boxId": box_id, "initiated": True, "remaining": remaining}
    return BoxRecord(epoch, n, box_id, version, "BOX_FLOW_UPDATE", ends_at, snapshot, public)


class Core:
    """Writes and publishes records the way transport/broker/publisher.py does."""

    def __init__(self, redis: RedisServer) -> None:
        self.names = Names(redis.prefix)
        self.client = redis.client()

    def control(self, epoch: int, boxes: tuple[int, ...]) -> None:
        raw = Control(epoch, boxes, ()).encode()
        self.client.set(self.names.control, raw)
        self.client.publish(self.names.control, raw)

    def box(self, rec: BoxRecord) -> None:
        raw = rec.encode()
        self.client.set(self.names.box(rec.box_id), raw)
        self.client.publish(self.names.box(rec.box_id), raw)

    def officials(self, rec: OfficialsRecord) -> None:
        raw = rec.encode()
        self.client.set(self.names.officials, raw)
        self.client.publish(self.names.officials, raw)


@pytest.fixture
async def mirror(redis_server: RedisServer) -> AsyncIterator[EdgeMirror]:
    edge = EdgeMirror(redis_server.add_edge_account(), redis_server.prefix, Hub(), now_ms=lambda: NOW_MS)
    task = asyncio.create_task(edge.run())
    yield edge
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def eventually(check: Callable[[], Any]) -> None:
    for _ in range(400):
        if check():
            return
        await asyncio.sleep(0.025)
    raise AssertionError("never happened")


async def test_an_edge_reads_what_was_written_before_it_started_then_follows(
        redis_server: RedisServer, mirror: EdgeMirror) -> None:
    core = Core(redis_server)
    core.box(record(5, 3, 10))
    core.control(5, (1,))
    await eventually(lambda: (mirror.snapshot(1) or {}).get("boxVersion") == 3)
    assert mirror.status.stale_since is None and mirror.in_step.is_set()
    core.box(record(5, 4, 11))
    await eventually(lambda: (mirror.snapshot(1) or {}).get("boxVersion") == 4)


async def test_a_late_or_older_record_never_replaces_a_newer_one(redis_server: RedisServer,
                                                                 mirror: EdgeMirror) -> None:
    core = Core(redis_server)
    core.control(5, (1,))
    core.box(record(5, 7, 20))
    await eventually(lambda: (mirror.snapshot(1) or {}).get("boxVersion") == 7)
    core.box(record(5, 6, 21))  # an older version
    core.box(record(4, 99, 500))  # an earlier core's
    core.box(record(5, 7, 19))  # the same version, published before the one held
    core.box(record(5, 7, 22, remaining=100.0))  # the same version, later: a paused clock's sync
    await eventually(lambda: (mirror.snapshot(1) or {}).get("remaining") == 100.0)
    assert (mirror.snapshot(1) or {})["boxVersion"] == 7


async def test_a_new_core_replaces_the_boxes_and_the_ones_it_lacks_disappear(redis_server: RedisServer,
                                                                            mirror: EdgeMirror) -> None:
    core = Core(redis_server)
    core.control(5, (1, 2))
    core.box(record(5, 7, 20, box_id=1))
    core.box(record(5, 3, 21, box_id=2))
    await eventually(lambda: len(mirror.public_boxes()) == 2)
    core.client.delete(core.names.box(2))
    core.box(record(6, 2, 1, box_id=1))  # a restart from another storage: a lower version, a newer epoch
    core.control(6, (1,))
    await eventually(lambda: [b["boxId"] for b in mirror.public_boxes()] == [1])
    assert (mirror.snapshot(1) or {})["boxVersion"] == 2
    assert (mirror.snapshot(2) or {})["initiated"] is False  # as the core shows a box it does not have
    assert mirror.status.epoch == 6


async def test_a_running_clock_counts_down_on_the_edge_from_its_deadline(redis_server: RedisServer,
                                                                        mirror: EdgeMirror) -> None:
    core = Core(redis_server)
    core.control(5, (1,))
    core.box(record(5, 2, 1, ends_at=NOW_MS + 12_345, remaining=99.0))
    await eventually(lambda: mirror.snapshot(1) is not None and mirror.snapshot(1)["boxVersion"] == 2)  # type: ignore[index]
    assert (mirror.snapshot(1) or {})["remaining"] == 12.345
    assert mirror.public_boxes()[0]["remaining"] == 12.345
    core.officials(OfficialsRecord(5, 2, {"judgeChief": "Ana", "competitionDirector": "", "chiefRoutesetter": ""}))
    await eventually(lambda: mirror.officials()["judgeChief"] == "Ana")


async def test_an_edge_without_redis_serves_nothing_and_says_it_is_stale(unused_tcp_port: int) -> None:
    edge = EdgeMirror(f"redis://127.0.0.1:{unused_tcp_port}/0", "belay", Hub())
    task = asyncio.create_task(edge.run())
    try:
        await eventually(lambda: edge.status.last_error is not None)
        assert edge.status.stale_since is not None and edge.public_boxes() == []
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
