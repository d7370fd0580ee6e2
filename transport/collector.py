"""Keeps Python's garbage collector from pausing the event loop.

A full collection walks every tracked object: with thousands of open WebSockets that is millions
of objects and a pause of hundreds of milliseconds (we measured 400 ms every ~20 s with 6,000
sockets; the reference backend showed 220-590 ms). Objects that have survived a while are almost
always long-lived (connections, box states), so they are moved out of the collector's way with
gc.freeze() after each cheap young-generation collection. Reference cycles that die among frozen
objects are reclaimed by one full collection an hour (about a second with 6,000 sockets, at a known time).
"""
from __future__ import annotations

import asyncio
import gc
import logging
import time

log = logging.getLogger("belay.gc")

# Young collections (the automatic ones and ours) walk what was made since the last freeze. At
# 200 subscribers per box, freezing every 2 s let them take up to 20 ms; every 0.5 s up to 17 ms,
# and 50 ms while 6,000 sockets connected; every 0.1 s none took over 10 ms, storm included
# (docs/performance.md, change 26).
FREEZE_EVERY_S = 0.1
FULL_COLLECTION_EVERY_S = 3600.0
# Young collections less often (most garbage of a broadcast dies before one), and no automatic
# full collection at all: the hourly one below does that job at a known time.
THRESHOLDS = (10_000, 10, 1_000_000)


async def keep_collections_short() -> None:
    """`run.py` keeps the collector off while it starts; what start-up made is long-lived, so it is
    frozen as it is (a full collection first would hold up the first requests by ~20 ms)."""
    gc.set_threshold(*THRESHOLDS)
    gc.freeze()
    gc.enable()
    last_full = time.monotonic()
    while True:
        await asyncio.sleep(FREEZE_EVERY_S)
        if time.monotonic() - last_full >= FULL_COLLECTION_EVERY_S:
            started = time.perf_counter()
            gc.unfreeze()
            freed = gc.collect()
            last_full = time.monotonic()
            log.info("hourly full collection: %d objects freed in %.0f ms", freed,
                     (time.perf_counter() - started) * 1000)
        else:
            gc.collect(1)  # young objects only: cheap
        gc.freeze()
