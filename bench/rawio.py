"""Light loopback clients: keep-alive HTTP/1.1 and WebSocket readers written on asyncio.Protocol.

A Python aiohttp client tops out near 9k commands/s or 40k received frames/s per core; these
do the least per request / per frame (pre-built headers, no JSON decoding of frames) so the
client core is rarely the bottleneck. Server frames are never masked; pongs we send are masked
with a zero key (valid, and the payload stays as it is).
"""
from __future__ import annotations

import asyncio
import base64
import os
import time
from collections.abc import Callable
from typing import Any

CL = b"\r\ncontent-length:"


def _content_length(head: bytes) -> int:
    i = head.lower().find(CL)
    if i < 0:
        return 0
    j = head.find(b"\r\n", i + 2)
    return int(head[i + len(CL):j if j > 0 else len(head)])


class HttpConn(asyncio.Protocol):
    """One keep-alive connection, one request in flight at a time."""

    def __init__(self, host: str, auth: str | None) -> None:
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.waiter: asyncio.Future[tuple[int, bytes]] | None = None
        self.prefix = f"Host: {host}\r\n".encode() + (f"Authorization: Bearer {auth}\r\n".encode() if auth else b"")

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if self.waiter is None:
            return
        end = self.buf.find(b"\r\n\r\n")
        if end < 0:
            return
        head = bytes(self.buf[:end])
        n = _content_length(head)
        if len(self.buf) < end + 4 + n:
            return
        body = bytes(self.buf[end + 4:end + 4 + n])
        del self.buf[:end + 4 + n]
        waiter, self.waiter = self.waiter, None
        if not waiter.done():
            waiter.set_result((int(head[9:12]), body))

    def connection_lost(self, exc: Exception | None) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError("connection lost"))

    def request(self, method: str, path: str, body: bytes | None = None) -> asyncio.Future[tuple[int, bytes]]:
        assert self.transport is not None
        self.waiter = asyncio.get_running_loop().create_future()
        head = f"{method} {path} HTTP/1.1\r\n".encode() + self.prefix
        if body is not None:
            head += b"Content-Type: application/json\r\nContent-Length: %d\r\n" % len(body)
        self.transport.write(head + b"\r\n" + (body or b""))
        return self.waiter


async def http_connect(url: str, auth: str | None) -> HttpConn:
    host, port = url.split("://", 1)[1].split("/", maxsplit=1)[0].rsplit(":", 1)
    _t, conn = await asyncio.get_running_loop().create_connection(
        lambda: HttpConn(f"{host}:{port}", auth), host, int(port))
    return conn


def _number_after(buf: bytearray | bytes, key: bytes, start: int, end: int) -> float:
    """The JSON number right after `key` within buf[start:end], or -1.0 when there is none."""
    i = buf.find(key, start, end)
    if i < 0:
        return -1.0
    i += len(key)
    j = i
    while j < end and buf[j] not in (44, 125):  # ',' '}'
        j += 1
    try:
        return float(buf[i:j])
    except ValueError:
        return -1.0
    i += len(key)
    j = i
    while j < end and buf[j] not in (44, 125):  # ',' '}'
        j += 1
    try:
        return float(buf[i:j])
    except ValueError:
        return -1.0


SNAP = b'{"type":"STATE_SNAPSHOT"'
TSYNC = b'{"type":"TIMER_SYNC"'
BV = b'"boxVersion":'
REM = b'"remaining":'


class WsReader(asyncio.Protocol):
    """Counts frames and bytes; in "box"/"pub" mode also notes (kind, tag, receive time) per frame.

    Tags: echo of TIMER_SYNC -> kind 1, tag = its `remaining`; other echo -> kind 2, tag = boxVersion;
    STATE_SNAPSHOT -> kind 3, tag = boxVersion. Tags are read with bytes.find, never a JSON parse.
    """

    def __init__(self, sock: int, mode: str, request: bytes, sink: Any) -> None:
        self.sock, self.mode, self.request, self.sink = sock, mode, request, sink
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.open = False
        self.opened: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.closed: str | None = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        transport.write(self.request)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.closed is None:
            self.closed = f"lost:{exc}"
        if not self.opened.done():
            self.opened.set_exception(ConnectionError(f"lost before upgrade: {exc}"))

    def data_received(self, data: bytes) -> None:
        now = time.monotonic()
        buf = self.buf
        buf += data
        if not self.open:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            if buf[9:12] != b"101":
                self.opened.set_exception(ConnectionError(bytes(buf[:120]).decode(errors="replace")))
                return
            self.open = True
            del buf[:end + 4]
            self.opened.set_result(None)
        pos, size, sink = 0, len(buf), self.sink
        while size - pos >= 2:
            b0, n = buf[pos], buf[pos + 1] & 0x7F
            off = pos + 2
            if n == 126:
                if size - pos < 4:
                    break
                n, off = (buf[pos + 2] << 8) | buf[pos + 3], pos + 4
            elif n == 127:
                if size - pos < 10:
                    break
                n, off = int.from_bytes(buf[pos + 2:pos + 10], "big"), pos + 10
            if size - off < n:
                break
            end = off + n
            opcode = b0 & 0x0F
            sink.frames += 1
            sink.bytes += n
            if opcode == 1:
                if self.mode != "count":
                    self._note(buf, off, end, now)
            elif opcode == 9 and self.transport is not None:
                self.transport.write(bytes([0x8A, 0x80 | n]) + b"\0\0\0\0" + bytes(buf[off:end]))
            elif opcode == 8:
                self.closed = f"close:{int.from_bytes(buf[off:off + 2], 'big') if n >= 2 else 0}"
            pos = end
        if pos:
            del buf[:pos]

    def _note(self, buf: bytearray, off: int, end: int, now: float) -> None:
        sink = self.sink
        if buf.startswith(SNAP, off):
            kind, tag = 3, _number_after(buf, BV, off, end)
        elif buf.startswith(TSYNC, off):
            kind, tag = 1, _number_after(buf, REM, off, end)
        elif buf.startswith(b'{"type":"P', off) and buf.find(b'"type":"PING"', off, off + 20) == off + 1:
            return
        else:
            kind, tag = 2, _number_after(buf, BV, off, min(end, off + 200))
            if tag < 0:
                return
        sink.socks.append(self.sock)
        sink.kinds.append(kind)
        sink.tags.append(tag)
        sink.times.append(now)


def ws_request(url: str, path: str, auth: str | None) -> bytes:
    host = url.split("://", 1)[1].split("/", maxsplit=1)[0]
    key = base64.b64encode(os.urandom(16)).decode()
    return (f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            + (f"Authorization: Bearer {auth}\r\n" if auth else "") + "\r\n").encode()


async def ws_open(url: str, sock: int, mode: str, path: str, auth: str | None, sink: Any) -> WsReader:
    host, port = url.split("://", 1)[1].split("/", maxsplit=1)[0].rsplit(":", 1)
    reader = WsReader(sock, mode, ws_request(url, path, auth), sink)
    await asyncio.get_running_loop().create_connection(lambda: reader, host, int(port))
    await asyncio.wait_for(reader.opened, 60)
    return reader


Factory = Callable[[], Any]
