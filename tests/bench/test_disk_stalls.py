"""The bench's record of slow fdatasyncs: the shim's shared file read back, and the stalls put
next to a realistic run's turns and its slowest delivery."""
from __future__ import annotations

from pathlib import Path

from bench import fsync_shim
from bench.scenarios_ws import _disk_stalls
from bench.server import Affinity, BelayServer


def _record(path: Path, counts: tuple[int, int], slow: list[tuple[float, float]]) -> None:
    """The file as the shim leaves it after the given slow fdatasyncs, in order."""
    data = bytearray(fsync_shim.SIZE)
    for i, (start, took) in enumerate(slow):
        fsync_shim.ENTRY.pack_into(data, fsync_shim.HEADER.size + (i % fsync_shim.SLOW_RING) * fsync_shim.ENTRY.size,
                                   start, took)
    fsync_shim.HEADER.pack_into(data, 0, *counts, len(slow))
    path.write_bytes(bytes(data))


def _server(tmp_path: Path) -> BelayServer:
    return BelayServer(Affinity(None, None), storage_dir=tmp_path / "data")  # never started


def test_the_last_slow_fdatasyncs_come_back_oldest_first_after_the_ring_wraps(tmp_path: Path) -> None:
    server = _server(tmp_path)
    slow = [(100.0 + i, 0.02 + i / 1000) for i in range(fsync_shim.SLOW_RING + 6)]
    _record(tmp_path / "fsync-counter", (500, 7), slow)

    assert server.fsync_counts() == (500, 7)
    assert server.slow_fdatasyncs() == slow[6:]


def test_no_record_means_nothing_slow(tmp_path: Path) -> None:
    server = _server(tmp_path)
    assert server.slow_fdatasyncs() == [] and server.fsync_counts() == (0, 0)
    _record(tmp_path / "fsync-counter", (3, 1), [])
    assert server.slow_fdatasyncs() == []


def test_stalls_are_kept_inside_the_turns_and_matched_to_the_slowest_delivery() -> None:
    turns = [{"sends": {("a",): 10.0, ("b",): 14.0}}, {"sends": {("c",): 30.0, ("d",): 36.0}}]
    stalls = [(5.0, 0.5),     # before the first turn: not this kind's
              (12.0, 0.03),   # inside the first turn, while nothing slow was in flight
              (33.0, 0.109),  # inside the second turn, during the slowest delivery
              (50.0, 0.2)]    # after the last turn (+1 s): not this kind's
    worst = (0.115, 32.95)  # sent at 32.95 s, seen 115 ms later

    report = _disk_stalls(turns, stalls, worst)

    assert report == {"slow_fdatasync_ms": [30.0, 109.0], "slowest_delivery_waited_on_disk": True}
    assert not _disk_stalls(turns, stalls, (0.02, 20.0))["slowest_delivery_waited_on_disk"]
