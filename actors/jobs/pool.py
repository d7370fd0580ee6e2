"""The worker process that runs slow or untrusted jobs off the event loop: start-list parsing and exports.

One process, one job at a time; a job over its time limit has its process killed and replaced, so the
event loop never stalls and a stuck or crashing job cannot take the server with it.
"""
from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from actors.jobs.process import background_executor

if TYPE_CHECKING:
    from concurrent.futures import ProcessPoolExecutor

T = TypeVar("T")

# Extra time the hard kill waits beyond the worker's own deadline, so a cooperative stop answers first.
KILL_GRACE_S = 2.0


class WorkerTimeout(Exception):
    """The worker did not finish in time and was killed."""


class WorkerDied(Exception):
    """The worker process ended during the job (killed, out of memory)."""


class WorkerPool:
    """One worker process, one job at a time; a job over its time limit gets its worker killed and replaced."""

    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self._executor: ProcessPoolExecutor | None = None
        self._lock = asyncio.Lock()

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """fn(*args) in the worker; WorkerTimeout after timeout_s (+ grace), WorkerDied if it died."""
        from concurrent.futures.process import BrokenProcessPool  # loaded with the first job
        # Serialised so the time limit measures this job, not the queue in front of it.
        async with self._lock:
            future = self._pool().submit(fn, *args)
            try:
                return await asyncio.wait_for(asyncio.wrap_future(future), self.timeout_s + KILL_GRACE_S)
            except TimeoutError:
                self._kill()
                raise WorkerTimeout() from None
            except BrokenProcessPool:
                self._kill()
                raise WorkerDied() from None

    def _pool(self) -> ProcessPoolExecutor:
        if self._executor is None:
            self._executor = background_executor()  # on first use: many apps never upload or export
        return self._executor

    def _kill(self) -> None:
        executor, self._executor = self._executor, None
        if executor is None:
            return
        # A running job cannot be cancelled; terminating its process is the only way to stop it.
        for process in list((getattr(executor, "_processes", None) or {}).values()):
            process.terminate()
        executor.shutdown(wait=False, cancel_futures=True)

    async def close(self) -> None:
        if self._lock.locked():
            self._kill()  # do not hold up shutdown behind a job
        executor, self._executor = self._executor, None
        if executor is not None:
            await asyncio.to_thread(executor.shutdown, True, cancel_futures=True)
