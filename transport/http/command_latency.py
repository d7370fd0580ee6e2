"""How long commands take to be served: kept since the last look, for the ops page's p99 chart.

Recording is one list append per command (the hot path); the sort happens once per sample, off
it (transport/ops/history.py takes a look every few seconds).
"""
from __future__ import annotations

import math

MAX_KEPT = 50_000  # per sample window: about 5 s at 10,000 commands/s; later ones are not kept


class CommandLatency:
    def __init__(self, max_kept: int = MAX_KEPT) -> None:
        self._max_kept = max_kept
        self._seconds: list[float] = []

    def record(self, seconds: float) -> None:
        if len(self._seconds) < self._max_kept:
            self._seconds.append(seconds)

    def take_p99_ms(self) -> float | None:
        """The 99th percentile of what was recorded since the last call (None: no command), and a
        fresh window."""
        taken, self._seconds = self._seconds, []
        if not taken:
            return None
        taken.sort()
        return taken[min(len(taken) - 1, math.ceil(0.99 * len(taken)) - 1)] * 1000.0
