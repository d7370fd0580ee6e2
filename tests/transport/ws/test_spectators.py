"""Spectator channels: leading-edge throttle per box, final state always delivered."""
from __future__ import annotations

from aiohttp.test_utils import TestClient

from tests.transport.test_live_protocol import command, init_route, next_json, post


async def frames_until_quiet(ws, quiet_s: float = 0.6) -> list[dict]:
    frames = []
    while True:
        try:
            frames.append(await next_json(ws, timeout=quiet_s))
        except TimeoutError:
            return frames


async def test_bursts_reach_spectators_as_first_and_final_update(client: TestClient) -> None:
    await post(client, init_route(4))
    token = (await (await client.post("/api/public/token")).json())["access_token"]
    per_box = await client.ws_connect(f"/api/public/ws/4?token={token}")
    aggregate = await client.ws_connect("/api/public/ws")
    assert (await next_json(per_box))["type"] == "STATE_SNAPSHOT"
    assert (await next_json(aggregate))["type"] == "PUBLIC_STATE_SNAPSHOT"

    for _ in range(8):
        assert (await command(client, 4, "PROGRESS_UPDATE", delta=1))[0] == 200

    box_frames = [f for f in await frames_until_quiet(per_box) if f["type"] == "STATE_SNAPSHOT"]
    assert 1 <= len(box_frames) < 8, "updates within the window must merge"
    assert box_frames[-1]["holdCount"] == 8, "the trailing update carries the final state"
    updates = [f for f in await frames_until_quiet(aggregate) if f["type"].startswith("BOX_")]
    assert 1 <= len(updates) < 8
    assert updates[-1]["box"]["boxId"] == 4
    await per_box.close()
    await aggregate.close()
