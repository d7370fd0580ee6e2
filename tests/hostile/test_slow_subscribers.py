"""500 subscribers on one box, 50 of which never read (raw sockets, tiny receive buffer): the
stalled ones are closed, every reader gets every echo in version order, and afterwards fds, tasks
and subscriber counts return to their baseline."""
from __future__ import annotations

import asyncio
import os

import aiohttp
import orjson

from tests.conftest import login, serving
from tests.hostile.conftest import hostile_config
from tests.hostile.figures import record
from tests.hostile.harness import ErrorTrap, open_fds, raise_fd_limit, settle, task_count
from tests.transport.ws.test_slow_clients import stalled_subscriber
from transport.app import create_app
from transport.ws.hub import box_channel
from transport.ws.keys import HUB

READERS = int(os.environ.get("BELAY_SLOW_READERS") or 450)
STALLED = int(os.environ.get("BELAY_SLOW_STALLED") or 50)
FIELD = [{"nume": f"Competitor {n:03d} {'with a very long family name ' * 2}", "club": "Clubul Sportiv Ștefan"}
         for n in range(500)]


async def test_stalled_subscribers_are_dropped_and_readers_get_everything(tmp_path) -> None:
    raise_fd_limit(8192)
    config = hostile_config(tmp_path, ws_max_pending_bytes=128 * 1024, ws_stall_timeout_s=0.3)
    with ErrorTrap() as trap:
        async with serving(create_app(config)) as client:
            hub = client.app[HUB]
            channel = box_channel(0)
            token = (await login(client))["access_token"]
            await asyncio.sleep(0)
            baseline = {"fds": open_fds(), "tasks": task_count(), "subscribers": hub.count()}

            stalled = await asyncio.gather(*(asyncio.to_thread(stalled_subscriber, client.host, client.port, 0, token)
                                             for _ in range(STALLED)))
            connector = aiohttp.TCPConnector(limit=0)
            session = aiohttp.ClientSession(connector=connector)
            url = client.make_url(f"/api/ws/0?token={token}")
            readers = await asyncio.gather(*(session.ws_connect(url, max_msg_size=0) for _ in range(READERS)))
            for _ in range(1000):
                if hub.count(channel) == READERS + STALLED:
                    break
                await asyncio.sleep(0.01)
            assert hub.count(channel) == READERS + STALLED

            received: list[list[int]] = [[] for _ in readers]

            async def read_all(ws: aiohttp.ClientWebSocketResponse, seen: list[int]) -> None:
                async for message in ws:
                    if message.type == aiohttp.WSMsgType.TEXT:
                        frame = orjson.loads(message.data)
                        if frame.get("type") == "INIT_ROUTE":
                            seen.append(frame["boxVersion"])

            reading = [asyncio.create_task(read_all(ws, seen)) for ws, seen in zip(readers, received)]
            sent = 0
            for round_no in range(300):
                body = {"boxId": 0, "type": "INIT_ROUTE", "routeIndex": 1, "holdsCount": 10, "competitors": FIELD,
                        "categorie": f"round {round_no}"}
                response = await client.post("/api/cmd", json=body)
                assert response.status == 200, await response.text()
                sent += 1
                if hub.count(channel) == READERS and sent >= 10:
                    break
                # Let the readers drain between rounds, so only the stalled ones stay over the limit.
                for _ in range(200):
                    if min(len(seen) for seen in received) >= sent:
                        break
                    await asyncio.sleep(0.01)
            assert hub.count(channel) == READERS, "every stalled subscriber must have been closed"
            for _ in range(3000):
                if min(len(seen) for seen in received) >= sent:
                    break
                await asyncio.sleep(0.01)
            expected = list(range(1, sent + 1))
            wrong = [i for i, seen in enumerate(received) if seen != expected]
            assert not wrong, f"{len(wrong)} readers missed or reordered echoes, e.g. {received[wrong[0]][:20]}"

            for ws in readers:
                await ws.close()
            await asyncio.gather(*reading, return_exceptions=True)
            await session.close()
            for sock in stalled:
                sock.close()
            after = await settle({"fds": open_fds, "tasks": task_count, "subscribers": hub.count}, baseline,
                                 {"fds": 4, "tasks": 3})
            record("hostile.slow_clients", subscribers=READERS + STALLED, stalled=STALLED, updates=sent,
                   frame_bytes=len(orjson.dumps(body)), before=baseline, after=after)
            assert after["subscribers"] == baseline["subscribers"], after
            assert after["fds"] <= baseline["fds"] + 4, (baseline, after)
            assert after["tasks"] <= baseline["tasks"] + 3, (baseline, after)
    assert not trap.with_traceback(), trap.describe()
