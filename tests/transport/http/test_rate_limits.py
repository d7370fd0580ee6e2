"""Rate limits never starve scoring: buckets per (box, client, class), never a whole box locked."""
from __future__ import annotations

import asyncio

from aiohttp.test_utils import TestClient

from tests.transport.test_live_protocol import init_route, post, state


async def test_a_timer_sync_flood_is_limited_but_scoring_goes_through(client: TestClient) -> None:
    await post(client, init_route(0))
    session_id = (await state(client))["sessionId"]
    sync = {"boxId": 0, "type": "TIMER_SYNC", "remaining": 100, "sessionId": session_id}
    replies = await asyncio.gather(*(post(client, sync) for _ in range(80)))
    limited = [body for status, body in replies if status == 429]
    assert limited, "a flood of TIMER_SYNC must hit its limit"
    assert all("rate limit" in body["detail"] for body in limited)
    assert {status for status, _ in replies} <= {200, 429}

    for _ in range(20):
        status, body = await post(client, {"boxId": 0, "type": "PROGRESS_UPDATE", "delta": 1,
                                           "sessionId": session_id})
        assert (status, body) == (200, {"status": "ok"})
    # Another box is not affected either.
    await post(client, init_route(1))
    other = {"boxId": 1, "type": "TIMER_SYNC", "remaining": 90, "sessionId": (await state(client, 1))["sessionId"]}
    assert await post(client, other) == (200, {"status": "ok"})


async def test_the_limited_reply_says_when_to_retry(client: TestClient) -> None:
    await post(client, init_route(0))
    session_id = (await state(client))["sessionId"]
    sync = {"boxId": 0, "type": "TIMER_SYNC", "remaining": 100, "sessionId": session_id}
    for _ in range(200):
        response = await client.post("/api/cmd", json=sync)
        if response.status == 429:
            assert int(response.headers["Retry-After"]) >= 1
            return
    raise AssertionError("never limited")
