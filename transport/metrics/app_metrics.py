"""What each app keeps for /metrics besides what its other objects count: its own registry and
the counters that belong to no other object."""
from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry

from actors.tallies import Buckets, Count
from transport.collector import Pauses
from transport.metrics.loop_lag import LAG_SECONDS


class Metrics:
    """One per app (the core's or an edge's): tests start many apps in one process, so nothing goes
    in prometheus-client's global registry.

    Two hooks for the Redis fan-out: the core's publisher counts its failed publications in
    `redis_publish_failures`; an edge sets `edge_staleness` to its mirror's `staleness_s`, read at
    scrape time (so during an outage the figure grows by the second, not by the mirror's retries),
    and the gauge is exported only where it is set."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.loop_lag = Buckets(LAG_SECONDS)
        self.gc_pauses = Pauses()
        self.redis_publish_failures = Count()
        self.edge_staleness: Callable[[], float] | None = None
