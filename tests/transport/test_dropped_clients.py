"""A WebSocket or a request that its client drops is freed by reference counting alone, and a
request cut off mid-body is not logged as a bug.

The collector freezes long-lived objects and runs a full collection only in a quiet spell
(transport/collector.py), so a dead connection left in a reference cycle would stay in memory for
hours, and screens, phones and tablets come and go all day: 6,000 dropped sockets kept 68 MB each
time (docs/performance.md, change 28)."""
from __future__ import annotations

import asyncio
import base64
import contextlib
import gc
import logging
import os
import socket
import struct
import weakref
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from aiohttp import web

from tests.conftest import make_config
from transport.app import create_app
from transport.server import app_runner
from transport.ws.hub import PUBLIC
from transport.ws.keys import HUB

SOCKETS = 20


@contextlib.asynccontextmanager
async def served(storage_dir: Path) -> AsyncIterator[tuple[web.Application, int]]:
    """The app as run.py serves it (aiohttp's test server cancels handlers, which hides the cycle)."""
    app = create_app(make_config(storage_dir))
    runner = app_runner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield app, runner.addresses[0][1]
    finally:
        await runner.cleanup()


async def open_socket(port: int) -> asyncio.StreamWriter:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write((f"GET /api/public/ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                  f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
    assert b" 101 " in await reader.readuntil(b"\r\n\r\n")
    await read_frame(reader)  # the snapshot: a socket closed with unread data would send RST, not FIN
    return writer


async def read_frame(reader: asyncio.StreamReader) -> bytes:
    _flags, length = await reader.readexactly(2)
    if length == 126:
        (length,) = struct.unpack("!H", await reader.readexactly(2))
    elif length == 127:
        (length,) = struct.unpack("!Q", await reader.readexactly(8))
    return await reader.readexactly(length)


def drop(writer: asyncio.StreamWriter, how: str) -> None:
    if how == "reset":  # RST, as a phone that loses its network
        writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.close()  # FIN without a closing frame, as a browser tab that is killed


async def left_alive(objects: list[object], drop_them: Callable[[], None],
                     also_wait_for: Callable[[], bool] = lambda: True) -> int:
    """How many of `objects` outlive `drop_them()` with the collector off (reference counting only)."""
    alive = [weakref.ref(o) for o in objects]
    del objects
    enabled = gc.isenabled()
    gc.disable()
    try:
        drop_them()
        for _ in range(300):
            if not any(ref() for ref in alive) and also_wait_for():
                break
            await asyncio.sleep(0.01)
        return sum(1 for ref in alive if ref() is not None)
    finally:
        if enabled:
            gc.enable()


@pytest.mark.parametrize("how", ["fin", "reset"])
async def test_dropped_sockets_are_freed_without_the_collector(tmp_path: Path, how: str) -> None:
    async with served(tmp_path / "data") as (app, port):
        hub = app[HUB]
        writers = [await open_socket(port) for _ in range(SOCKETS)]
        for _ in range(500):
            if hub.count(PUBLIC) == SOCKETS:
                break
            await asyncio.sleep(0.01)
        assert hub.count(PUBLIC) == SOCKETS
        left = await left_alive(hub.sockets(), lambda: [drop(w, how) for w in writers])
        assert hub.count(PUBLIC) == 0
        assert left == 0, f"{left} of {SOCKETS} dropped sockets are kept alive by a reference cycle"


async def in_flight_requests(path: str) -> list[web.BaseRequest]:
    for _ in range(300):
        found = [o for o in gc.get_objects() if isinstance(o, web.BaseRequest) and o.path == path]
        if found:
            return found
        await asyncio.sleep(0.01)
    raise AssertionError(f"no request for {path} reached the server")


@pytest.mark.parametrize("how", ["fin", "reset"])
async def test_a_request_cut_off_mid_body_is_freed_and_not_logged_as_a_bug(
        tmp_path: Path, how: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="belay")
    async with served(tmp_path / "data") as (_app, port):
        _reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"POST /api/cmd HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 100\r\n\r\n{\"boxId\": 0, ")  # a tablet losing Wi-Fi mid-upload
        await writer.drain()
        left = await left_alive(await in_flight_requests("/api/cmd"), lambda: drop(writer, how),
                                lambda: "went away" in caplog.text)
    assert left == 0, "the cut-off request is kept alive by a reference cycle"
    assert "went away during POST /api/cmd" in caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], "a client leaving is not a server error"
