"""Password hashing off the event loop, on its own threads, with a bounded number in flight.

A hash costs ~50 ms of CPU on purpose, so an unbounded queue of them is a way to lock everyone
out: 400 bad logins queued ahead of the admin's made it wait 8 s. Each client address may have a
few hashes queued or running and the server a few dozen; beyond that the caller is refused at once
(the route answers 429) and nothing is queued. A flood from one address therefore sits at most
MAX_PER_CLIENT hashes ahead of anyone else's login.
"""
from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Final, TypeVar

T = TypeVar("T")

WORKERS: Final = 2
# Two: a double-submitted form still goes through, and a flood from one address delays another
# address's login by about one hash time (two hashes ahead, two workers).
MAX_PER_CLIENT: Final = 2
# A dozen tablets logging in at once after a Wi-Fi drop, with room to spare; the longest wait a
# full queue can cause is MAX_IN_FLIGHT / WORKERS hash times, under a second.
MAX_IN_FLIGHT: Final = 32
RETRY_AFTER_S: Final = 1


class HashingBusy(Exception):
    """Too many hashes in flight for this client or for the server; nothing was queued."""


class Hashing:
    def __init__(self, workers: int = WORKERS, max_per_client: int = MAX_PER_CLIENT,
                 max_in_flight: int = MAX_IN_FLIGHT) -> None:
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="belay-hash")
        self.max_per_client = max_per_client
        self.max_in_flight = max_in_flight
        self._by_client: dict[str, int] = {}
        self.in_flight = 0
        self.peak = 0  # the most ever in flight, and per client: the bounds are observable
        self.peak_per_client = 0

    async def run(self, client: str, fn: Callable[..., T], *args: Any) -> T:
        """fn(*args) on a hashing thread for `client` (an address). Raises HashingBusy at once when
        that client or the server has as many in flight as allowed."""
        held = self._by_client.get(client, 0)
        if held >= self.max_per_client or self.in_flight >= self.max_in_flight:
            raise HashingBusy()
        loop = asyncio.get_running_loop()
        job = self._pool.submit(fn, *args)
        self._by_client[client] = held + 1
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        self.peak_per_client = max(self.peak_per_client, held + 1)

        def done(_: object) -> None:
            try:
                loop.call_soon_threadsafe(self._release, client)
            except RuntimeError:  # the loop is closed: nobody is counting any more
                pass

        # Released when the thread is done with it (or it was cancelled before it started), not
        # when the caller stops waiting: a client that hangs up must not free a slot still working.
        job.add_done_callback(done)
        return await asyncio.wrap_future(job)

    def close(self) -> None:
        self._pool.shutdown(wait=True)

    def in_flight_for(self, client: str) -> int:
        return self._by_client.get(client, 0)

    def _release(self, client: str) -> None:
        self.in_flight -= 1
        left = self._by_client.pop(client) - 1
        if left:
            self._by_client[client] = left
