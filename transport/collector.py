"""Keeps Python's garbage collector from pausing the event loop.

A full collection walks every tracked object: with thousands of open WebSockets that is millions
of objects and a pause of hundreds of milliseconds (we measured 400 ms every ~20 s with 6,000
sockets; the reference backend showed 220-590 ms). Objects that have survived a while are almost
always long-lived (connections, box states), so they are moved out of the collector's way with
gc.freeze() after each cheap young-generation collection. Frozen objects still die by reference
counting; only reference cycles among them need a full collection. Belay leaves none that we could
find (docs/performance.md, change 28), so the full collection (0.4-0.5 s with 6,000 sockets) waits
for a spell without commands.
"""
from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import Callable

from actors.tallies import Buckets

log = logging.getLogger("belay.gc")

# Young collections (the automatic ones and ours) walk what was made since the last freeze. At
# 200 subscribers per box, freezing every 2 s let them take up to 20 ms; every 0.5 s up to 17 ms,
# and 50 ms while 6,000 sockets connected; every 0.1 s none took over 10 ms, storm included
# (docs/performance.md, change 26).
FREEZE_EVERY_S = 0.1
# When thousands of sockets close in one turn, the objects of their teardown are still in use at
# the next freeze: 100,000 of them took 90 ms to walk, and the walk freed nothing. Above this many
# young objects they are frozen as they are; they die by reference counting a moment later.
YOUNG_WALK_LIMIT = 20_000
# The full collection: at most hourly, when no command has come for QUIET_S (between rounds, at
# lunch), and at the latest after a day, so a cycle nobody found cannot grow without bound.
FULL_COLLECTION_EVERY_S = 3600.0
QUIET_S = 60.0
FULL_COLLECTION_AT_LATEST_S = 24 * 3600.0
# Young collections less often (most garbage of a broadcast dies before one), and no automatic
# full collection at all.
THRESHOLDS = (10_000, 10, 1_000_000)
# Bounds of the pause histograms: young collections take under 3 ms here, the full one 0.4-0.5 s
# with 6,000 sockets (docs/performance.md, changes 26 and 28).
PAUSE_SECONDS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)


class Pauses:
    """How long the collections this routine runs held the event loop (/metrics exports them)."""

    __slots__ = ("full", "young")

    def __init__(self) -> None:
        self.young = Buckets(PAUSE_SECONDS)
        self.full = Buckets(PAUSE_SECONDS)


def full_collection_due(since_full_s: float, quiet_for_s: float) -> bool:
    if since_full_s >= FULL_COLLECTION_AT_LATEST_S:
        return True
    return since_full_s >= FULL_COLLECTION_EVERY_S and quiet_for_s >= QUIET_S


async def keep_collections_short(commands_started: Callable[[], int], pauses: Pauses) -> None:
    """`run.py` keeps the collector off while it starts; what start-up made is long-lived, so it is
    frozen as it is (a full collection first would hold up the first requests by ~20 ms).
    `commands_started` counts commands served so far: while it stands still, the server is quiet.
    Each collection's length goes to `pauses`."""
    gc.set_threshold(*THRESHOLDS)
    gc.freeze()
    gc.enable()
    last_full = last_command = time.monotonic()
    commands = commands_started()
    while True:
        await asyncio.sleep(FREEZE_EVERY_S)
        now = time.monotonic()
        count = commands_started()
        if count != commands:
            commands, last_command = count, now
        if full_collection_due(now - last_full, now - last_command):
            gc.unfreeze()
            freed = gc.collect()
            last_full = time.monotonic()
            pauses.full.observe(last_full - now)
            log.info("full collection: %d objects freed in %.0f ms", freed, (last_full - now) * 1000)
        elif len(gc.get_objects(0)) + len(gc.get_objects(1)) <= YOUNG_WALK_LIMIT:
            started = time.perf_counter()
            gc.collect(1)  # young objects only: cheap
            pauses.young.observe(time.perf_counter() - started)
        gc.freeze()
