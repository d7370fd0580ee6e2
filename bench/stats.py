"""Percentiles and small summaries over latency samples (seconds in, milliseconds out)."""
from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

PERCENTILES: tuple[tuple[str, float], ...] = (("p50", 50.0), ("p90", 90.0), ("p99", 99.0), ("p99.9", 99.9))


def percentile(sorted_values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile: always a value that was really observed, never an interpolation."""
    if not sorted_values:
        raise ValueError("no samples")
    rank = max(1, math.ceil(pct / 100.0 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def latency_summary(samples_s: Iterable[float]) -> dict[str, float | int | None]:
    """p50/p90/p99/p99.9/max/mean in ms plus the sample count; None values when there is no sample."""
    values = sorted(samples_s)
    summary: dict[str, float | int | None] = {"n": len(values)}
    if not values:
        summary.update({name: None for name, _ in PERCENTILES})
        summary.update(max=None, mean=None)
        return summary
    for name, pct in PERCENTILES:
        summary[name] = round(percentile(values, pct) * 1000.0, 3)
    summary["max"] = round(values[-1] * 1000.0, 3)
    summary["mean"] = round(sum(values) / len(values) * 1000.0, 3)
    return summary


def rate(count: int, seconds: float) -> float:
    return round(count / seconds, 1) if seconds > 0 else 0.0


def pct_of_core(cpu_seconds: float, wall_seconds: float) -> float:
    """CPU time as a percentage of one core over the wall window (100 = one core saturated)."""
    return round(100.0 * cpu_seconds / wall_seconds, 1) if wall_seconds > 0 else 0.0
