"""Judge tablets for tests: a judge account for a box, its login, and a socket that behaves like
the judge page (reads every frame, so the server's pings are answered as a browser answers them)."""
from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from aiohttp import ClientSession, ClientWebSocketResponse
from aiohttp.test_utils import TestClient

JUDGE_PASSWORD = "judge-pass-1"


async def until(check: Callable[[], Awaitable[bool]], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not await check():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.05)


async def offline_boxes(client: TestClient) -> list[int]:
    response = await client.get("/api/health")
    assert response.status == 200
    return (await response.json())["offline_boxes"]


async def judge_token(client: TestClient, box_id: int) -> str:
    """Sets the box's judge password (as admin) and logs in as its judge, in a session of its own."""
    response = await client.post(f"/api/admin/auth/boxes/{box_id}/password", json={"password": JUDGE_PASSWORD})
    assert response.status == 200, await response.text()
    async with ClientSession() as own:
        response = await own.post(client.make_url("/api/auth/login"),
                                  json={"username": f"Box {box_id}", "password": JUDGE_PASSWORD})
        assert response.status == 200
        return (await response.json())["access_token"]


@asynccontextmanager
async def tablet(client: TestClient, box_id: int, token: str) -> AsyncIterator[ClientWebSocketResponse]:
    """A judge page: reads every frame (so aiohttp answers the server's pings, as a browser does)."""
    ws = await client.ws_connect(f"/api/ws/{box_id}?token={token}")
    reader = asyncio.create_task(_read_all(ws))
    try:
        yield ws
    finally:
        await ws.close()
        await reader


async def mute_tablet(client: TestClient, box_id: int) -> ClientWebSocketResponse:
    """A judge's socket that answers nothing by itself (no automatic pong): the test decides."""
    token = await judge_token(client, box_id)
    return await client.ws_connect(f"/api/ws/{box_id}?token={token}", autoping=False)


async def _read_all(ws: ClientWebSocketResponse) -> None:
    async for _ in ws:
        pass


async def equals(value: Awaitable[list[int]], expected: list[int]) -> bool:
    return await value == expected
