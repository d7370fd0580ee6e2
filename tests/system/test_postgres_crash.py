"""`run.py` on PostgreSQL in a subprocess, killed with SIGKILL at random moments: nothing
acknowledged is lost, no actionId is applied twice, every box comes back at its last event."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.persistence.postgres.database import new_schema
from tests.persistence.postgres.servers import postgres_env, stored_events_now
from tests.reliability.crash_soak import run_rounds
from tests.system.test_restart_and_crash import CRASH_ROUNDS


async def test_sigkill_on_postgres_loses_no_acknowledged_command(spawn_server, tmp_path: Path,
                                                                 postgres_url: str) -> None:
    database = postgres_env(postgres_url, new_schema())

    def spawn(data: Path, env: dict[str, str] | None = None) -> Any:
        return spawn_server(data, env={**(env or {}), **database})

    totals = await run_rounds(CRASH_ROUNDS, tmp_path / "data", spawn,
                              log_of=lambda _: stored_events_now(postgres_url, database["DATABASE_SCHEMA"]))

    assert totals["rounds"] == CRASH_ROUNDS and totals["acknowledged"] > 0 and totals["lost"] == 0
