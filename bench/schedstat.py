"""The server's event-loop thread as the kernel sees it: time on the CPU, and time ready but waiting.

`/proc/<pid>/task/<tid>/schedstat` holds two counters for each thread: the nanoseconds it has run,
and the nanoseconds it has been ready but waiting in the run queue. Sampled every few milliseconds
from the orchestrator, they tell a slow delivery that the loop (the main thread) spent working from
one it spent waiting for its core, and whether the server's own threads (the log, checkpoints, audit
reads) or other tasks had the core meanwhile.
"""
from __future__ import annotations

import os
import threading
import time
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from typing import Any

EVERY_S = 0.002

# (time.monotonic(), loop ns on the CPU, loop ns waiting, other threads ns on the CPU)
Sample = tuple[float, int, int, int]
TASKS_EVERY_S = 0.5  # how often the server's threads are listed again (storage threads start lazily)


class LoopSampler:
    def __init__(self, pid: int, every_s: float = EVERY_S) -> None:
        self._pid = pid
        self._every_s = every_s
        self._samples: list[Sample] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="loop-sampler", daemon=True)

    def start(self) -> LoopSampler:
        self._thread.start()
        return self

    def stop(self) -> list[Sample]:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        return self._samples

    def _run(self) -> None:
        files: dict[int, Any] = {}
        last: dict[int, int] = {}  # each other thread's ns on the CPU at its latest sample
        ended = 0  # what threads that have ended had run, so the sum never goes back
        listed = 0.0
        try:
            while not self._stop.is_set():
                now = time.monotonic()
                if now - listed >= TASKS_EVERY_S:
                    listed = now
                    for tid in map(int, os.listdir(f"/proc/{self._pid}/task")):
                        if tid not in files:
                            files[tid] = open(f"/proc/{self._pid}/task/{tid}/schedstat", "rb", buffering=0)  # noqa: SIM115 - kept open across reads
                loop = None
                for tid, f in list(files.items()):
                    try:
                        f.seek(0)
                        on_cpu, waiting = map(int, f.read(128).split()[:2])
                    except (OSError, ValueError):  # that thread has ended
                        files.pop(tid).close()
                        ended += last.pop(tid, 0)
                        continue
                    if tid == self._pid:
                        loop = (on_cpu, waiting)
                    else:
                        last[tid] = on_cpu
                if loop is None:
                    return  # the server has gone
                self._samples.append((time.monotonic(), loop[0], loop[1], ended + sum(last.values())))
                self._stop.wait(self._every_s)
        except OSError:
            return  # not Linux, or the server has gone: the samples so far are all there is
        finally:
            for f in files.values():
                f.close()


def loop_time(samples: Sequence[Sample], start: float, end: float) -> dict[str, float] | None:
    """The loop thread from the last sample at or before `start` to the first at or after `end`
    (that span is reported too); None when the samples do not cover the window."""
    times = [s[0] for s in samples]
    i, j = bisect_right(times, start) - 1, bisect_left(times, end)
    if i < 0 or j >= len(samples):
        return None
    (t0, cpu0, wait0, others0), (t1, cpu1, wait1, others1) = samples[i], samples[j]
    return {"span_ms": round((t1 - t0) * 1000, 1), "on_cpu_ms": round((cpu1 - cpu0) / 1e6, 1),
            "waiting_for_cpu_ms": round((wait1 - wait0) / 1e6, 1),
            "other_threads_on_cpu_ms": round((others1 - others0) / 1e6, 1)}


def loop_report(samples: Sequence[Sample], spans: Sequence[tuple[float, float]],
                worst: tuple[float, float]) -> dict[str, Any]:
    """The loop during the slowest delivery ((latency, sent)), and its waits over the turns' spans."""
    latency, sent = worst
    turns = [t for t in (loop_time(samples, a, b) for a, b in spans) if t is not None]
    span_ms = sum(t["span_ms"] for t in turns)
    waiting_ms = sum(t["waiting_for_cpu_ms"] for t in turns)
    return {"slowest_delivery": loop_time(samples, sent, sent + latency) if latency else None,
            "waiting_for_cpu_ms_in_turns": round(waiting_ms, 1),
            "waiting_for_cpu_pct_of_turns": round(100 * waiting_ms / span_ms, 2) if span_ms else None}
