"""Fan-out runs after the replies (transport/ws/fanout_queue.py): sockets that join, and ask for the state,
while commands are in flight still see every box version in order and end on the final one."""
from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import orjson
from aiohttp import WSMsgType

from persistence.fs import FileSystem
from tests.conftest import make_config, serving
from tests.transport.test_live_protocol import command, init_route, next_json, next_of, post, state
from transport.app import create_app
from transport.ws.frames import text_frame
from transport.ws.hub import Hub, box_channel
from transport.ws.keys import HUB

COMMANDS = 400
SOCKETS = 16


async def test_late_joiners_never_see_a_version_go_back(tmp_path: Path) -> None:
    async with serving(create_app(make_config(tmp_path / "data", rate_limits=False))) as client:
        assert (await post(client, init_route()))[0] == 200
        session = (await state(client))["sessionId"]
        done = asyncio.Event()

        async def send_commands() -> None:
            async def one(n: int) -> None:
                body = {"boxId": 0, "type": "PROGRESS_UPDATE", "sessionId": session, "delta": 1 if n % 2 else -1}
                assert (await post(client, body))[0] == 200

            for start in range(0, COMMANDS, 16):  # sixteen in flight at a time
                await asyncio.gather(*(one(n) for n in range(start, start + 16)))
            done.set()

        async def watch(delay_s: float) -> list[int]:
            await asyncio.sleep(delay_s)
            ws = await client.ws_connect("/api/ws/0")
            await ws.send_str('{"type":"REQUEST_STATE","boxId":0}')
            versions: list[int] = []
            deadline = asyncio.get_running_loop().time() + 20
            while asyncio.get_running_loop().time() < deadline:
                try:
                    message = await ws.receive(timeout=0.2)
                except TimeoutError:
                    if done.is_set() and versions and versions[-1] == (await state(client))["boxVersion"]:
                        break
                    continue
                assert message.type == WSMsgType.TEXT, message.type
                frame = orjson.loads(message.data)
                if "boxVersion" in frame:
                    versions.append(frame["boxVersion"])
                if frame.get("type") == "PROGRESS_UPDATE" and not done.is_set():
                    # ask again after each change: every answer must fit between the broadcasts
                    await ws.send_str('{"type":"REQUEST_STATE","boxId":0}')
            await ws.close()
            return versions

        sender = asyncio.create_task(send_commands())
        seen = await asyncio.gather(*(watch(0.02 * n) for n in range(SOCKETS)))
        await sender
        final = (await state(client))["boxVersion"]
        assert final == 1 + COMMANDS
        for versions in seen:
            assert versions == sorted(versions), versions
            assert versions[-1] == final


class HeldDisk(FileSystem):
    """A real file system whose fdatasync can be held, as a stuck disk would hold it."""

    def __init__(self) -> None:
        self.free = threading.Event()
        self.free.set()

    def fdatasync(self, fd: int) -> None:
        self.free.wait(10)
        super().fdatasync(fd)


async def test_a_command_stuck_on_the_disk_does_not_hold_up_other_screens(tmp_path: Path) -> None:
    """Scoreboard frames wait for a command being served, but only briefly: box 1's score stuck
    on the disk must not keep box 0's screens from their updates."""
    disk = HeldDisk()
    async with serving(create_app(make_config(tmp_path / "data", rate_limits=False), fs=disk)) as client:
        for box in (0, 1):
            assert (await post(client, init_route(box)))[0] == 200
        ws = await client.ws_connect("/api/ws/0")
        await next_json(ws)
        disk.free.clear()
        stuck = asyncio.create_task(command(client, 1, "PROGRESS_UPDATE", delta=1))
        await asyncio.sleep(0.2)
        assert not stuck.done()  # waiting for the disk, so being served
        assert client.app[HUB].commands_being_served() == 1  # POST /api/cmd told the hub
        assert (await command(client, 0, "ACTIVE_CLIMBER", competitor="Ana Pop"))[0] == 200  # a relay: no disk
        assert (await next_of(ws, {"ACTIVE_CLIMBER"}, timeout=2.0))["competitor"] == "Ana Pop"
        assert not stuck.done()
        disk.free.set()
        assert (await stuck)[0] == 200
        assert client.app[HUB].commands_being_served() == 0
        assert (await state(client, 1))["holdCount"] == 1
        await ws.close()


# -- the queue's order, step by step (a recording subscriber stands in for a socket) -----------

class Recorder:
    """Records what the hub hands to a socket."""

    def __init__(self) -> None:
        self.frames: list[bytes] = []
        self.closed = False

    def send(self, frame: bytes, *, key: object = None) -> None:
        self.frames.append(frame)

    def send_pair(self, pair: bytes, first: bytes, second: bytes, second_key: object) -> None:
        assert pair == first + second
        self.frames += [first, second]


def published(hub: Hub, version: int) -> None:
    hub.box_changed(0, echo={"type": "PROGRESS_UPDATE", "boxVersion": version},
                    snapshot=lambda: {"type": "STATE_SNAPSHOT", "boxVersion": version},
                    snapshot_to_box=True, public_kind=None, public_box=None)


def versions_of(recorder: Recorder) -> list[tuple[str, int]]:
    return [(doc["type"], doc["boxVersion"]) for doc in (orjson.loads(f[2:]) for f in recorder.frames)]


async def test_the_reply_goes_out_before_the_fan_out() -> None:
    hub, member = Hub(), Recorder()
    hub.join(box_channel(0), member, text_frame(b'{"type":"STATE_SNAPSHOT","boxVersion":1}'))
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    reply = asyncio.get_running_loop().create_future()
    seen_at_reply: list[int] = []

    async def handler() -> None:  # what aiohttp's request task does with the actor's reply
        await reply
        seen_at_reply.append(len(member.frames))

    waiting = asyncio.create_task(handler())
    await asyncio.sleep(0)
    published(hub, 2)  # the box publishes, then the runtime releases the reply, as box_actor does
    reply.set_result(None)
    await waiting
    assert seen_at_reply == [1]  # only the first snapshot had gone out
    for _ in range(3):
        await asyncio.sleep(0)
    assert versions_of(member) == [("STATE_SNAPSHOT", 1), ("PROGRESS_UPDATE", 2), ("STATE_SNAPSHOT", 2)]


async def test_joins_and_answers_keep_their_place_behind_queued_frames() -> None:
    hub, member, newcomer = Hub(), Recorder(), Recorder()
    hub.join(box_channel(0), member, text_frame(b'{"type":"STATE_SNAPSHOT","boxVersion":4}'))
    published(hub, 5)
    # Built from the box's state after version 5: it must not be followed by version 5's frames.
    hub.join(box_channel(0), newcomer, text_frame(b'{"type":"STATE_SNAPSHOT","boxVersion":5}'))
    hub.send_to(member, text_frame(b'{"type":"STATE_SNAPSHOT","boxVersion":5}'))
    published(hub, 6)
    for _ in range(3):
        await asyncio.sleep(0)
    assert versions_of(member) == [("STATE_SNAPSHOT", 4), ("PROGRESS_UPDATE", 5), ("STATE_SNAPSHOT", 5),
                                   ("STATE_SNAPSHOT", 5), ("PROGRESS_UPDATE", 6), ("STATE_SNAPSHOT", 6)]
    assert versions_of(newcomer) == [("STATE_SNAPSHOT", 5), ("PROGRESS_UPDATE", 6), ("STATE_SNAPSHOT", 6)]
