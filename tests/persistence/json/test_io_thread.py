"""The storage threads: calls run in order on one thread, results and errors come back, a
cancelled caller does not break the thread, and close finishes what was submitted."""
from __future__ import annotations

import asyncio
import threading
import time

import pytest

from persistence.json.io_thread import IoThread


async def test_calls_run_in_order_on_one_thread_off_the_loop() -> None:
    thread = IoThread("test-io")
    seen: list[tuple[int, str]] = []

    def record(n: int) -> int:
        time.sleep(0.001 * (5 - n))  # later calls are quicker: only the queue keeps them in order
        seen.append((n, threading.current_thread().name))
        return n * n

    try:
        results = await asyncio.gather(*(thread.run(record, n) for n in range(5)))
    finally:
        thread.close()
    assert results == [0, 1, 4, 9, 16]
    assert [n for n, _ in seen] == [0, 1, 2, 3, 4]
    assert {name for _, name in seen} == {"test-io"}


async def test_an_error_reaches_the_caller_and_the_thread_keeps_serving() -> None:
    thread = IoThread("test-io")

    def fail() -> None:
        raise OSError(28, "No space left on device")

    try:
        with pytest.raises(OSError, match="No space left"):
            await thread.run(fail)
        assert await thread.run(lambda: "still here") == "still here"
    finally:
        thread.close()


async def test_a_cancelled_caller_leaves_the_call_to_finish_and_the_thread_serving() -> None:
    thread = IoThread("test-io")
    release = threading.Event()
    finished = threading.Event()

    def slow() -> str:
        release.wait(5)
        finished.set()
        return "done"

    loop = asyncio.get_running_loop()
    errors: list[dict] = []
    loop.set_exception_handler(lambda _loop, context: errors.append(context))
    try:
        waiter = asyncio.create_task(thread.run(slow))
        await asyncio.sleep(0.05)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        release.set()
        assert await thread.run(lambda: 7) == 7  # queued behind slow(), which therefore ran
        assert finished.is_set()
        assert errors == []  # the late result was dropped, not set on the cancelled future
    finally:
        loop.set_exception_handler(None)
        thread.close()


async def test_close_finishes_submitted_calls_then_refuses_new_ones() -> None:
    thread = IoThread("test-io")
    done: list[int] = []
    def slow_append(n: int) -> int:
        time.sleep(0.05)
        done.append(n)
        return n

    pending = [asyncio.ensure_future(thread.run(slow_append, n)) for n in range(3)]
    await asyncio.sleep(0)  # each run() has queued its call
    await asyncio.get_running_loop().run_in_executor(None, thread.close)
    assert done == [0, 1, 2]
    assert await asyncio.gather(*pending) == [0, 1, 2]
    with pytest.raises(RuntimeError, match="closed"):
        await thread.run(lambda: None)
    thread.close()  # twice is harmless


def test_no_thread_is_started_before_the_first_call() -> None:
    before = threading.active_count()
    thread = IoThread("test-io")
    assert threading.active_count() == before
    thread.close()
