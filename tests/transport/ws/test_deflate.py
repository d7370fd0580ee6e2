"""permessage-deflate on the spectator sockets: each broadcast deflated once for every socket that
negotiated it, the same messages as plain sockets read, over real sockets (aiohttp's client, a raw
socket that looks at the bytes, and Chromium)."""
from __future__ import annotations

import asyncio
import os
import shutil
import struct
import zlib
from collections.abc import Hashable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from tests.transport.test_live_protocol import command, init_route, next_json, post
from transport.ws.hub import PUBLIC, box_channel, deflating, public_box_channel
from transport.ws.keys import HUB

BOX = 4
HOLDS = 3
DEADLINE_S = 30.0  # a bound for "eventually", never a speed check


async def spectator_token(client: TestClient) -> str:
    return (await (await client.post("/api/public/token")).json())["access_token"]


async def joined(client: TestClient, channel: tuple[Hashable, ...], plain: int, deflated: int) -> None:
    """Until the channel has this many plain and deflating sockets (a join goes through the hub's queue)."""
    hub = client.app[HUB]
    deadline = asyncio.get_running_loop().time() + DEADLINE_S
    while (hub.count(channel) - hub.count(deflating(channel)), hub.count(deflating(channel))) != (plain, deflated):
        assert asyncio.get_running_loop().time() < deadline, f"never joined {channel}"
        await asyncio.sleep(0.01)


async def play(client: TestClient) -> None:
    """A climb in short: the clock starts, three holds, the clock stops (every step reaches spectators)."""
    assert (await command(client, BOX, "START_TIMER"))[0] == 200
    for _ in range(HOLDS):
        assert (await command(client, BOX, "PROGRESS_UPDATE", delta=1))[0] == 200
    assert (await command(client, BOX, "STOP_TIMER"))[0] == 200


async def read_until_stopped(ws: Any) -> list[Any]:
    """Every message up to the one showing the stopped clock (a box snapshot or the hub's update),
    without the hub's PINGs (each socket has its own moment for them)."""
    messages = []
    while True:
        message = await next_json(ws, timeout=DEADLINE_S)
        if message["type"] == "PING":
            continue
        messages.append(message)
        if message.get("box", message).get("timerState") == "paused":
            return messages


async def test_spectators_with_and_without_deflate_read_identical_messages(client: TestClient) -> None:
    await post(client, init_route(BOX))
    token = await spectator_token(client)
    sockets = {(path, window): await client.ws_connect(path, compress=window)
               for path in (f"/api/public/ws/{BOX}?token={token}", "/api/public/ws") for window in (0, 15)}
    assert [ws.compress for ws in sockets.values()] == [0, 15, 0, 15]
    for channel in (public_box_channel(BOX), PUBLIC):
        await joined(client, channel, plain=1, deflated=1)
    await play(client)
    read = {key: await read_until_stopped(ws) for key, ws in sockets.items()}
    for path in {path for path, _ in sockets}:
        assert read[(path, 15)] == read[(path, 0)]
        assert len(read[(path, 0)]) >= 3  # the first snapshot, the clock started, ..., the clock stopped
    # What a deflating client sends compressed is read too: a REQUEST_STATE gets its answer.
    box_page = sockets[(f"/api/public/ws/{BOX}?token={token}", 15)]
    await box_page.send_str('{"type": "REQUEST_STATE"}')
    answer = await read_until_stopped(box_page)
    assert answer == [read[(f"/api/public/ws/{BOX}?token={token}", 0)][-1]]
    for ws in sockets.values():
        await ws.close()


async def test_a_judges_socket_stays_uncompressed_when_deflate_is_offered(client: TestClient) -> None:
    await post(client, init_route(BOX))
    ws = await client.ws_connect(f"/api/ws/{BOX}", compress=15)
    assert ws.compress == 0
    await joined(client, box_channel(BOX), plain=1, deflated=0)
    assert (await next_json(ws))["type"] == "STATE_SNAPSHOT"
    await ws.close()


class RawSocket:
    """A WebSocket client that keeps the bytes: the handshake by hand, frames read as they come."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, extensions: str) -> None:
        self.reader, self.writer, self.extensions = reader, writer, extensions

    @classmethod
    async def connect(cls, port: int, path: str, offer: str) -> RawSocket:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write((f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                      "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                      f"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Extensions: {offer}\r\n\r\n").encode())
        head = (await reader.readuntil(b"\r\n\r\n")).decode()
        assert head.startswith("HTTP/1.1 101"), head
        headers = dict(line.split(": ", 1) for line in head.split("\r\n")[1:] if ": " in line)
        return cls(reader, writer, headers.get("Sec-WebSocket-Extensions", ""))

    async def frame(self) -> tuple[int, bytes]:
        """(first byte, payload) of the next frame but the hub's pings (server frames are never masked)."""
        while True:
            first, payload = await self._any_frame()
            if first != 0x89 and not payload.startswith(b'{"type":"PING"'):
                return first, payload

    async def _any_frame(self) -> tuple[int, bytes]:
        first, length = await self.reader.readexactly(2)
        if length == 126:
            (length,) = struct.unpack("!H", await self.reader.readexactly(2))
        elif length == 127:
            (length,) = struct.unpack("!Q", await self.reader.readexactly(8))
        return first, await asyncio.wait_for(self.reader.readexactly(length), DEADLINE_S)

    def close(self) -> None:
        self.writer.close()


async def test_a_deflating_socket_gets_each_update_compressed_on_the_wire(client: TestClient) -> None:
    await post(client, init_route(BOX))
    token = await spectator_token(client)
    path = f"/api/public/ws/{BOX}?token={token}"
    raw = await RawSocket.connect(client.port, path, "permessage-deflate; client_max_window_bits")
    plain = await client.ws_connect(path)
    assert raw.extensions.startswith("permessage-deflate")
    await joined(client, public_box_channel(BOX), plain=1, deflated=1)
    first, joined_snapshot = await raw.frame()
    assert first == 0x81, "the first snapshot is built for this socket alone, and stays plain"
    assert orjson.loads(joined_snapshot)["type"] == "STATE_SNAPSHOT"
    assert (await next_json(plain))["type"] == "STATE_SNAPSHOT"

    assert (await command(client, BOX, "PROGRESS_UPDATE", delta=1))[0] == 200
    first, compressed = await raw.frame()
    assert first == 0xC1, "FIN, RSV1 (compressed), text"
    update = zlib.decompressobj(-zlib.MAX_WBITS).decompress(compressed + b"\x00\x00\xff\xff")
    assert orjson.loads(update) == await next_json(plain)
    assert orjson.loads(update)["holdCount"] == 1
    assert len(compressed) < len(update) / 2
    raw.close()
    await plain.close()


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        reason = "chromium is not installed (apt-get install -y chromium)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{reason}, and CI=true forbids skipping")
        pytest.skip(reason)
    return found


PAGE = """<!doctype html><script>
const ws = new WebSocket(new URLSearchParams(location.search).get("socket"));
const messages = [];
ws.onmessage = (event) => {
  const message = JSON.parse(event.data);
  if (message.type === "PING") return;
  messages.push(message);
  if ((message.box || message).timerState === "paused") {
    fetch("/report", {method: "POST", body: JSON.stringify({extensions: ws.extensions, messages})});
  }
};
</script>"""


async def test_chromium_reads_a_deflated_stream(client: TestClient, tmp_path: Path) -> None:
    browser = chromium()
    await post(client, init_route(BOX))
    token = await spectator_token(client)
    path = f"/api/public/ws/{BOX}?token={token}"
    report: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()

    async def page(_request: web.Request) -> web.Response:
        return web.Response(text=PAGE, content_type="text/html")

    async def reported(request: web.Request) -> web.Response:
        if not report.done():
            report.set_result(orjson.loads(await request.read()))
        return web.Response()

    site = web.Application()
    site.router.add_get("/", page)
    site.router.add_post("/report", reported)
    runner = web.AppRunner(site)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    page_port = runner.addresses[0][1]
    socket_url = quote(f"ws://127.0.0.1:{client.port}{path}", safe="")
    proc = await asyncio.create_subprocess_exec(
        browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
        f"--user-data-dir={tmp_path / 'chromium'}", f"http://127.0.0.1:{page_port}/?socket={socket_url}",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
    try:
        plain = await client.ws_connect(path)
        await joined(client, public_box_channel(BOX), plain=1, deflated=1)  # the browser offered deflate
        await play(client)
        expected = await read_until_stopped(plain)
        seen = await asyncio.wait_for(report, DEADLINE_S)
        assert seen["extensions"].startswith("permessage-deflate")
        # The first snapshots were built for each socket at its join; every broadcast after it is the same.
        assert seen["messages"][1:] == expected[1:] and len(expected) >= 2
        await plain.close()
    finally:
        proc.kill()
        await proc.wait()
        await runner.cleanup()
