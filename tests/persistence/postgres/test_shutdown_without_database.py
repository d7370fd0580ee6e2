"""A server stopped while its database is unreachable still stops: it says which step failed and
exits with 1 (nothing acknowledged is lost: every event was committed before its "ok"; the boxes
whose checkpoint could not be written are replayed from the log at the next start). One stuck on a
database that went silent ends at a second stop signal."""
from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from tests.conftest import ServerProcess
from tests.persistence.postgres.database import Proxy, database_name, new_schema
from tests.persistence.postgres.servers import postgres_env
from tests.reliability.crash_soak import admin_session, get_state, init_body, post

STOP_LIMIT_S = 60.0  # a bound for a hang, not a speed: the connection attempts time out in seconds


@asynccontextmanager
async def scoring_behind_a_proxy(spawn_server: Any, tmp_path: Path,
                                 postgres_url: str) -> AsyncIterator[tuple[Proxy, ServerProcess, dict[str, str]]]:
    """`run.py` on PostgreSQL through a proxy the test can cut or silence, with one box scored."""
    proxy = Proxy(5432)
    await proxy.start()
    try:
        database = postgres_env(proxy.url(database_name(postgres_url)), new_schema())
        server = await asyncio.to_thread(spawn_server, tmp_path / "data", env=database)
        async with await admin_session(server.url) as session:
            assert (await post(session, server.url, init_body(4)))[0] == 200
        yield proxy, server, database
    finally:
        await proxy.close()


async def test_a_server_stopped_while_its_database_is_away_exits_and_comes_back_whole(
    spawn_server: Any, tmp_path: Path, postgres_url: str
) -> None:
    async with scoring_behind_a_proxy(spawn_server, tmp_path, postgres_url) as (proxy, server, database):
        proxy.cut()

        code = await asyncio.to_thread(server.terminate, STOP_LIMIT_S)

        log = server.log()
        assert code == 1, log
        assert "stopped, but not cleanly" in log and "cannot connect" in log, log
        assert "Traceback" not in log, log
        proxy.accept()
        again = await asyncio.to_thread(spawn_server, tmp_path / "data", env=database)
        async with await admin_session(again.url) as session:
            state = await get_state(session, again.url, 4)
        assert state["initiated"] and state["categorie"] == "Cat 4"


async def test_a_second_stop_signal_ends_a_shutdown_stuck_on_a_silent_database(
    spawn_server: Any, tmp_path: Path, postgres_url: str
) -> None:
    async with scoring_behind_a_proxy(spawn_server, tmp_path, postgres_url) as (proxy, server, _):
        proxy.stall()  # the final checkpoint waits for an answer that never comes

        server.proc.send_signal(signal.SIGTERM)
        await wait_for_log(server, "stopping: no new commands")
        assert server.proc.poll() is None  # stuck, as a shutdown on a silent database is
        code = await asyncio.to_thread(server.terminate, STOP_LIMIT_S)

        assert code == 1, server.log()
        assert "a second stop signal: exiting now" in server.log()


async def wait_for_log(server: ServerProcess, text: str) -> None:
    for _ in range(int(STOP_LIMIT_S * 10)):
        if text in server.log():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{text!r} never logged: {server.log()}")
