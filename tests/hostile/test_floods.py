"""Connection floods: thousands of WebSocket connects/disconnects (some dropped mid-handshake or
without a close frame) and a few hundred half-open HTTP requests. /api/health keeps answering during
and after; afterwards fds, tasks and subscriber counts return to their baseline."""
from __future__ import annotations

import asyncio
import base64
import os

import aiohttp

from tests.conftest import serving
from tests.hostile.conftest import hostile_config
from tests.hostile.figures import record
from tests.hostile.harness import ErrorTrap, chunks, flood_size, open_fds, raise_fd_limit, settle, task_count
from transport.app import create_app
from transport.ws.keys import HUB

HALF_OPEN = int(os.environ.get("BELAY_HALF_OPEN") or 300)
BATCH = 100


async def _raw(host: str, port: int, payload: bytes, *, read_reply: bool) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(payload)
    await writer.drain()
    if read_reply:
        await reader.readuntil(b"\r\n\r\n")
    writer.transport.abort()  # no close frame, no FIN handshake: an abrupt drop


def _handshake(host: str, port: int, path: str) -> bytes:
    key = base64.b64encode(os.urandom(16)).decode()
    return (f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode()


async def test_connection_flood_leaves_nothing_behind(tmp_path) -> None:
    size = flood_size()
    raise_fd_limit(max(8192, 4 * (BATCH + HALF_OPEN) + 512))
    with ErrorTrap() as trap:
        async with serving(create_app(hostile_config(tmp_path)), as_admin=False) as client:
            hub = client.app[HUB]
            host, port = client.host, client.port
            await asyncio.sleep(0)
            baseline = {"fds": open_fds(), "tasks": task_count(), "subscribers": hub.count()}
            health = {"ok": 0, "bad": 0}
            stop = asyncio.Event()

            async def watch_health() -> None:
                while not stop.is_set():
                    response = await client.get("/api/health")
                    health["ok" if response.status == 200 else "bad"] += 1
                    await response.release()
                    await asyncio.sleep(0.02)

            watcher = asyncio.create_task(watch_health())
            # Half-open HTTP requests: partial headers, held open through the whole flood.
            held = []
            for n in range(HALF_OPEN):
                _reader, writer = await asyncio.open_connection(host, port)
                writer.write(b"GET /api/health HTTP/1.1\r\nHost: x\r\n" + (b"X-Slow: 1\r\n" if n % 2 else b""))
                held.append(writer)
            session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
            kinds = {"clean": 0, "mid_handshake": 0, "abrupt": 0}

            async def one(n: int) -> None:
                path = "/api/public/ws" if n % 2 else "/api/public/ws/0?token=x"
                if n % 10 == 3:
                    kinds["mid_handshake"] += 1
                    full = _handshake(host, port, path)
                    await _raw(host, port, full[: len(full) // 2], read_reply=False)
                elif n % 10 == 7:
                    kinds["abrupt"] += 1
                    await _raw(host, port, _handshake(host, port, "/api/public/ws"), read_reply=True)
                else:
                    kinds["clean"] += 1
                    ws = await session.ws_connect(client.make_url(path))
                    await ws.receive(timeout=10)
                    await ws.close()

            for batch in chunks(list(range(size)), BATCH):
                results = await asyncio.gather(*(one(n) for n in batch), return_exceptions=True)
                failures = [r for r in results if isinstance(r, BaseException)]
                assert not failures, failures[:3]
                assert health["bad"] == 0
            during = health["ok"]
            # Half the held requests go away abruptly, the other half are completed late.
            for n, writer in enumerate(held):
                if n % 2:
                    writer.transport.abort()
                else:
                    writer.write(b"\r\n")
            await asyncio.sleep(0)
            for n, writer in enumerate(held):
                if not n % 2:
                    writer.transport.abort()
            await session.close()
            response = await client.get("/api/health")
            assert response.status == 200
            await response.release()
            stop.set()
            await watcher
            after = await settle({"fds": open_fds, "tasks": task_count, "subscribers": hub.count}, baseline,
                                 {"fds": 4, "tasks": 3})
            record("hostile.flood", websocket_connects=size, half_open_http=HALF_OPEN, **kinds,
                   health_ok_during=during, health_failures=health["bad"], before=baseline, after=after)
            assert health["bad"] == 0 and during > 0
            assert after["subscribers"] == baseline["subscribers"], after
            assert after["fds"] <= baseline["fds"] + 4, (baseline, after)
            assert after["tasks"] <= baseline["tasks"] + 3, (baseline, after)
    assert not trap.with_traceback(), trap.describe()
