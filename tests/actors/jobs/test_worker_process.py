"""Background jobs (backup zips, exports, start lists) run in a worker that yields the CPU to the server."""
import os

import pytest

from actors.jobs.process import BACKGROUND_NICE, background_executor


def priority() -> tuple[int, int]:
    return os.sched_getscheduler(0) if hasattr(os, "sched_getscheduler") else -1, os.nice(0)


@pytest.mark.skipif(not hasattr(os, "nice"), reason="no process priorities here")
def test_the_worker_yields_the_cpu_to_the_server() -> None:
    executor = background_executor()
    try:
        policy, niceness = executor.submit(priority).result(timeout=60)
    finally:
        executor.shutdown(wait=True)
    if hasattr(os, "SCHED_IDLE"):
        assert policy == os.SCHED_IDLE  # Linux: only the CPU nothing else wants
    else:
        assert niceness == min(19, os.nice(0) + BACKGROUND_NICE)
