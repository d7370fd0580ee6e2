"""The world of the actor tests: the persister in a running ActorSystem over a real JSON storage in
tmp_path, on the fault-injecting file system (which can also hold the log's fdatasync, as a slow
disk would, so that messages pile up), a clock the test moves, and a fan-out that records what
subscribers would have been sent (it stands in for transport's hubs)."""
from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest

from actors.box_actor import BoxActor
from actors.messages import Execute, Origin, View
from actors.persister import Persister
from actors.recovery.replay import load_state
from actors.registry import BoxRegistry
from actors.rules import parse_command
from actors.runtime import Actor, ActorSystem
from persistence.factory import StorageSettings, storage_for
from persistence.fs import FaultyFileSystem, StrPath
from persistence.storage import Storage

LOG = "events.ndjson"
START_MS = 1_767_000_000_000
COMPETITORS = [{"nume": "Ana Pop"}, {"nume": "Bogdan Ionescu"}]


class Disk(FaultyFileSystem):
    """FaultyFileSystem whose fsyncs and fdatasyncs of one path can also be held until released."""

    def __init__(self) -> None:
        super().__init__()
        self._held: str | None = None
        self._released = threading.Event()
        self.holding = threading.Event()  # a sync is waiting at the hold

    def hold(self, path_contains: str = LOG) -> None:
        self._released.clear()
        self.holding.clear()
        self._held = path_contains

    def release(self) -> None:
        self._held = None
        self._released.set()

    async def until_holding(self) -> None:
        assert await asyncio.to_thread(self.holding.wait, 10), "nothing reached the held sync"

    def syncs_of(self, path_contains: str) -> int:
        return sum(1 for op, path in self.calls if op in ("fsync", "fdatasync") and path_contains in path)

    def fdatasync(self, fd: int) -> None:
        self._wait_if_held(self._path_of(fd))
        super().fdatasync(fd)

    def fsync(self, fd: int) -> None:
        self._wait_if_held(self._path_of(fd))
        super().fsync(fd)

    def _wait_if_held(self, path: StrPath) -> None:
        held = self._held
        if held is not None and held in str(path):
            self.holding.set()
            self._released.wait(10)


class ManualClock:
    def __init__(self, now_ms: int = START_MS) -> None:
        self.now = now_ms

    def now_ms(self) -> int:
        return self.now


@dataclass(frozen=True)
class Publication:
    box_id: int
    echo: dict[str, Any] | None
    snapshot: dict[str, Any] | None  # what the box's subscribers got after the echo, if anything
    public_kind: str | None


class RecordingFanout:
    """Records each box_changed call, building the snapshot the hub would have sent."""

    def __init__(self) -> None:
        self.publications: list[Publication] = []
        self._changed = asyncio.Event()

    def box_changed(self, box_id: int, *, echo: dict[str, Any] | None, snapshot: View, snapshot_to_box: bool,
                    public_kind: str | None, public_box: View | None) -> None:
        self.publications.append(Publication(box_id, echo, snapshot() if snapshot_to_box else None, public_kind))
        self._changed.set()

    async def next_matching(self, wanted: Callable[[Publication], bool], since: int = 0) -> Publication:
        """The first publication from index `since` on that `wanted` accepts, once there is one."""
        while True:
            found = next((p for p in self.publications[since:] if wanted(p)), None)
            if found is not None:
                return found
            self._changed.clear()
            await asyncio.wait_for(self._changed.wait(), 10)


@dataclass
class Rig:
    root: Path
    disk: Disk
    storage: Storage
    system: ActorSystem
    persister: Persister
    fanout: RecordingFanout
    clock: ManualClock
    actors: list[Actor] = field(default_factory=list)
    registries: list[BoxRegistry] = field(default_factory=list)

    def box(self, box_id: int, state: dict[str, Any], seq: int = 0, unavailable: str | None = None) -> BoxActor:
        actor = self.system.spawn(BoxActor(box_id, state, seq, persister=self.persister, fanout=self.fanout,
                                           clock=self.clock, officials=dict, unavailable=unavailable))
        self.actors.append(actor)
        return actor

    def registry(self) -> BoxRegistry:
        registry = BoxRegistry(self.system, self.persister, self.fanout, self.clock, officials=dict)
        self.registries.append(registry)
        return registry

    def log(self) -> list[dict[str, Any]]:
        """The committed events, oldest first."""
        raw = (self.root / LOG).read_bytes()
        assert raw == b"" or raw.endswith(b"\n"), "the log must end at a committed line"
        return [orjson.loads(line) for line in raw.splitlines()]


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    disk = Disk()
    storage = storage_for(StorageSettings("json", tmp_path / "data", 50 * 2**20), fs=disk)
    await storage.open(False, load_state)
    system = ActorSystem()
    await system.start()
    persister = system.spawn(Persister(storage, checkpoint_interval_s=3600.0))
    world = Rig(tmp_path / "data", disk, storage, system, persister, RecordingFanout(), ManualClock())
    try:
        yield world
    finally:
        disk.release()
        for registry in world.registries:
            await registry.close()
        for actor in world.actors:
            actor.stop()
            await actor.finished.wait()
        persister.stop()
        await persister.finished.wait()
        await system.close()
        await storage.close()


def command(box: BoxActor, kind: str, *, role: str = "judge", **fields: Any) -> Execute:
    """`kind` as a client of the box's current session sends it."""
    body = {"type": kind, "boxId": box.box_id, "sessionId": box.state["sessionId"], **fields}
    return Execute(parse_command(body), Origin(username=role, role=role))


def init_route(box_id: int, *, role: str = "judge", **extra: Any) -> Execute:
    body = {"type": "INIT_ROUTE", "boxId": box_id, "routeIndex": 1, "holdsCount": 20, "routesCount": 1,
            "holdsCounts": [20], "competitors": COMPETITORS, "timerPreset": "05:00", "categorie": "U16", **extra}
    return Execute(parse_command(body), Origin(username=role, role=role))
