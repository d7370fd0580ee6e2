"""Heartbeats come from the hub: every subscriber gets the app-level PING and a protocol ping once
per interval, a client's own pings are answered, and a client silent for two intervals is dropped."""
from __future__ import annotations

import asyncio
import time
from pathlib import Path

import orjson
from aiohttp import WSMsgType

from tests.conftest import make_config, serving
from transport.app import create_app
from transport.ws.hub import box_channel
from transport.ws.keys import HUB

INTERVAL_S = 0.3


async def test_a_live_client_gets_both_pings_and_stays(tmp_path: Path) -> None:
    async with serving(create_app(make_config(tmp_path / "data", ws_ping_interval_s=INTERVAL_S))) as client:
        ws = await client.ws_connect("/api/ws/0", autoping=False)
        seen: set[str] = set()
        deadline = time.monotonic() + 5 * INTERVAL_S  # well past the two silent intervals
        while time.monotonic() < deadline:
            try:
                message = await ws.receive(timeout=deadline - time.monotonic())
            except TimeoutError:
                break
            if message.type == WSMsgType.PING:
                seen.add("protocol ping")
                await ws.pong(message.data)  # what a browser does by itself
            elif message.type == WSMsgType.TEXT and orjson.loads(message.data)["type"] == "PING":
                seen.add("app PING")
            elif message.type != WSMsgType.TEXT:
                raise AssertionError(f"socket ended: {message.type}")
        assert seen == {"protocol ping", "app PING"}
        assert not ws.closed
        assert client.app[HUB].count(box_channel(0)) == 1
        await ws.close()


async def test_a_silent_client_is_dropped_after_two_intervals(tmp_path: Path) -> None:
    async with serving(create_app(make_config(tmp_path / "data", ws_ping_interval_s=INTERVAL_S))) as client:
        ws = await client.ws_connect("/api/ws/0", autoping=False)  # reads, but never answers a ping
        started = time.monotonic()
        while True:
            message = await asyncio.wait_for(ws.receive(), 10 * INTERVAL_S)
            if message.type in (WSMsgType.CLOSE, WSMsgType.CLOSED, WSMsgType.CLOSING, WSMsgType.ERROR):
                break
        assert time.monotonic() - started >= 2 * INTERVAL_S
        while client.app[HUB].count(box_channel(0)):
            await asyncio.sleep(0.01)
        assert client.app[HUB].frame_counts.silent_clients == 1  # /metrics: belay_ws_clients_dropped_total


async def test_a_client_ping_is_answered_with_its_data(tmp_path: Path) -> None:
    async with serving(create_app(make_config(tmp_path / "data"))) as client:
        ws = await client.ws_connect("/api/ws/0", autoping=False)
        await ws.ping(b"tablet-7")
        while True:
            message = await asyncio.wait_for(ws.receive(), 5)
            if message.type == WSMsgType.PONG:
                break
            assert message.type == WSMsgType.TEXT  # the first snapshot may come first
        assert message.data == b"tablet-7"
        await ws.close()
