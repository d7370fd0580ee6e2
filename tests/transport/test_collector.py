"""The collector's routine: young collections only, then everything that survived is frozen."""
import asyncio
import gc

import pytest

from transport import collector


@pytest.fixture
def restored_gc():
    thresholds, enabled = gc.get_threshold(), gc.isenabled()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)
    (gc.enable if enabled else gc.disable)()


async def test_the_collector_freezes_survivors_after_young_collections(restored_gc, monkeypatch) -> None:
    monkeypatch.setattr(collector, "FREEZE_EVERY_S", 0.01)
    generations: list[int] = []

    def record(phase: str, info: dict) -> None:
        if phase == "start":
            generations.append(info["generation"])

    gc.disable()
    gc.unfreeze()
    task = asyncio.create_task(collector.keep_collections_short())
    gc.callbacks.append(record)
    try:
        await asyncio.sleep(0)  # the first freeze: what start-up made
        assert gc.isenabled() and gc.get_threshold() == collector.THRESHOLDS
        survivor = [object()]  # made after the first freeze: young until the routine runs
        frozen_before = gc.get_freeze_count()
        for _ in range(500):  # bounded: a routine that stopped collecting fails, not hangs
            if generations.count(1) >= 3:
                break
            await asyncio.sleep(0.01)
        assert generations.count(1) >= 3
        assert gc.get_freeze_count() > frozen_before  # the survivor and its kind moved out of the way
        assert 2 not in generations  # never a full collection before the hour is up
        assert survivor
    finally:
        gc.callbacks.remove(record)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
