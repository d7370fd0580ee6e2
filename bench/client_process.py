"""What every client process shares: the process shell and the box each client sets up.

Each client runs in its own (spawned) process, pinned to the client core. Protocol with the
orchestrator, over one multiprocessing queue: ("ready", idx, info) once set up, then wait for the
shared `go` event, then ("result", idx, data) or ("error", idx, traceback). Every result carries the
process's own CPU seconds and wall time over the measured part.

Clients collect no garbage while they measure: a collection in a client holds its sends and
its reads back, and an open-loop sender's pause was counted against the server (a 40 ms
collection 1.7 s into every run made the open-loop p99; docs/performance.md). Their garbage
has no cycles worth a collection in a run's seconds; it dies by reference counting.
"""
from __future__ import annotations

import asyncio
import gc
import os
import resource
import time
import traceback
from collections.abc import Awaitable, Callable
from typing import Any

from bench.server import prepare_process

FIRST = ["Ana", "Bogdan", "Cris", "Dana", "Ștefan", "Ioana", "Mihai", "Elena", "Radu", "Sofia"]
LAST = ["Pop", "Ionescu", "O'Connor", "Dropu"]
NAMES = [f"{FIRST[i % 10]} {LAST[i % 4]} {i + 1:02d}" for i in range(30)]
PRESET_S = 99 * 60

Ready = Callable[[Any], None]
WaitGo = Callable[[], Awaitable[None]]
Body = Callable[[Any, dict[str, Any], Ready, WaitGo], Awaitable[dict[str, Any]]]


def init_route(box: int) -> dict[str, Any]:
    return {"boxId": box, "type": "INIT_ROUTE", "routeIndex": 1, "holdsCount": 50, "routesCount": 1,
            "holdsCounts": [50], "competitors": [{"nume": n} for n in NAMES], "timerPreset": "99:00",
            "categorie": "Bench Seniors"}


def run_client(idx: int, cfg: dict[str, Any], queue: Any, go: Any, body: Body, extra: Any = None) -> None:
    """Common shell: pinning, uvloop, ready/go handshake, CPU accounting, errors back to the parent."""
    prepare_process(cfg.get("cores"))
    try:
        import uvloop
        runner: Callable[[Awaitable[Any]], Any] = uvloop.run
    except ImportError:  # the harness still works, just with a slower client loop
        runner = asyncio.run

    async def main() -> None:
        measured: dict[str, float] = {}

        async def wait_go() -> None:
            await asyncio.get_running_loop().run_in_executor(None, go.wait)
            gc.freeze()
            gc.disable()
            measured.update(t0=time.monotonic(), cpu0=_cpu_seconds())

        data = await body(extra, cfg, lambda info: queue.put(("ready", idx, info)), wait_go)
        gc.enable()
        cpu = _cpu_seconds()
        data["wall_s"] = time.monotonic() - measured.get("t0", time.monotonic())
        data["cpu_s"] = cpu - measured.get("cpu0", cpu)
        data["pid"] = os.getpid()
        queue.put(("result", idx, data))

    try:
        runner(main())
    except BaseException:  # anything, so the orchestrator never waits for a dead process
        queue.put(("error", idx, traceback.format_exc()))


def _cpu_seconds() -> float:
    """This process's user+system CPU; getrusage has µs resolution where os.times has 10 ms ticks."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime
