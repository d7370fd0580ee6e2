"""One thread that runs blocking calls in order, for the event loop to await.

`loop.run_in_executor` costs about 120,000 instructions per call on a one-thread pool (a
concurrent Future with its Condition, the work item, the pool's idle-thread bookkeeping, then a
second future on the loop). The log's thread makes that hop for every fdatasync batch, so here
the hop is just a queue put, and the thread hands the result back with one
`call_soon_threadsafe`: about 16,000.
"""
from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

_Job = tuple[asyncio.AbstractEventLoop, asyncio.Future[Any], Callable[..., Any], tuple[Any, ...]]


class IoThread:
    def __init__(self, name: str) -> None:
        self._name = name
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None  # started by the first call
        self._closed = False

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """fn(*args) on the thread, after every call submitted before it."""
        if self._closed:
            raise RuntimeError(f"{self._name} is closed")
        if self._thread is None:
            # A daemon: a process that exits without closing storage must not hang on this
            # thread; nothing was acknowledged for a call that had not returned.
            self._thread = threading.Thread(target=self._serve, name=self._name, daemon=True)
            self._thread.start()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._jobs.put((loop, future, fn, args))
        return await future

    def close(self) -> None:
        """Finish the calls already submitted, then stop the thread (waits for it)."""
        if self._closed:
            return
        self._closed = True
        if self._thread is not None:
            self._jobs.put(None)
            self._thread.join()

    def _serve(self) -> None:
        while (job := self._jobs.get()) is not None:
            loop, future, fn, args = job
            try:
                outcome: tuple[bool, Any] = (True, fn(*args))
            except BaseException as exc:  # the caller gets whatever the call raised
                outcome = (False, exc)
            try:
                loop.call_soon_threadsafe(_settle, future, outcome)
            except RuntimeError:  # the loop is closed: nobody is waiting any more
                pass


def _settle(future: asyncio.Future[Any], outcome: tuple[bool, Any]) -> None:
    if future.done():  # cancelled while the call ran
        return
    ok, value = outcome
    if ok:
        future.set_result(value)
    else:
        future.set_exception(value)
