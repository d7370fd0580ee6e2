"""`python bench/fsync_shim.py run.py ARGS...`: run Belay unchanged, counting its fsync calls.

os.fdatasync and os.fsync are wrapped before run.py is loaded (persistence/fs.py looks them up
at call time); the counts live in a 16-byte file mapped shared ($BENCH_FSYNC_COUNTER), so the bench
reads them live without a syscall on the server's side: <fdatasync count, fsync count>.
"""
from __future__ import annotations

import mmap
import os
import runpy
import struct
import sys

_path = os.environ["BENCH_FSYNC_COUNTER"]
with open(_path, "wb") as _f:
    _f.write(b"\0" * 16)
_fd = os.open(_path, os.O_RDWR)
_map = mmap.mmap(_fd, 16)
_counts = [0, 0]
_fdatasync, _fsync = getattr(os, "fdatasync", os.fsync), os.fsync


def _counted_fdatasync(fd: int) -> None:
    _fdatasync(fd)
    _counts[0] += 1
    struct.pack_into("<QQ", _map, 0, *_counts)


def _counted_fsync(fd: int) -> None:
    _fsync(fd)
    _counts[1] += 1
    struct.pack_into("<QQ", _map, 0, *_counts)


os.fdatasync = _counted_fdatasync
os.fsync = _counted_fsync
sys.path[0] = os.getcwd()
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
