"""When the hub's socket writes happen: after the replies, in short slices, and out of the way of
the commands being served.

Writing one frame to a few hundred sockets takes milliseconds (a write syscall costs 10–20 µs on
a small VM). Done in one go, it holds up every request that arrives meanwhile: a judge's next
command would wait behind the scoreboards. So the hub queues two kinds of work here, in order:

* steps: callables that decide what goes where (a box's publication, a join, an answer). They run
  when a flush starts, in the order queued, and turn into deliveries;
* deliveries: one frame (or an echo + snapshot pair) for a fixed tuple of sockets.

Deliveries are written in slices of about `slice_s`, with two loop turns between slices, so a
request read during a slice is dispatched before the next one. While commands are being served
(`serving_command`), writing waits for them, but only for `max_yield_s`: a command that takes
longer is waiting for the disk, not for the CPU, and the sockets need not wait with it (writing
goes on until no command is in flight, then waits again for the next one). Writing never waits
once more than `backlog_limit` writes are queued, so a flood of commands cannot grow the backlog
without bound (the commands then wait for the sockets, as they would without this queue).
Everything leaves in the order it was queued, so no socket can see a box's version go back.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Hashable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("belay.ws")

SLICE_S = 0.0005
MAX_YIELD_S = 0.002
BACKLOG_LIMIT = 5000  # queued socket writes
_CLOCK_EVERY = 8  # writes between two looks at the clock


@dataclass(slots=True)
class _Delivery:
    targets: tuple[Any, ...]  # Subscribers (anything with send / send_pair)
    frame: bytes
    key: Hashable
    pair: tuple[bytes, bytes] | None  # (echo, snapshot) when `frame` is both
    done: int = 0  # targets written so far


class FanoutQueue:
    def __init__(self, *, slice_s: float = SLICE_S, max_yield_s: float = MAX_YIELD_S,
                 backlog_limit: int = BACKLOG_LIMIT, clock: Callable[[], float] = time.perf_counter) -> None:
        self._slice_s = slice_s
        self._max_yield_s = max_yield_s
        self._backlog_limit = backlog_limit
        self._clock = clock
        self._steps: deque[Callable[[], None]] = deque()
        self._deliveries: deque[_Delivery] = deque()
        self._backlog = 0  # writes waiting in _deliveries
        self._commands = 0  # commands being served right now
        self._commands_started = 0  # since start-up
        self._serving = _Serving(self)  # one reusable context manager: entered on every command
        self._flush_due = False
        self._yield_timer: asyncio.TimerHandle | None = None  # set while writing waits for commands
        self._yield_spent = False  # the commands in flight have had their max_yield_s

    def has_steps(self) -> bool:
        return bool(self._steps)

    def step(self, item: Callable[[], None]) -> None:
        self._steps.append(item)
        self._schedule()

    def deliver(self, targets: tuple[Any, ...], frame: bytes, key: Hashable = None,
                pair: tuple[bytes, bytes] | None = None) -> None:
        if targets:
            self._deliveries.append(_Delivery(targets, frame, key, pair))
            self._backlog += len(targets)
            self._schedule()

    def serving_command(self) -> AbstractContextManager[None]:
        """Socket writes wait while the body runs (bounded, see the module's docstring)."""
        return self._serving

    @property
    def commands_in_flight(self) -> int:
        return self._commands

    @property
    def commands_started(self) -> int:
        return self._commands_started

    def _command_started(self) -> None:
        self._commands += 1
        self._commands_started += 1

    def _command_done(self) -> None:
        self._commands -= 1
        if not self._commands:
            self._yield_spent = False
            if self._yield_timer is not None:
                self._stop_yielding(spent=False)

    def clear(self) -> None:
        if self._yield_timer is not None:
            self._yield_timer.cancel()
            self._yield_timer = None
        self._steps.clear()
        self._deliveries.clear()
        self._backlog = 0

    def _schedule(self) -> None:
        if self._flush_due or self._yield_timer is not None:
            return
        self._flush_due = True
        loop = asyncio.get_running_loop()
        # Two turns: a box publishes just before the runtime releases its reply, and the request
        # task that writes the reply runs one turn later. Between slices, the same two turns let
        # a request read meanwhile start (and so announce itself) before the next slice.
        loop.call_soon(loop.call_soon, self._flush)

    def _stop_yielding(self, spent: bool) -> None:
        if self._yield_timer is not None:
            self._yield_timer.cancel()
            self._yield_timer = None
        self._yield_spent = spent
        if self._steps or self._deliveries:
            self._schedule()

    def _flush(self) -> None:
        flood = self._backlog > self._backlog_limit
        if self._commands and not flood and not self._yield_spent:
            self._flush_due = False
            self._yield_timer = asyncio.get_running_loop().call_later(
                self._max_yield_s, self._stop_yielding, True)
            return
        while self._steps:  # deciding what goes where is cheap next to writing it
            item = self._steps.popleft()
            try:
                item()
            except Exception:  # a bug in one step must not cost the other sockets their frames
                log.exception("WebSocket fan-out failed")
        self._write(float("inf") if flood else self._clock() + self._slice_s)
        self._flush_due = False  # only now: what the steps queued is already written or follows
        if self._deliveries or self._steps:
            self._schedule()

    def _write(self, deadline: float) -> None:
        writes = 0
        out_of_time = False
        while self._deliveries and not out_of_time:
            delivery = self._deliveries[0]
            targets, frame, key, pair = delivery.targets, delivery.frame, delivery.key, delivery.pair
            start = i = delivery.done
            while i < len(targets) and not out_of_time:
                try:
                    if pair is None:
                        targets[i].send(frame, key=key)
                    else:
                        targets[i].send_pair(frame, pair[0], pair[1], key)
                except Exception:  # one broken socket must not stop the others
                    log.exception("WebSocket write failed")
                i += 1
                writes += 1
                out_of_time = writes % _CLOCK_EVERY == 0 and self._clock() > deadline
            self._backlog -= i - start
            delivery.done = i
            if i == len(targets):
                self._deliveries.popleft()


class _Serving(AbstractContextManager[None]):
    """`with queue.serving_command():` without a generator per command."""

    def __init__(self, queue: FanoutQueue) -> None:
        self._queue = queue

    def __enter__(self) -> None:
        self._queue._command_started()

    def __exit__(self, *exc: object) -> None:
        self._queue._command_done()
