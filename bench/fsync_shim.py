"""`python bench/fsync_shim.py run.py ARGS...`: run Belay unchanged, counting its fsync calls and
noting the slow fdatasyncs.

os.fdatasync and os.fsync are wrapped before run.py is loaded (persistence/fs.py looks them up
at call time). Everything lives in a file mapped shared ($BENCH_FSYNC_COUNTER), so the bench reads
it live without a syscall on the server's side (bench/server.py reads it with HEADER and ENTRY):
<fdatasync count, fsync count, slow fdatasync count>, then a ring of the last SLOW_RING slow
fdatasyncs as <start, duration> (time.monotonic() seconds: the same clock in every process).
A slow fdatasync holds every command of its batch, and with it their broadcasts, so the bench
can tell a disk stall from a slow server.
"""
from __future__ import annotations

import mmap
import os
import runpy
import struct
import sys
import time

SLOW_S = 0.02  # an fdatasync is "slow" from here: about a hundred times this disk's usual 0.2 ms
SLOW_RING = 64
HEADER = struct.Struct("<QQQ")
ENTRY = struct.Struct("<dd")
SIZE = HEADER.size + SLOW_RING * ENTRY.size


def main() -> None:
    path = os.environ["BENCH_FSYNC_COUNTER"]
    with open(path, "wb") as f:
        f.write(b"\0" * SIZE)
    fd = os.open(path, os.O_RDWR)
    shared = mmap.mmap(fd, SIZE)
    counts = [0, 0, 0]
    fdatasync, fsync = getattr(os, "fdatasync", os.fsync), os.fsync

    def noted_fdatasync(fd: int) -> None:
        started = time.monotonic()
        fdatasync(fd)
        took = time.monotonic() - started
        counts[0] += 1
        if took >= SLOW_S:
            ENTRY.pack_into(shared, HEADER.size + (counts[2] % SLOW_RING) * ENTRY.size, started, took)
            counts[2] += 1
        HEADER.pack_into(shared, 0, *counts)

    def counted_fsync(fd: int) -> None:
        fsync(fd)
        counts[1] += 1
        HEADER.pack_into(shared, 0, *counts)

    os.fdatasync = noted_fdatasync
    os.fsync = counted_fsync
    sys.path[0] = os.getcwd()
    sys.argv = sys.argv[1:]
    runpy.run_path(sys.argv[0], run_name="__main__")


if __name__ == "__main__":
    main()
