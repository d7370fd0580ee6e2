"""`run.py` on PostgreSQL in a subprocess: killed with SIGKILL at random moments, nothing
acknowledged is lost, no actionId is applied twice, every box comes back at its last event; the
organiser commands work beside it."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import orjson

from tests.persistence.postgres.database import new_schema
from tests.persistence.postgres.servers import postgres_env, stored_events_now
from tests.reliability.crash_soak import admin_session, init_body, post, run_rounds
from tests.system.test_cli import run
from tests.system.test_restart_and_crash import CRASH_ROUNDS


async def test_sigkill_on_postgres_loses_no_acknowledged_command(spawn_server, tmp_path: Path,
                                                                 postgres_url: str) -> None:
    database = postgres_env(postgres_url, new_schema())

    def spawn(data: Path, env: dict[str, str] | None = None) -> Any:
        return spawn_server(data, env={**(env or {}), **database})

    totals = await run_rounds(CRASH_ROUNDS, tmp_path / "data", spawn,
                              log_of=lambda _: stored_events_now(postgres_url, database["DATABASE_SCHEMA"]))

    assert totals["rounds"] == CRASH_ROUNDS and totals["acknowledged"] > 0 and totals["lost"] == 0


async def test_the_organiser_commands_work_beside_a_server_on_postgres(spawn_server, tmp_path: Path,
                                                                       postgres_url: str) -> None:
    database = postgres_env(postgres_url, new_schema())
    server = spawn_server(tmp_path / "data", env=database)
    async with await admin_session(server.url) as session:
        assert (await post(session, server.url, init_body(4)))[0] == 200
    env = {**os.environ, **database}
    storage = ("--storage-dir", str(tmp_path / "data"))

    check = run("check", *storage, env=env)
    audit = run("audit", *storage, "--box", "4", "--json", env=env)
    history = run("history", *storage, "--box", "4", env=env)
    again = run("--host", "127.0.0.1", "--port", "0", *storage, env=env)

    assert check.returncode == 0, check.stdout + check.stderr
    assert f"held by pid {server.proc.pid}" in check.stdout and "healthy" in check.stdout
    events = [orjson.loads(text) for text in audit.stdout.splitlines()]  # one JSON object a line
    assert audit.returncode == 0 and [event["action"] for event in events] == ["INIT_ROUTE"]
    assert history.returncode == 0 and "INIT_ROUTE" in history.stdout
    assert again.returncode == 2 and "in use by another Belay server" in again.stderr
    assert "Traceback" not in check.stderr + audit.stderr + history.stderr + again.stderr
