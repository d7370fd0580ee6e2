"""Judge-tablet liveness: a box is fine while a judge's socket for it is connected and heard from,
and offline (in /api/health) once none is connected or all have been silent too long. The control
panel's and spectators' sockets on the same box do not count, and judges are pinged more often than others."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import orjson
from aiohttp import WSMsgType

from tests.conftest import make_config, serving
from tests.transport.ws.tablet_helpers import equals, judge_token, mute_tablet, offline_boxes, tablet, until
from transport.app import create_app
from transport.ws.keys import TABLETS
from transport.ws.tablets import TabletWatch


async def test_a_judge_socket_makes_its_box_fine_and_its_disconnect_makes_it_offline(tmp_path: Path) -> None:
    async with serving(create_app(make_config(tmp_path / "data"))) as client:
        await client.post("/api/cmd", json={"boxId": 1, "type": "INIT_ROUTE", "routeIndex": 1, "holdsCount": 10})
        assert await offline_boxes(client) == [1]  # a box with no tablet at all is red
        token = await judge_token(client, 1)
        async with tablet(client, 1, token):
            await until(lambda: equals(offline_boxes(client), []))
            status = client.app[TABLETS].status(1)
            assert status.connected == 1 and status.online
        await until(lambda: equals(offline_boxes(client), [1]))
        status = client.app[TABLETS].status(1)
        assert status.connected == 0 and not status.online and status.heard_ago_s is not None


async def test_the_control_panel_and_spectators_on_a_box_are_not_its_tablet(tmp_path: Path) -> None:
    async with serving(create_app(make_config(tmp_path / "data"))) as client:
        await client.post("/api/cmd", json={"boxId": 1, "type": "INIT_ROUTE", "routeIndex": 1, "holdsCount": 10})
        spectator_token = (await (await client.post("/api/public/token")).json())["access_token"]
        sockets = [await client.ws_connect("/api/ws/1"),  # the admin's cookie: the control panel
                   await client.ws_connect(f"/api/public/ws/1?token={spectator_token}")]
        for ws in sockets:
            assert orjson.loads((await ws.receive(timeout=5)).data)["type"] == "STATE_SNAPSHOT"
        assert (await offline_boxes(client), client.app[TABLETS].status(1).connected) == ([1], 0)
        for ws in sockets:
            await ws.close()


async def test_a_connected_but_silent_tablet_turns_its_box_offline(tmp_path: Path) -> None:
    async with serving(create_app(make_config(tmp_path / "data", tablet_silent_after_s=0.5))) as client:
        ws = await mute_tablet(client, 2)  # never reads, so never answers: asleep, its socket still open
        await until(lambda: equals(offline_boxes(client), [2]))
        assert client.app[TABLETS].status(2).connected == 1
        await ws.close()


async def test_judge_sockets_are_pinged_at_the_tablet_interval(tmp_path: Path) -> None:
    # Everyone else keeps the 30 s default: two pings within the waits below are a tablet's pings.
    async with serving(create_app(make_config(tmp_path / "data", ws_tablet_ping_interval_s=0.3))) as client:
        ws = await mute_tablet(client, 1)
        pings = 0
        while pings < 2:
            message = await ws.receive(timeout=10)
            assert message.type in (WSMsgType.TEXT, WSMsgType.PING), message
            if message.type == WSMsgType.PING:
                pings += 1
                await ws.pong(message.data)
        await ws.close()


# -- TabletWatch on its own ------------------------------------------------------------------------

@dataclass(eq=False)  # hashed by identity, as a Subscriber is
class FakeSocket:
    last_heard: float


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_box_never_seen_has_no_tablet_and_was_never_heard() -> None:
    watch = TabletWatch(15.0, Clock())
    status = watch.status(4)
    assert (status.connected, status.heard_ago_s, status.online) == (0, None, False)
    assert watch.offline_boxes([4, 5]) == [4, 5]


def test_the_newest_word_of_any_tablet_counts_and_silence_turns_the_box_offline() -> None:
    clock = Clock()
    watch = TabletWatch(15.0, clock)
    quiet, lively = FakeSocket(clock.now - 20), FakeSocket(clock.now - 3)
    watch.connected(1, quiet)  # type: ignore[arg-type]
    watch.connected(1, lively)  # type: ignore[arg-type]
    status = watch.status(1)
    assert (status.connected, status.heard_ago_s, status.online) == (2, 3.0, True)
    clock.now += 12.5  # the lively one silent for 15.5 s now
    assert not watch.status(1).online and watch.offline_boxes([]) == [1]


def test_a_tablet_that_left_keeps_its_last_word_but_not_the_box_online() -> None:
    clock = Clock()
    watch = TabletWatch(15.0, clock)
    gone = FakeSocket(clock.now - 1)
    watch.connected(3, gone)  # type: ignore[arg-type]
    watch.disconnected(3, gone)  # type: ignore[arg-type]
    watch.disconnected(3, gone)  # type: ignore[arg-type]  # twice is harmless
    status = watch.status(3)
    assert (status.connected, status.heard_ago_s, status.online) == (0, 1.0, False)
    assert watch.boxes() == {3}
