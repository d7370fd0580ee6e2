"""The migration scenario: a JSON competition of 1,000,000 real events (bench/competition.py) moved
into PostgreSQL and back out by `run.py migrate`'s code, each direction timed in its parts. As
`run.py migrate` runs with no server, it has every core (the bench pins itself to the clients' one)."""
from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import postgres
from bench.common import Settings, line, progress, target
from bench.competition import build
from bench.stats import latency_summary


def migration(settings: Settings) -> list[dict[str, Any]]:
    events = settings.pick(1_000_000, 50_000)
    root = Path(tempfile.mkdtemp(prefix="belay-bench-migrate-"))
    schema = postgres.new_schema()
    pinned = os.sched_getaffinity(0)
    os.sched_setaffinity(0, range(os.cpu_count() or 1))  # the replay workers inherit it
    try:
        t0 = time.monotonic()
        built = build(root / "source", events, 15)
        progress(f"migration: {built} written in {time.monotonic() - t0:.1f} s")
        there = postgres.migrate_in(root / "source", settings.database_url, schema)
        progress(f"migration into PostgreSQL: {there}")
        back = postgres.migrate_out(settings.database_url, schema, root / "back")
        progress(f"migration out of PostgreSQL: {back}")
    finally:
        os.sched_setaffinity(0, pinned)
        shutil.rmtree(root, ignore_errors=True)
        postgres.drop_schema(settings.database_url, schema)
    lines = []
    for variant, figures in (("JSON -> PostgreSQL", there), ("PostgreSQL -> JSON", back)):
        total = figures["seconds"]["total"]
        out = line(settings, "migration", f"{events} ev, {variant}", {"events": events, "boxes": 15,
                                                                     "log_mb": built["log_mb"]},
                   total, {**figures, "events_per_s": round(figures["events"] / total) if total else None},
                   latency_summary([total]), 0.0, {}, 0.0, [], cpu_window_s=total,
                   latency_basis="seconds of the whole migration, verification included",
                   throughput_per_s=round(figures["events"] / total) if total else 0)
        out["targets"] = [target("seconds @1M", round(total, 1), "<=", 60)] if events >= 1_000_000 else []
        lines.append(out)
    return lines
