"""The collector's routine: young collections, then everything that survived is frozen; a burst of
young objects is frozen without a walk; the full collection waits for a quiet spell."""
import asyncio
import contextlib
import gc
import itertools
from collections.abc import AsyncIterator, Callable

import pytest

from transport import collector


@pytest.fixture
def restored_gc():
    thresholds, enabled = gc.get_threshold(), gc.isenabled()
    gc.disable()
    gc.unfreeze()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)
    (gc.enable if enabled else gc.disable)()


class Collections:
    """The generation of every collection that starts while this is installed."""

    def __init__(self) -> None:
        self.generations: list[int] = []

    def __call__(self, phase: str, info: dict) -> None:
        if phase == "start":
            self.generations.append(info["generation"])

    def __enter__(self) -> "Collections":
        gc.callbacks.append(self)
        return self

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self)


@contextlib.asynccontextmanager
async def routine(commands: Callable[[], int]) -> AsyncIterator[None]:
    """The collector's routine, past its first freeze (what "start-up" made), until the block ends."""
    task = asyncio.create_task(collector.keep_collections_short(commands, collector.Pauses()))
    await asyncio.sleep(0)
    try:
        yield
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def wait_for(condition: Callable[[], bool], ticks: int = 500) -> None:
    """Bounded: a routine that never does it fails the test's assertions, it does not hang."""
    for _ in range(ticks):
        if condition():
            return
        await asyncio.sleep(0.01)


@pytest.fixture
def fast(monkeypatch):
    monkeypatch.setattr(collector, "FREEZE_EVERY_S", 0.01)


async def test_the_collector_freezes_survivors_after_young_collections(restored_gc, fast) -> None:
    with Collections() as seen:
        async with routine(lambda: 0):
            assert gc.isenabled() and gc.get_threshold() == collector.THRESHOLDS
            survivor = [object()]  # made after the first freeze: young until the routine runs
            await wait_for(lambda: seen.generations.count(1) >= 3)
    assert seen.generations.count(1) >= 3
    assert not any(o is survivor for g in (0, 1, 2) for o in gc.get_objects(g)), "moved out of the way"
    assert 2 not in seen.generations  # never a full collection before the hour is up


async def test_a_burst_of_young_objects_is_frozen_without_walking_it(restored_gc, fast, monkeypatch) -> None:
    monkeypatch.setattr(collector, "YOUNG_WALK_LIMIT", 1_000)
    walked: list[int] = []  # young objects at the start of each of the routine's young collections

    def record(phase: str, info: dict) -> None:
        if phase == "start" and info["generation"] == 1:
            walked.append(len(gc.get_objects(0)) + len(gc.get_objects(1)))

    burst: list[list[int]] = []
    gc.callbacks.append(record)
    try:
        async with routine(lambda: 0):
            frozen_before = gc.get_freeze_count()
            burst.extend([n] for n in range(5_000))  # 5,000 young containers, like a storm's teardown
            await wait_for(lambda: gc.get_freeze_count() >= frozen_before + 5_000 and bool(walked))
            frozen = gc.get_freeze_count() - frozen_before
    finally:
        gc.callbacks.remove(record)
    assert frozen >= 5_000, "the burst was frozen"
    assert walked, "young collections go on once the burst is frozen"
    assert max(walked) < 5_000, "the burst itself was never walked"


@pytest.mark.parametrize(("since_full", "quiet_for", "due"), [
    (0.0, 10_000.0, False),  # just done
    (3599.0, 10_000.0, False),  # not an hour yet
    (3600.0, 59.0, False),  # an hour, but commands came a moment ago
    (3600.0, 60.0, True),  # an hour and a quiet minute
    (86_399.0, 0.0, False),  # busy all day
    (86_400.0, 0.0, True),  # a day: at the latest
])
def test_the_full_collection_waits_for_a_quiet_spell(since_full: float, quiet_for: float, due: bool) -> None:
    assert collector.full_collection_due(since_full, quiet_for) is due


async def test_the_full_collection_runs_when_no_command_comes(restored_gc, fast, monkeypatch) -> None:
    monkeypatch.setattr(collector, "FULL_COLLECTION_EVERY_S", 0.05)
    monkeypatch.setattr(collector, "QUIET_S", 0.1)
    served = itertools.count()
    with Collections() as seen:
        async with routine(lambda: next(served)):  # a command every tick
            await asyncio.sleep(0.4)
        assert 2 not in seen.generations, "no full collection while commands come"
        async with routine(lambda: 7):
            await wait_for(lambda: 2 in seen.generations)
    assert 2 in seen.generations
