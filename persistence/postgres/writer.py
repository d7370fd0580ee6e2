"""The one connection that writes a competition: it holds the schema's advisory lock, so nothing is
ever written by a session without it; a cut connection loses both, and the next write connects
again and takes the lock again before anything else.

Every write is one transaction. A COMMIT whose answer never came (the connection died during it)
is not guessed: the transaction's id is looked up for at most COMMIT_READBACK_S seconds; if the
database stays away the write raises CommitUnknown, whose `settled` future says later whether it
committed (looked up again on every reconnect, and once a second meanwhile).
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, Final

import asyncpg

from persistence.errors import CommitUnknown, StorageError, StorageLocked
from persistence.postgres.connect import (
    UNAVAILABLE,
    Target,
    check_durable,
    describe_error,
    lock_holder,
    read_settings,
    record_writer,
    try_lock,
)
from persistence.postgres.schema import migrate

log = logging.getLogger("belay.persistence")

COMMIT_READBACK_S: Final = 5.0  # how long an unknown COMMIT is looked up before the answer is 503
READBACK_PAUSE_S: Final = 0.2
SETTLE_INTERVAL_S: Final = 1.0

Work = Callable[[asyncpg.Connection], Awaitable[Any]]
BeforeCommit = Callable[[int], Awaitable[None]]  # tests: gets the writer's backend pid before each COMMIT


class Writer:
    def __init__(self, target: Target, before_commit: BeforeCommit | None = None) -> None:
        self._target = target
        self._before_commit = before_commit
        self._conn: asyncpg.Connection | None = None
        self._busy = asyncio.Lock()
        self.settings: dict[str, str] = {}
        self.schema_version = 0
        self.migrated: list[int] = []
        self._in_doubt: dict[int, asyncio.Future[bool]] = {}
        self._settler: asyncio.Task[None] | None = None
        self.closed = False

    async def start(self) -> asyncpg.Connection:
        """Connect, refuse a server without fsync, bring the schema up to date and take the lock
        (StorageLocked naming the holder if another process has it)."""
        conn = await self._target.connect(writer=True)
        try:
            self.settings = await read_settings(conn)
            check_durable(self.settings, self._target.location)
            self.schema_version, self.migrated = await migrate(conn, self._target.schema)
            if not await try_lock(conn, self._target.schema):
                holder = await lock_holder(conn, self._target.schema)
                raise StorageLocked(f"{self._target.location} is in use by another Belay server "
                                    f"({holder or 'unknown'}); stop it or choose another DATABASE_SCHEMA",
                                    holder, self._target.location)
            await record_writer(conn)
        except BaseException as exc:
            await conn.close()
            if isinstance(exc, UNAVAILABLE):
                raise StorageError(f"{self._target.location}: {describe_error(exc)}") from exc
            raise
        self._conn = conn
        return conn

    async def run(self, work: Work) -> Any:
        """`work` in one transaction of the locked connection; StorageError if it did not commit."""
        async with self._busy:
            conn = await self._connection()
            try:
                await conn.execute("BEGIN")
                xid = await conn.fetchval("SELECT txid_current()")
                result = await work(conn)
                if self._before_commit is not None:
                    await self._before_commit(conn.get_server_pid())
            except UNAVAILABLE as exc:
                await self._drop()
                raise StorageError(f"the database connection failed: {describe_error(exc)}") from exc
            except BaseException as exc:
                await self._roll_back(conn)
                if isinstance(exc, asyncpg.PostgresError):
                    raise StorageError(f"the database refused the write: {describe_error(exc)}") from exc
                raise
            try:
                await conn.execute("COMMIT")
            except UNAVAILABLE as exc:
                await self._drop()
                await self._settle(xid, exc)
            return result

    async def _settle(self, xid: int, cause: BaseException) -> None:
        """Returns if the transaction committed after all; raises otherwise."""
        committed = await self._read_back(xid)
        if committed:
            log.warning("the connection was lost during a COMMIT, which is found committed")
            return
        if committed is False:
            raise StorageError(f"the database connection failed during a COMMIT, which did not commit: "
                               f"{describe_error(cause)}") from cause
        settled: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._in_doubt[xid] = settled
        if self._settler is None or self._settler.done():
            self._settler = asyncio.create_task(self._settle_loop(), name="belay-pg-settle")
        log.error("the outcome of a COMMIT is unknown after %.0f s; its boxes wait until the database answers",
                  COMMIT_READBACK_S)
        raise CommitUnknown(f"the database did not answer whether a write committed within {COMMIT_READBACK_S:.0f} s",
                            settled) from cause

    async def _read_back(self, xid: int) -> bool | None:
        deadline = time.monotonic() + COMMIT_READBACK_S
        while time.monotonic() < deadline:
            try:
                conn = await asyncio.wait_for(self._target.connect(), max(0.1, deadline - time.monotonic()))
                try:
                    status = await conn.fetchval("SELECT txid_status($1)", xid)
                finally:
                    await conn.close()
            except (StorageError, *UNAVAILABLE):
                status = None
            if status in ("committed", "aborted"):
                return bool(status == "committed")
            await asyncio.sleep(READBACK_PAUSE_S)
        return None

    async def _settle_on(self, conn: asyncpg.Connection) -> None:
        for xid, settled in list(self._in_doubt.items()):
            status = await conn.fetchval("SELECT txid_status($1)", xid)
            if status in ("committed", "aborted"):
                del self._in_doubt[xid]
                if not settled.done():
                    log.warning("a COMMIT whose outcome was unknown is found %s", status)
                    settled.set_result(status == "committed")

    async def _settle_loop(self) -> None:
        while self._in_doubt and not self.closed:
            await asyncio.sleep(SETTLE_INTERVAL_S)
            try:
                conn = await self._target.connect()
                try:
                    await self._settle_on(conn)
                finally:
                    await conn.close()
            except (StorageError, *UNAVAILABLE):
                continue

    async def _connection(self) -> asyncpg.Connection:
        if self.closed:
            raise StorageError("the storage is closed")
        if self._conn is not None and not self._conn.is_closed():
            return self._conn
        self._conn = None
        conn = await self._target.connect(writer=True)
        try:
            if not await try_lock(conn, self._target.schema):
                holder = await lock_holder(conn, self._target.schema)
                raise StorageError(f"another Belay server ({holder or 'unknown'}) took {self._target.location} "
                                   f"while the connection was cut: this one writes nothing more")
            await record_writer(conn)
            await self._settle_on(conn)
        except BaseException as exc:
            await conn.close()
            if isinstance(exc, UNAVAILABLE):
                raise StorageError(f"the database connection failed: {describe_error(exc)}") from exc
            raise
        log.warning("reconnected to %s and took its lock again", self._target.location)
        self._conn = conn
        return conn

    async def _roll_back(self, conn: asyncpg.Connection) -> None:
        try:
            await conn.execute("ROLLBACK")
        except (*UNAVAILABLE, asyncpg.PostgresError):
            await self._drop()

    async def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.terminate()  # no goodbye on a connection that failed

    @property
    def connected(self) -> bool:
        return self._conn is not None and not self._conn.is_closed()

    @property
    def in_doubt(self) -> int:
        return len(self._in_doubt)

    async def close(self) -> None:
        self.closed = True
        if self._settler is not None:
            self._settler.cancel()
        async with self._busy:
            conn, self._conn = self._conn, None
            if conn is not None:
                try:
                    await asyncio.wait_for(conn.close(), 2.0)
                except (*UNAVAILABLE, asyncpg.PostgresError):
                    conn.terminate()
