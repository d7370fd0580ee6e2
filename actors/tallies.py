"""Plain counters that the code keeps as it works and `/metrics` reads when it is scraped.

A Prometheus client object takes a lock and does bookkeeping on every call; on the path every
command takes, a list index and an add are all we pay. Only the event loop's thread writes these,
so they need no lock. transport/metrics/ turns them into metric families at scrape time.
"""
from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence


class Buckets:
    """A histogram: counts per bucket (`value <= bound`; the last is +Inf) and their sum."""

    __slots__ = ("bounds", "counts", "total")

    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds = tuple(bounds)
        self.counts = [0] * (len(self.bounds) + 1)
        self.total = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.total += value


class Count:
    """A number that only goes up (failures, drops)."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0

    def inc(self, amount: int = 1) -> None:
        self.value += amount


def quantile(bounds: Sequence[float], counts: Sequence[int], q: float) -> float | None:
    """The q-quantile (0 < q < 1) of per-bucket counts (not cumulative), interpolated inside its
    bucket as Prometheus's histogram_quantile does; None without observations. A quantile in the
    +Inf bucket is the highest bound."""
    total = sum(counts)
    if total == 0:
        return None
    rank = q * total
    seen = 0
    for index, count in enumerate(counts):
        if seen + count >= rank and count:
            if index == len(bounds):
                return bounds[-1]
            low = bounds[index - 1] if index else 0.0
            return low + (bounds[index] - low) * (rank - seen) / count
        seen += count
    return bounds[-1]
