"""Hashing threads with a bounded number in flight: per client address and overall, refused at once
beyond that, and a slot held until its thread is really done."""
from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator

import pytest

from actors.accounts.hashing import Hashing, HashingBusy

PHONE, ADMIN_LAPTOP, OTHER = "10.0.0.66", "10.0.0.2", "10.0.0.7"


class Gate:
    """A job that holds its hashing thread until the test opens the gate."""

    def __init__(self) -> None:
        self._open = threading.Event()
        self.started = threading.Semaphore(0)

    def job(self, value: str) -> str:
        self.started.release()
        self._open.wait(10)
        return value

    def open(self) -> None:
        self._open.set()


@pytest.fixture
async def hashing() -> AsyncIterator[Hashing]:
    pool = Hashing(workers=1, max_per_client=2, max_in_flight=3)
    yield pool
    pool.close()


async def settle(hashing: Hashing, in_flight: int) -> None:
    for _ in range(500):
        if hashing.in_flight == in_flight:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"in flight: {hashing.in_flight}, expected {in_flight}")


async def test_a_client_past_its_share_is_refused_at_once_and_nothing_is_queued(hashing: Hashing) -> None:
    gate = Gate()
    held = [asyncio.create_task(hashing.run(PHONE, gate.job, f"p{n}")) for n in range(2)]
    await asyncio.sleep(0)
    with pytest.raises(HashingBusy):
        await hashing.run(PHONE, gate.job, "third")
    assert hashing.in_flight == 2 and hashing.in_flight_for(PHONE) == 2
    other = asyncio.create_task(hashing.run(ADMIN_LAPTOP, gate.job, "admin"))
    await asyncio.sleep(0)
    assert hashing.in_flight == 3, "another address still gets in"
    gate.open()
    assert await asyncio.gather(*held, other) == ["p0", "p1", "admin"]
    await settle(hashing, 0)
    assert hashing.in_flight_for(PHONE) == 0
    assert hashing.peak == 3 and hashing.peak_per_client == 2


async def test_the_server_total_bounds_many_addresses_together(hashing: Hashing) -> None:
    gate = Gate()
    held = [asyncio.create_task(hashing.run(client, gate.job, client)) for client in (PHONE, PHONE, ADMIN_LAPTOP)]
    await asyncio.sleep(0)
    with pytest.raises(HashingBusy):
        await hashing.run(OTHER, gate.job, "fourth")
    gate.open()
    await asyncio.gather(*held)
    await settle(hashing, 0)
    assert await hashing.run(OTHER, gate.job, "later") == "later", "free again once the others are done"


async def test_a_caller_that_hangs_up_frees_its_slot_only_when_the_thread_is_done(hashing: Hashing) -> None:
    gate = Gate()
    running = asyncio.create_task(hashing.run(PHONE, gate.job, "running"))
    assert await asyncio.to_thread(gate.started.acquire, True, 10)
    queued = asyncio.create_task(hashing.run(PHONE, gate.job, "queued"))  # one worker: waits its turn
    await asyncio.sleep(0)
    running.cancel()
    queued.cancel()
    await asyncio.gather(running, queued, return_exceptions=True)
    await settle(hashing, 1)  # the queued job never started and is gone; the running one still works
    await asyncio.sleep(0.05)
    assert hashing.in_flight_for(PHONE) == 1, "a thread still hashing keeps its slot"
    gate.open()
    await settle(hashing, 0)
    assert hashing.in_flight_for(PHONE) == 0
