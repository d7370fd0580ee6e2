"""WebSocket frames from hell on /api/ws/{id} and /api/public/ws: random text, binary frames, huge
frames, invalid JSON, deep nesting, REQUEST_STATE/PING with random fields.

After every frame the socket either still answers REQUEST_STATE with a snapshot, or was closed with
a protocol code (1009 too big, 1007 bad UTF-8, 1002/1003); never 1011, never a non-JSON frame,
never an ERROR in the server log. Afterwards the server still serves every box.
"""
from __future__ import annotations

import asyncio
from typing import Any

import orjson
from aiohttp import WSMsgType

from tests.hostile.conftest import Hostile
from tests.hostile.figures import record
from tests.hostile.harness import Verdicts, fuzz, settle
from tests.hostile.strategies import WS_FRAMES
from transport.ws.endpoints import MAX_CLIENT_FRAME

PROTOCOL_CLOSES = {1002, 1003, 1007, 1009}
SNAPSHOT_TYPES = {"STATE_SNAPSHOT", "PUBLIC_STATE_SNAPSHOT"}


async def test_fuzz_websocket_frames(hostile: Hostile) -> None:
    client = hostile.client
    baseline = hostile.hub.count()
    for path in ("/api/ws/0", "/api/public/ws"):
        verdicts = Verdicts(f"ws {path}")
        sockets: dict[str, Any] = {}

        async def connect(path: str = path) -> Any:
            ws = await client.ws_connect(path)
            first = await ws.receive(timeout=10)
            assert first.type == WSMsgType.TEXT and orjson.loads(first.data)["type"] in SNAPSHOT_TYPES
            return ws

        sockets["ws"] = await connect()

        async def frame(case: tuple[str, Any], path: str = path, verdicts: Verdicts = verdicts,
                        sockets: dict[str, Any] = sockets) -> None:
            kind, payload = case
            ws = sockets["ws"]
            verdicts.cases += 1
            try:
                if kind == "text":
                    await ws.send_str(payload)
                else:
                    await ws.send_bytes(payload)
                await ws.send_str('{"type":"REQUEST_STATE"}')
            except ConnectionError:
                pass  # closed by the server as we wrote: judged by the receive below
            while True:
                message = await ws.receive(timeout=10)
                if message.type == WSMsgType.TEXT:
                    try:
                        reply = orjson.loads(message.data)
                    except orjson.JSONDecodeError:
                        verdicts.violate(path, f"non-JSON text frame {message.data[:80]!r}", case)
                        break
                    if reply.get("type") in SNAPSHOT_TYPES:
                        verdicts.statuses["answered"] += 1
                        return
                    continue  # PONG, PING, broadcasts
                if message.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED):
                    code = ws.close_code
                    verdicts.statuses[f"closed {code}"] += 1
                    # A frame over the server's 64 KiB limit is answered with 1009 and the TCP close;
                    # the probe written after it can make the client see a reset (1006) instead.
                    if code not in PROTOCOL_CLOSES and not (code == 1006 and len(payload) > MAX_CLIENT_FRAME):
                        verdicts.violate(path, f"closed with {code} ({message.extra!r})", case)
                    break
                if message.type == WSMsgType.ERROR:
                    # aiohttp's client reports a frame it cannot parse (e.g. an HTTP body written
                    # onto the upgraded socket) as ERROR.
                    verdicts.violate(path, f"unreadable frame from the server: {message.data!r}", case)
                    break
                verdicts.violate(path, f"unexpected {message.type}", case)
                break
            await ws.close()
            sockets["ws"] = await connect()

        await fuzz(WS_FRAMES, frame)
        await sockets["ws"].close()
        record("hostile.fuzz", target=verdicts.target, cases=verdicts.cases,
               answered=verdicts.statuses["answered"], closed=sum(n for k, n in verdicts.statuses.items()
                                                                 if str(k).startswith("closed")),
               violations=len(verdicts.violations))
        assert not verdicts.violations, verdicts.report()
    readings = await settle({"subscribers": hostile.hub.count}, {"subscribers": baseline}, {})
    assert readings["subscribers"] == baseline
    await hostile.assert_still_serving()
    hostile.assert_no_tracebacks()


async def test_huge_text_frame_closes_with_1009_and_nothing_else(hostile: Hostile) -> None:
    ws = await hostile.client.ws_connect("/api/ws/0")
    await ws.receive(timeout=10)
    await ws.send_str("x" * (1 << 20))
    message = await ws.receive(timeout=10)
    assert message.type == WSMsgType.CLOSE and message.data == 1009, message
    await ws.close()
    await asyncio.sleep(0)
    await hostile.assert_still_serving()
    hostile.assert_no_tracebacks()
