"""The ops page's charts: command latency p99 and connected screens, the last 15 minutes.

A small ring of samples taken every few seconds. Whatever measures the numbers feeds `add`
(the board's loop, from the command tallies that /metrics exposes and the hub's counts).
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass

SAMPLE_S = 5.0
WINDOW_S = 15 * 60.0


@dataclass(frozen=True, slots=True)
class Sample:
    at: float  # epoch seconds
    p99_ms: float | None  # None: no command in that stretch
    screens: int


class OpsHistory:
    def __init__(self, sample_s: float = SAMPLE_S, window_s: float = WINDOW_S) -> None:
        self.sample_s = sample_s
        self.window_s = window_s
        self._samples: deque[Sample] = deque(maxlen=max(1, round(window_s / sample_s)))

    def add(self, at: float, p99_ms: float | None, screens: int) -> None:
        self._samples.append(Sample(at, p99_ms, screens))

    def as_json(self) -> dict[str, object]:
        """Compact for the wire (up to 180 points every second): [at, p99_ms, screens] rows."""
        return {"sampleS": self.sample_s, "windowS": self.window_s,
                "points": [[round(s.at, 1), None if s.p99_ms is None else round(s.p99_ms, 2), s.screens]
                           for s in self._samples]}
