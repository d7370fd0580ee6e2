"""What each app keeps for /metrics besides what its other objects count: its own registry and
the counters that belong to no other object."""
from __future__ import annotations

from prometheus_client import CollectorRegistry

from actors.tallies import Buckets, Count, Level
from transport.collector import Pauses
from transport.metrics.loop_lag import LAG_SECONDS


class Metrics:
    """One per app: tests start many apps in one process, so nothing goes in prometheus-client's
    global registry.

    Two hooks for the Redis fan-out (issue 19): the core counts its failed publishes with
    `redis_publish_failures.inc()`, an edge sets `edge_staleness.set(seconds)` (how old the newest
    update it has from the core is). The edge gauge is exported once something sets it."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.loop_lag = Buckets(LAG_SECONDS)
        self.gc_pauses = Pauses()
        self.redis_publish_failures = Count()
        self.edge_staleness = Level()
