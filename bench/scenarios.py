"""The suite: every scenario starts Belay (and, for ceilings, a bare server) in a subprocess on a temp
dir, drives it from separate client processes over loopback and returns JSON result lines.

Modules: scenarios_ws (realistic, fanout_capacity, rss), scenarios_load (saturation, durable),
scenarios_state (audit, restart), scenarios_edges (edges), scenarios_migration (migration); shared
pieces in bench.common. The storage scenarios run in each storage mode asked for (bench/postgres.py
for PostgreSQL).
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bench.common import Settings, progress
from bench.scenarios_edges import edges
from bench.scenarios_load import durable, saturation
from bench.scenarios_migration import migration
from bench.scenarios_state import audit, restart
from bench.scenarios_ws import fanout_capacity, realistic, rss

__all__ = ["MODES", "SCENARIOS", "Settings", "progress"]

SCENARIOS: dict[str, Callable[[Settings], list[dict[str, Any]]]] = {
    "realistic": realistic, "saturation": saturation, "durable": durable, "fanout_capacity": fanout_capacity,
    "audit": audit, "restart": restart, "rss": rss, "edges": edges, "migration": migration,
}
# The storage modes each scenario runs in (issue 18: the storage scenarios in both); others run on JSON.
MODES: dict[str, tuple[str, ...]] = {
    **dict.fromkeys(SCENARIOS, ("json",)),
    **dict.fromkeys(("durable", "saturation", "audit", "restart"), ("json", "postgres")),
    "migration": ("postgres",),
}
