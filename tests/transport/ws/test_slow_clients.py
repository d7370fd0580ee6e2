"""A subscriber that never reads is dropped; everyone else keeps receiving every update in order."""
from __future__ import annotations

import asyncio
import base64
import os
import socket
from pathlib import Path

from tests.conftest import login, make_config, serving
from tests.transport.test_live_protocol import next_json, post
from transport.app import create_app
from transport.ws.hub import box_channel
from transport.ws.keys import HUB

BIG_FIELD = [{"nume": f"Competitor {n:03d} with a long family name", "club": "Clubul Sportiv Ștefan"}
             for n in range(300)]


def stalled_subscriber(host: str, port: int, box_id: int, token: str) -> socket.socket:
    """Completes the WebSocket handshake, then never reads again (tiny receive buffer)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((host, port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall((f"GET /api/ws/{box_id}?token={token} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
                  f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
    response = b""
    while b"\r\n\r\n" not in response:
        response += sock.recv(1)
    assert b" 101 " in response
    return sock


async def test_a_stalled_subscriber_is_closed_and_does_not_hold_back_others(tmp_path: Path) -> None:
    config = make_config(tmp_path / "data", ws_max_pending_bytes=256 * 1024, ws_stall_timeout_s=0.5,
                         rate_limits=False)
    async with serving(create_app(config)) as client:
        hub = client.app[HUB]
        token = (await login(client))["access_token"]
        stalled = await asyncio.to_thread(stalled_subscriber, client.host, client.port, 0, token)
        reader = await client.ws_connect("/api/ws/0")
        await next_json(reader)
        while hub.count(box_channel(0)) < 2:
            await asyncio.sleep(0.01)

        received: list[int] = []

        async def read_all() -> None:
            while True:
                frame = await next_json(reader)
                if frame["type"] == "INIT_ROUTE":
                    received.append(frame["boxVersion"])

        reading = asyncio.create_task(read_all())
        sent = 0
        for round_no in range(400):
            body = {"boxId": 0, "type": "INIT_ROUTE", "routeIndex": 1, "holdsCount": 10,
                    "competitors": BIG_FIELD, "categorie": f"round {round_no}"}
            assert (await post(client, body))[0] == 200
            sent += 1
            if hub.count(box_channel(0)) == 1 and sent >= 20:
                break
            await asyncio.sleep(0.005)
        assert hub.count(box_channel(0)) == 1, "the stalled subscriber must have been dropped"
        # /metrics counts it, the snapshots that replaced each other while it was behind, and what
        # was still waiting when it went.
        counts = hub.frame_counts
        assert counts.slow_clients == 1 and counts.coalesced > 0 and counts.dropped > 0
        while len(received) < sent:
            await asyncio.sleep(0.01)
        reading.cancel()
        assert received == list(range(1, sent + 1)), "the reading subscriber sees every echo in order"
        stalled.close()
        await reader.close()
