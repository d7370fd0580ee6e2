"""PostgreSQL for the tests: a fresh database on the running server (or BELAY_TEST_DATABASE_URL),
a fresh schema per competition, faults made by the server itself, and throwaway clusters for the
tests that stop or restart PostgreSQL.

Without a reachable PostgreSQL the tests that need one are skipped, saying why; with CI=true they
fail instead. The `postgres_url` fixture (tests/conftest.py) gives the database's URL.
"""
from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

T = TypeVar("T")
SERVER_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
# Debian's server binaries; the newest installed major version.
PG_BIN = max(Path("/usr/lib/postgresql").glob("*/bin"),
             key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
             default=Path("/usr/lib/postgresql/15/bin"))


def unavailable(reason: str) -> None:
    """Skip, or fail under CI=true, where a missing PostgreSQL must not pass unnoticed."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"PostgreSQL is required under CI=true: {reason}")
    pytest.skip(f"no PostgreSQL for this test: {reason}")


def with_database(url: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{database}"))


def database_name(url: str) -> str:
    return urlsplit(url).path.lstrip("/")


def run(coro: Coroutine[Any, Any, T]) -> T:
    """A coroutine to completion from synchronous code, even one called inside a running loop."""
    done: list[T] = []
    failed: list[BaseException] = []

    def target() -> None:
        try:
            done.append(asyncio.run(coro))
        except BaseException as exc:  # handed to the caller's thread
            failed.append(exc)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if failed:
        raise failed[0]
    return done[0]


async def _admin(url: str, sql: str) -> None:
    conn = await asyncpg.connect(url, timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def fresh_database() -> Iterator[str]:
    """A fresh database for the whole test run (dropped at the end) on the server running on
    127.0.0.1:5432, or a throwaway cluster where none runs, or BELAY_TEST_DATABASE_URL as it is."""
    given = os.environ.get("BELAY_TEST_DATABASE_URL")
    if given:
        try:
            run(_admin(given, "SELECT 1"))
        except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
            unavailable(f"cannot reach BELAY_TEST_DATABASE_URL ({exc})")
        yield given
        return
    try:
        run(_admin(SERVER_URL, "SELECT 1"))
    except (OSError, asyncpg.PostgresError, TimeoutError):
        # No server running here (a fresh CI machine): a throwaway cluster of the run's own.
        cluster = Cluster()
        try:
            run(_admin(cluster.url, 'CREATE DATABASE "belay_test"'))  # not "postgres": tests lock theirs out
            yield with_database(cluster.url, "belay_test")
        finally:
            cluster.remove()
        return
    name = f"belay_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    try:
        run(_drop_orphans())
        run(_admin(SERVER_URL, f'CREATE DATABASE "{name}"'))
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        unavailable(f"cannot create a database on {SERVER_URL} ({exc}); set BELAY_TEST_DATABASE_URL")
    try:
        yield with_database(SERVER_URL, name)
    finally:
        run(_admin(SERVER_URL, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _drop_orphans() -> None:
    """Databases of earlier runs that were killed before they could drop theirs (their pid is gone)."""
    conn = await asyncpg.connect(SERVER_URL, timeout=5)
    try:
        for row in await conn.fetch("SELECT datname FROM pg_database WHERE datname ~ '^belay_test_[0-9]+_[0-9a-f]+$'"):
            pid = int(row["datname"].split("_")[2])
            if not _alive(pid):
                await conn.execute(f'DROP DATABASE IF EXISTS "{row["datname"]}" WITH (FORCE)')
    finally:
        await conn.close()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def new_schema() -> str:
    return f"c_{uuid.uuid4().hex[:12]}"


async def terminate(url: str, backend_pid: int) -> None:
    """Cut one session the way a network failure or an admin would: the server ends it."""
    conn = await asyncpg.connect(url, timeout=5)
    try:
        await conn.execute("SELECT pg_terminate_backend($1, 5000)", backend_pid)
    finally:
        await conn.close()


async def refuse_connections(url: str, refuse: bool) -> None:
    """The database stops (or starts again) taking connections, and its sessions are cut: to Belay
    it is a database that went away."""
    admin = with_database(url, "postgres")
    name = database_name(url)
    conn = await asyncpg.connect(admin, timeout=5)
    try:
        await conn.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS {"false" if refuse else "true"}')
        if refuse:
            await conn.execute("SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity WHERE datname = $1 "
                               "AND pid <> pg_backend_pid()", name)
    finally:
        await conn.close()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Cluster:
    """A PostgreSQL cluster of its own in a temp dir, for tests that stop and restart it. Everything
    here runs as root and PostgreSQL refuses root, so it belongs to and runs as `postgres`."""

    def __init__(self, options: str = "") -> None:
        if not (PG_BIN / "initdb").exists() or shutil.which("runuser") is None:
            unavailable(f"no PostgreSQL binaries in {PG_BIN} (apt-get install postgresql) or no runuser")
        self.root = Path(tempfile.mkdtemp(prefix="belay-pg-"))
        self.data = self.root / "data"
        self.port = free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        self._options = options  # more server settings, e.g. "-c fsync=off"
        shutil.chown(self.root, "postgres", "postgres")
        self._as_postgres(PG_BIN / "initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync")
        self.start()

    def _as_postgres(self, *command: object) -> None:
        subprocess.run(["runuser", "-u", "postgres", "--", *map(str, command)], check=True, capture_output=True,
                       timeout=120)

    def start(self) -> None:
        self._as_postgres(PG_BIN / "pg_ctl", "-D", self.data, "-l", self.root / "server.log", "-w", "-t", "60",
                          "-o", f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 {self._options}", "start")

    def stop(self, mode: str = "fast") -> None:
        self._as_postgres(PG_BIN / "pg_ctl", "-D", self.data, "-m", mode, "-w", "-t", "60", "stop")

    def remove(self) -> None:
        try:
            self.stop("immediate")
        except subprocess.CalledProcessError:
            pass  # already stopped
        shutil.rmtree(self.root, ignore_errors=True)


def wait_until(check: object, timeout: float = 10.0) -> None:
    """For conditions reached by another process; not a timing assertion."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise AssertionError("condition not reached in time")


class Proxy:
    """A TCP relay between Belay and PostgreSQL (real sockets both ways) that a test can make lose
    the answer to a write: the write reaches the server and commits, its answer never reaches
    Belay, the session is cut and new connections are refused until `accept` — a network gone at
    the worst moment."""

    def __init__(self, target_port: int) -> None:
        self._target_port = target_port
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.port = 0
        self.refusing = False
        self.stalled = False
        self._marker: bytes | None = None
        self.answer_lost = asyncio.Event()

    def url(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._session, "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])

    def lose_answer_after(self, marker: bytes) -> None:
        """The next client message holding `marker` (bytes of a line Belay writes) goes through; no
        answer does after it."""
        self._marker = marker

    def accept(self) -> None:
        self.refusing = False

    def stall(self) -> None:
        """The database silent: connections stay open, but nothing more reaches it (packets dropped)."""
        self.stalled = True

    def cut(self) -> None:
        """The database gone: every connection cut, new ones refused until `accept`."""
        self.refusing = True
        self._cut_all()

    async def close(self) -> None:
        self._cut_all()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.refusing:
            writer.close()
            return
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self._target_port)
        self._writers |= {writer, up_writer}
        answers_lost = asyncio.Event()

        async def to_server() -> None:
            while data := await reader.read(65536):
                if self.stalled:
                    continue
                up_writer.write(data)
                if self._marker is not None and self._marker in data:
                    self._marker = None
                    answers_lost.set()
                    await asyncio.sleep(0.5)  # the server commits meanwhile; its answer is dropped
                    self.refusing = True
                    self._cut_all()
                    self.answer_lost.set()
                    return

        async def to_client() -> None:
            while data := await up_reader.read(65536):
                if not answers_lost.is_set():
                    writer.write(data)

        directions = [asyncio.create_task(to_server()), asyncio.create_task(to_client())]
        try:
            await asyncio.wait(directions, return_when=asyncio.FIRST_COMPLETED)  # one side hung up: so do both
        finally:
            for task in directions:
                task.cancel()
            await asyncio.gather(*directions, return_exceptions=True)
            for end in (writer, up_writer):
                end.close()
                self._writers.discard(end)

    def _cut_all(self) -> None:
        for end in list(self._writers):
            end.transport.abort()
        self._writers.clear()
