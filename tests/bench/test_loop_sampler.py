"""The bench's view of the server's loop thread: the sampler reads a real process's counters, and a
slow delivery is split into the loop's time on the CPU, its wait for the CPU and the other threads'."""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.schedstat import LoopSampler, loop_report, loop_time

BUSY = """
import threading, time
def spin():
    # CPU time, not wall time: on a busy machine each thread still gets its 0.3 s of CPU.
    while time.thread_time() < 0.3:
        pass
other = threading.Thread(target=spin)  # another thread, busy as long as the main one
print("spinning", flush=True)
other.start()
spin()
other.join()
print("done", flush=True)
time.sleep(30)
"""


@pytest.mark.skipif(not Path("/proc/self/task").exists() or not Path("/proc/self/schedstat").exists(),
                    reason="needs Linux /proc schedstat")
def test_the_sampler_reads_the_loop_thread_and_the_others_of_a_real_process() -> None:
    proc = subprocess.Popen([sys.executable, "-c", BUSY], stdout=subprocess.PIPE)
    try:
        assert proc.stdout is not None and proc.stdout.readline() == b"spinning\n"
        sampler = LoopSampler(proc.pid, every_s=0.005).start()
        finished = proc.stdout.readline()
        time.sleep(0.05)
        samples = sampler.stop()
        assert finished == b"done\n"
    finally:
        proc.kill()
        proc.wait()
        if proc.stdout:
            proc.stdout.close()
    assert len(samples) >= 20
    times = [s[0] for s in samples]
    assert times == sorted(times)
    for column in (1, 2, 3):
        values = [s[column] for s in samples]
        assert values == sorted(values), "counters only grow"
    ran = loop_time(samples, samples[0][0], samples[-1][0])
    assert ran is not None
    assert ran["on_cpu_ms"] >= 100, "the main thread spun for 0.3 s of CPU"  # GIL: the two threads take turns
    assert ran["other_threads_on_cpu_ms"] >= 100
    assert ran["on_cpu_ms"] + ran["other_threads_on_cpu_ms"] + ran["waiting_for_cpu_ms"] <= ran["span_ms"] * 2 + 1


def test_a_window_is_measured_between_the_samples_that_bracket_it() -> None:
    ms = 1_000_000
    samples = [(10.000, 0, 0, 0), (10.010, 5 * ms, 1 * ms, 2 * ms), (10.020, 6 * ms, 9 * ms, 4 * ms),
               (10.030, 16 * ms, 9 * ms, 4 * ms)]
    assert loop_time(samples, 10.012, 10.018) == {"span_ms": 10.0, "on_cpu_ms": 1.0, "waiting_for_cpu_ms": 8.0,
                                                  "other_threads_on_cpu_ms": 2.0}
    assert loop_time(samples, 10.010, 10.030) == {"span_ms": 20.0, "on_cpu_ms": 11.0, "waiting_for_cpu_ms": 8.0,
                                                  "other_threads_on_cpu_ms": 2.0}
    assert loop_time(samples, 9.999, 10.005) is None  # starts before the first sample
    assert loop_time(samples, 10.025, 10.031) is None  # ends after the last


def test_the_report_splits_the_slowest_delivery_and_sums_the_waits_of_the_turns() -> None:
    ms = 1_000_000
    samples = [(t / 100, t * ms, (t // 2) * ms, 0) for t in range(101)]  # waits 0.5 ms per 10 ms
    report = loop_report(samples, [(0.0, 0.2), (0.5, 0.7)], worst=(0.05, 0.30))
    assert report["slowest_delivery"] == {"span_ms": 50.0, "on_cpu_ms": 5.0, "waiting_for_cpu_ms": 2.0,
                                          "other_threads_on_cpu_ms": 0.0}
    assert report["waiting_for_cpu_ms_in_turns"] == 20.0  # 10 + 10, nothing between the turns
    assert report["waiting_for_cpu_pct_of_turns"] == 5.0
    assert loop_report([], [(0.0, 1.0)], worst=(0.0, 0.0)) == {
        "slowest_delivery": None, "waiting_for_cpu_ms_in_turns": 0, "waiting_for_cpu_pct_of_turns": None}
