"""Event-loop lag: how late a sleep wakes up. Anything that holds the loop (a long fan-out, a
collection, a blocking call) delays every request by as much, and shows here."""
from __future__ import annotations

import asyncio

from actors.tallies import Buckets

PROBE_EVERY_S = 0.5  # a wake-up costs a few thousand instructions: nothing next to the commands
LAG_SECONDS = (0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)


async def watch_loop_lag(lag: Buckets, every_s: float = PROBE_EVERY_S) -> None:
    loop = asyncio.get_running_loop()
    while True:
        due = loop.time() + every_s
        await asyncio.sleep(every_s)
        lag.observe(max(0.0, loop.time() - due))
