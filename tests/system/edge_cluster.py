"""A core and its edges as `run.py` subprocesses on one test Redis, and what a spectator does."""
from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
from aiohttp import ClientSession, WSMsgType

from tests.conftest import ServerProcess
from tests.redis_server import RedisServer
from tests.reliability.crash_soak import admin_session, get_state, init_body, post

__all__ = ["Cluster", "Spectator", "admin_session", "get_json", "get_state", "health", "init_boxes", "progress",
           "spectator_token", "until"]  # admin_session and get_state: the judges' side, for the tests

SPECTATOR_SECRET = "spectator-secret-for-the-edge-tests-0123456789"
CONVERGE_TIMEOUT_S = 30.0  # a generous bound for "eventually", never a speed check


class Cluster:
    def __init__(self, redis: RedisServer, tmp_path: Path, spawn: Callable[..., ServerProcess]) -> None:
        self.redis = redis
        self.tmp_path = tmp_path
        self._spawn = spawn
        self.edge_url = redis.add_edge_account()  # both with the README's ACL lines
        self.core_redis_url = redis.add_core_account()
        self.core: ServerProcess | None = None
        self.edges: list[ServerProcess] = []

    def start_core(self, **env: str) -> ServerProcess:
        self.core = self._spawn(self.tmp_path / "data", env={
            "REDIS_URL": self.core_redis_url, "REDIS_PREFIX": self.redis.prefix,
            "SPECTATOR_JWT_SECRET": SPECTATOR_SECRET, **env})
        return self.core

    def start_edge(self, **env: str) -> ServerProcess:
        edge = self._spawn(self.tmp_path / f"edge-{len(self.edges)}", command=(
            "edge", "--host", "127.0.0.1", "--port", "0", "--redis-url", self.edge_url,
            "--redis-prefix", self.redis.prefix), env={"SPECTATOR_JWT_SECRET": SPECTATOR_SECRET, **env})
        self.edges.append(edge)
        return edge

    @property
    def core_url(self) -> str:
        assert self.core is not None
        return self.core.url


async def spectator_token(http: ClientSession, url: str) -> str:
    async with http.post(f"{url}/api/public/token") as response:
        assert response.status == 200
        token: str = (await response.json())["access_token"]
        return token


async def get_json(http: ClientSession, url: str) -> tuple[int, Any]:
    async with http.get(url) as response:
        return response.status, await response.json()


async def health(http: ClientSession, url: str) -> dict[str, Any]:
    status, body = await get_json(http, f"{url}/health")
    assert status == 200
    return body  # type: ignore[no-any-return]


async def until(check: Callable[[], Any], what: str) -> Any:
    """Polls an async check until it returns something truthy."""
    deadline = asyncio.get_running_loop().time() + CONVERGE_TIMEOUT_S
    while True:
        result = await check()
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"never happened: {what}")
        await asyncio.sleep(0.05)


class Spectator:
    """One public box socket: every snapshot it receives, in order."""

    def __init__(self, http: ClientSession, url: str, box: int, token: str) -> None:
        self._http, self._url, self.box, self._token = http, url, box, token
        self.snapshots: list[dict[str, Any]] = []

    async def __aenter__(self) -> Spectator:
        self._ws = await self._http.ws_connect(f"{self._url.replace('http', 'ws', 1)}/api/public/ws/{self.box}"
                                               f"?token={self._token}")
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self._ws.close()

    async def until(self, check: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        """Reads snapshots until one passes `check`."""
        for snapshot in self.snapshots:
            if check(snapshot):
                return snapshot
        deadline = asyncio.get_running_loop().time() + CONVERGE_TIMEOUT_S
        while True:
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                raise AssertionError(f"box {self.box}: last seen {self.snapshots[-1:]}")
            try:
                message = await self._ws.receive(timeout=left)
            except TimeoutError:
                continue
            assert message.type == WSMsgType.TEXT, message
            data = orjson.loads(message.data)
            if data.get("type") != "STATE_SNAPSHOT":
                continue
            self.snapshots.append(data)
            if check(data):
                return data  # type: ignore[no-any-return]

    def versions(self) -> list[int]:
        return [s["boxVersion"] for s in self.snapshots]


async def progress(session: ClientSession, url: str, box: int, times: int) -> None:
    for _ in range(times):
        snapshot = await get_state(session, url, box)
        status, reply = await post(session, url, {"boxId": box, "type": "PROGRESS_UPDATE", "delta": 1,
                                                  "sessionId": snapshot["sessionId"],
                                                  "boxVersion": snapshot["boxVersion"]})
        assert status == 200, reply


async def init_boxes(session: ClientSession, url: str, boxes: range) -> None:
    for box in boxes:
        status, reply = await post(session, url, init_body(box))
        assert status == 200, reply

