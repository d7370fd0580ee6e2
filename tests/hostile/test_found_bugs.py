"""Minimal reproductions of the product bugs the hostile tests found, kept as regression tests of
the promise: every bad input gets a 4xx, never a 500 or a traceback."""
from __future__ import annotations

import asyncio

import orjson
from aiohttp import WSMsgType

from tests.hostile.conftest import Hostile


async def test_restore_with_a_non_numeric_remaining_does_not_poison_the_box(hostile: Hostile) -> None:
    """Regression (found by the fuzzer): state.remaining is not type-checked on restore; every later snapshot of the
    box is a 500."""
    client = hostile.client
    body = {"snapshots": [{"boxId": 3, "state": {"sessionId": "s", "boxVersion": 0, "remaining": "abc"}}]}
    response = await client.post("/api/admin/restore", json=body)
    assert response.status in (200, 400), await response.text()
    state = await client.get("/api/state/3")
    assert state.status == 200, await state.text()
    hostile.assert_no_tracebacks()


async def test_ping_with_a_deeply_nested_timestamp_is_answered_or_ignored(hostile: Hostile) -> None:
    """Regression (found by the fuzzer): orjson.loads accepts 1024 levels, orjson.dumps refuses > 255; the PONG echo
    raises in the socket handler, the request middleware logs "unhandled error" and writes an HTTP 500 onto the
    upgraded socket."""
    ws = await hostile.client.ws_connect("/api/ws/0")
    await ws.receive(timeout=5)
    await ws.send_str('{"type":"PING","timestamp":' + "[" * 300 + "]" * 300 + "}")
    await ws.send_str('{"type":"REQUEST_STATE"}')
    while True:
        message = await ws.receive(timeout=5)
        assert message.type == WSMsgType.TEXT, (message.type, message.data)
        if orjson.loads(message.data).get("type") == "STATE_SNAPSHOT":
            break
    await ws.close()
    hostile.assert_no_tracebacks()


async def test_a_malformed_request_line_gets_400_and_no_traceback(hostile: Hostile) -> None:
    """Bytes that do not parse as an HTTP request never reach Belay's routes: aiohttp's parser
    answers them with its own plain-text 400 (no browser sends such a request). What Belay controls
    is the log: one warning line, never an ERROR with a traceback."""
    reader, writer = await asyncio.open_connection(hostile.client.host, hostile.client.port)
    writer.write("GET /api/state/１ HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    body = await reader.read(4096)
    writer.close()
    assert b" 400 " in head.split(b"\r\n")[0], (head, body)
    hostile.assert_no_tracebacks()


async def test_a_malformed_request_with_percent_signs_is_logged_cleanly(hostile: Hostile) -> None:
    """Regression: the warning line for a bad request once put the client's bytes in the format string."""
    reader, writer = await asyncio.open_connection(hostile.client.host, hostile.client.port)
    writer.write(b"GET /api/state/%s%d" + b"y" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    await writer.drain()
    head = await reader.read(4096)
    writer.close()
    assert b" 400 " in head.split(b"\r\n")[0] or b" 414 " in head.split(b"\r\n")[0], head[:100]
    hostile.assert_no_tracebacks()
