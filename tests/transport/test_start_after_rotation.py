"""What a start rebuilt must still be there after the log rotates: the checkpoints catch up first.

A start reads older archives only for boxes whose checkpoint does not cover their history. So a
box rebuilt past its checkpoint, or a box that cannot be rebuilt at all, must leave a checkpoint
(or a mark) that says so before its events can end up only in an archive.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import orjson

from tests.conftest import make_config, serving
from tests.transport.test_live_protocol import command, init_route, post, state
from transport.app import create_app


def rotate_by_hand(data: Path) -> None:
    """What a rotation does to the files: the log becomes the next archive, a new log starts empty."""
    (data / "events.ndjson").rename(data / "events.000001.ndjson")
    (data / "events.ndjson").write_bytes(b"")


async def test_events_replayed_at_start_survive_a_later_rotation(tmp_path: Path) -> None:
    data = tmp_path / "data"
    config = make_config(data)
    async with serving(create_app(config)) as client:
        await post(client, init_route(0))
        await command(client, 0, "PROGRESS_UPDATE", delta=1)
    old_checkpoint = (data / "boxes" / "0.json").read_bytes()  # at seq 2
    async with serving(create_app(config)) as client:
        for _ in range(3):
            await command(client, 0, "PROGRESS_UPDATE", delta=1)
        acknowledged = await state(client)
    (data / "boxes" / "0.json").write_bytes(old_checkpoint)  # as a crash before the last checkpoint leaves it

    async with serving(create_app(config)) as client:  # replays seq 3..5 on top of the checkpoint
        assert await state(client) == {**acknowledged, "remaining": acknowledged["remaining"]}
    assert orjson.loads((data / "boxes" / "0.json").read_bytes())["seq"] == 5  # caught up, although idle
    rotate_by_hand(data)
    async with serving(create_app(config)) as client:
        assert await state(client) == {**acknowledged, "remaining": acknowledged["remaining"]}


async def test_a_box_that_cannot_be_rebuilt_is_still_known_after_a_rotation(tmp_path: Path) -> None:
    data = tmp_path / "data"
    config = make_config(data)
    async with serving(create_app(config)) as client:
        await post(client, init_route(0))
        await post(client, init_route(1))
        for _ in range(2):
            await command(client, 0, "PROGRESS_UPDATE", delta=1)
    checkpoint = orjson.loads((data / "boxes" / "0.json").read_bytes())
    del checkpoint["state"]["sessionId"]
    (data / "boxes" / "0.json").write_bytes(orjson.dumps(checkpoint))
    lines = (data / "events.ndjson").read_bytes().splitlines(keepends=True)
    (data / "events.ndjson").write_bytes(b"".join(line for line in lines if orjson.loads(line)["seq"] != 1
                                                  or orjson.loads(line)["boxId"] != 0))

    async with serving(create_app(config)) as client:
        assert (await client.get("/api/state/0")).status == 503
    rotate_by_hand(data)
    shutil.rmtree(data / "boxes" / "quarantine")  # the set-aside file is not what keeps the box known
    async with serving(create_app(config)) as client:
        response = await client.get("/api/state/0")
        assert (response.status, await response.json()) == (503, {"detail": "box_unavailable"})
        health = await (await client.get("/api/health")).json()
        assert health["storage"]["unavailable_boxes"] == [0]
        # Started over by an admin: above the last version and seq its history holds, never at 1.
        assert (await post(client, init_route(0)))[0] == 200
        assert (await state(client))["boxVersion"] == 4
    events = [orjson.loads(line) for line in (data / "events.ndjson").read_bytes().splitlines()]
    assert [(e["boxId"], e["seq"]) for e in events] == [(0, 4)]
