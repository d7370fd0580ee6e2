"""The one worker process a background job runs in: a backup's zip, an export, a start list.

Spawned, not forked: forking a process with running threads and an event loop is unsafe, and it is
what macOS and Windows do anyway. The worker only gets the CPU that scoring leaves: on a venue PC with
one or two cores, a backup's worker at normal priority (about 260 ms of CPU to start and zip)
preempted the event loop for 24-45 ms in one turn of the realistic bench (docs/performance.md,
change 30).
"""
from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from concurrent.futures import ProcessPoolExecutor

BACKGROUND_NICE = 10  # where there is no SCHED_IDLE (macOS, BSD)


def background_executor() -> ProcessPoolExecutor:
    import multiprocessing  # these modules cost start-up time; most runs need them late or never
    from concurrent.futures import ProcessPoolExecutor

    return ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"),
                               initializer=lower_priority)


def lower_priority() -> None:
    """Runs first in the worker. Linux's SCHED_IDLE runs it only when a core has nothing else to do,
    and never lets it preempt the server; elsewhere it is niced; Windows keeps the normal priority."""
    if hasattr(os, "SCHED_IDLE"):
        try:
            os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
            return
        except OSError:
            pass
    if hasattr(os, "nice"):
        os.nice(BACKGROUND_NICE)
