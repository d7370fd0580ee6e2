"""How long commands take to be served: kept since the last look, for the ops page's p99 chart.

Recording is one bounded deque append per command, a C call with no Python frame (the hot path);
the sort happens once per sample, off it (transport/ops/board.py samples every few seconds).
"""
from __future__ import annotations

import math
from collections import deque

MAX_KEPT = 50_000  # per sample window: about 5 s at 10,000 commands/s; beyond it the newest are kept


class CommandLatency:
    def __init__(self, max_kept: int = MAX_KEPT) -> None:
        self._seconds: deque[float] = deque(maxlen=max_kept)
        self.record = self._seconds.append  # record(seconds)

    def take_p99_ms(self) -> float | None:
        """The 99th percentile of what was recorded since the last call (None: no command), and a
        fresh window."""
        if not self._seconds:
            return None
        taken = sorted(self._seconds)
        self._seconds.clear()
        return taken[min(len(taken) - 1, math.ceil(0.99 * len(taken)) - 1)] * 1000.0
