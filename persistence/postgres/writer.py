"""The one connection that writes a competition: it holds the schema's advisory lock, so nothing is
ever written by a session without it; a cut connection loses both, and the next write connects
again and takes the lock again before anything else.

Every write is one transaction; a batch of events (or a document) is one statement, so its
transaction commits when the statement ends, in one round trip. A statement whose answer never
came (the connection died meanwhile) is not guessed: it is looked for by content, for at most
COMMIT_READBACK_S seconds. Found, it committed; not found while the session that sent it is gone,
it did not. (A transaction id is no proof: one that never reached the disk is handed out again
after a crash.) If the database stays away, the write raises CommitUnknown, whose `settled`
future answers later: looked up again before the next write after a reconnect, and once a second
meanwhile.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import asyncpg

from persistence.errors import CommitUnknown, StorageError, StorageLocked
from persistence.postgres.connect import (
    UNAVAILABLE,
    Target,
    check_durable,
    describe_error,
    lock_holder,
    lock_holder_pid,
    read_settings,
    record_writer,
    try_lock,
)
from persistence.postgres.rows import EventRow
from persistence.postgres.schema import migrate

log = logging.getLogger("belay.persistence")

COMMIT_READBACK_S: Final = 5.0  # how long a write without an answer is looked up before the answer is 503
READBACK_PAUSE_S: Final = 0.2
SETTLE_INTERVAL_S: Final = 1.0
RECONNECT_INTERVAL_S: Final = 1.0  # a lost writer connection is tried again this often, writes or not

Work = Callable[[asyncpg.Connection], Awaitable[Any]]
Lookup = Callable[[asyncpg.Connection], Awaitable[bool]]  # on another session: is this write stored?
BeforeCommit = Callable[[int], Awaitable[None]]  # tests: the writer's backend pid, before each write()
Session = tuple[int, datetime]  # a server session: backend pid and when it started (pids are reused)


@dataclass(frozen=True)
class InDoubt:
    stored: Lookup
    session: Session  # the session that sent it
    settled: asyncio.Future[bool]


class Writer:
    def __init__(self, target: Target, before_commit: BeforeCommit | None = None) -> None:
        self._target = target
        self._before_commit = before_commit
        self._conn: asyncpg.Connection | None = None
        self._session: Session | None = None
        self._busy = asyncio.Lock()
        self.settings: dict[str, str] = {}
        self.schema_version = 0
        self.migrated: list[int] = []
        self._in_doubt: list[InDoubt] = []
        self._settler: asyncio.Task[None] | None = None
        self._reconnector: asyncio.Task[None] | None = None
        self.closed = False

    async def start(self) -> asyncpg.Connection:
        """Connect, refuse a server without fsync, bring the schema up to date and take the lock
        (StorageLocked naming the holder if another process has it)."""
        conn = await self._target.connect(writer=True)
        try:
            self.settings = await read_settings(conn)
            check_durable(self.settings, self._target.location)
            if not await try_lock(conn, self._target.schema):
                holder = await lock_holder(conn, self._target.schema)
                raise StorageLocked(f"{self._target.location} is in use by another Belay server "
                                    f"({holder or 'unknown'}); stop it or choose another DATABASE_SCHEMA",
                                    holder, self._target.location)
            # Only the writer upgrades the schema: never under a running server.
            self.schema_version, self.migrated = await migrate(conn, self._target.schema)
            await self._became_writer(conn)
        except BaseException as exc:
            await conn.close()
            if isinstance(exc, UNAVAILABLE):
                raise StorageError(f"{self._target.location}: {describe_error(exc)}") from exc
            raise
        self._conn = conn
        conn.add_termination_listener(self._lost)
        return conn

    async def write(self, statement: Work, stored: Lookup) -> None:
        """One statement (a pipelined INSERT or a COPY of events, a document's upsert), which is
        its own transaction: committed once it returns, one round trip. If the answer never comes,
        the write is looked up with `stored`, not guessed."""
        async with self._busy:
            conn = await self._connection()
            session = self._session
            try:
                if self._before_commit is not None:
                    await self._before_commit(conn.get_server_pid())
                await statement(conn)
            except asyncpg.PostgresError as exc:
                if not isinstance(exc, UNAVAILABLE):  # the server answered: nothing was committed
                    raise StorageError(f"the database refused the write: {describe_error(exc)}") from exc
                await self._lost_commit(stored, session, exc)
            except Exception as exc:  # no answer (a cut connection, or a driver we cannot trust)
                await self._lost_commit(stored, session, exc)
            except BaseException:  # cancelled: whatever happened is decided by the next start
                await self._drop()
                raise

    async def run(self, work: Work) -> Any:
        """`work` in one transaction of the locked connection; StorageError if it may not have
        committed (checkpoints: the next ones write them again)."""
        async with self._busy:
            conn = await self._connection()
            try:
                await conn.execute("BEGIN")
                result = await work(conn)
                await conn.execute("COMMIT")
            except asyncpg.PostgresError as exc:
                if isinstance(exc, UNAVAILABLE):
                    await self._drop()
                else:
                    await self._roll_back(conn)
                raise StorageError(f"the database did not take the write: {describe_error(exc)}") from exc
            except Exception as exc:  # a cut connection, or the driver in a state we cannot trust
                await self._drop()
                raise StorageError(f"the database connection failed: {describe_error(exc)}") from exc
            except BaseException:  # cancelled: the transaction must not stay open
                await self._drop()
                raise
            return result

    async def _lost_commit(self, stored: Lookup, session: Session | None, exc: Exception) -> None:
        await self._drop()
        if session is None:
            raise StorageError(f"the connection failed during a write: {describe_error(exc)}") from exc
        await self._settle(stored, session, exc)

    async def _settle(self, stored: Lookup, session: Session, cause: BaseException) -> None:
        """Returns if the write committed after all; raises otherwise."""
        committed = await self._read_back(stored, session)
        if committed:
            log.warning("the connection was lost during a write, which is found committed")
            return
        if committed is False:
            raise StorageError(f"the database connection failed during a write, which did not commit: "
                               f"{describe_error(cause)}") from cause
        settled: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._in_doubt.append(InDoubt(stored, session, settled))
        if self._settler is None or self._settler.done():
            self._settler = asyncio.create_task(self._settle_loop(), name="belay-pg-settle")
        log.error("the outcome of a write is unknown after %.0f s; its boxes wait until the database answers",
                  COMMIT_READBACK_S)
        raise CommitUnknown(f"the database did not answer whether a write committed within {COMMIT_READBACK_S:.0f} s",
                            settled) from cause

    async def _read_back(self, stored: Lookup, session: Session) -> bool | None:
        deadline = time.monotonic() + COMMIT_READBACK_S
        while time.monotonic() < deadline:
            try:
                conn = await asyncio.wait_for(self._target.connect(), max(0.1, deadline - time.monotonic()))
                try:
                    outcome = await _outcome(conn, stored, session)
                finally:
                    await conn.close()
            except (StorageError, asyncpg.PostgresError, *UNAVAILABLE):
                outcome = None
            if outcome is not None:
                return outcome
            await asyncio.sleep(READBACK_PAUSE_S)
        return None

    async def _settle_on(self, conn: asyncpg.Connection) -> None:
        for doubt in list(self._in_doubt):
            outcome = await _outcome(conn, doubt.stored, doubt.session)
            if outcome is None:
                continue
            self._in_doubt.remove(doubt)
            if not doubt.settled.done():
                log.warning("a write whose outcome was unknown is found %s",
                            "committed" if outcome else "not committed")
                doubt.settled.set_result(outcome)

    async def _settle_loop(self) -> None:
        while self._in_doubt and not self.closed:
            await asyncio.sleep(SETTLE_INTERVAL_S)
            try:
                conn = await self._target.connect()
                try:
                    async with self._busy:  # no write meanwhile
                        await self._settle_on(conn)
                finally:
                    await conn.close()
            except (StorageError, asyncpg.PostgresError, *UNAVAILABLE):
                continue

    async def _connection(self) -> asyncpg.Connection:
        if self.closed:
            raise StorageError("the storage is closed")
        if self._conn is not None and not self._conn.is_closed():
            return self._conn
        self._conn = None
        conn = await self._target.connect(writer=True)
        try:
            if not await try_lock(conn, self._target.schema) and not await self._take_back(conn):
                holder = await lock_holder(conn, self._target.schema)
                raise StorageError(f"another Belay server ({holder or 'unknown'}) took {self._target.location} "
                                   f"while the connection was cut: this one writes nothing more")
            await self._became_writer(conn)
            await self._settle_on(conn)
        except BaseException as exc:
            await conn.close()
            if isinstance(exc, UNAVAILABLE):
                raise StorageError(f"the database connection failed: {describe_error(exc)}") from exc
            if isinstance(exc, asyncpg.PostgresError):
                raise StorageError(f"cannot take {self._target.location} back: {describe_error(exc)}") from exc
            raise
        log.warning("reconnected to %s and took its lock again", self._target.location)
        self._conn = conn
        conn.add_termination_listener(self._lost)
        return conn

    def _lost(self, _conn: asyncpg.Connection) -> None:
        """The server ended the writer's session (a restart, a cut): get it back without waiting
        for a write, so health recovers by itself too."""
        if not self.closed and (self._reconnector is None or self._reconnector.done()):
            self._reconnector = asyncio.get_running_loop().create_task(self._reconnect(), name="belay-pg-reconnect")

    async def _reconnect(self) -> None:
        while not self.closed:
            await asyncio.sleep(RECONNECT_INTERVAL_S)
            async with self._busy:
                if self.connected:
                    return
                try:
                    await self._connection()
                    return
                except StorageError as exc:
                    log.debug("the writer cannot reconnect yet: %s", exc)

    async def _take_back(self, conn: asyncpg.Connection) -> bool:
        """The lock may still be held by this writer's own earlier session, which the server has
        not noticed is cut: end that session and take the lock."""
        holder = await lock_holder_pid(conn, self._target.schema)
        if holder is None:  # let go meanwhile
            return await try_lock(conn, self._target.schema)
        if self._session is None or holder != self._session[0] or not await _alive(conn, self._session):
            return False
        await conn.execute("SELECT pg_terminate_backend($1, 5000)", holder)
        return await try_lock(conn, self._target.schema)

    async def _became_writer(self, conn: asyncpg.Connection) -> None:
        row = await conn.fetchrow("SELECT pid, backend_start FROM pg_stat_activity WHERE pid = pg_backend_pid()")
        self._session = (row["pid"], row["backend_start"])
        await record_writer(conn)

    async def _roll_back(self, conn: asyncpg.Connection) -> None:
        try:
            await conn.execute("ROLLBACK")
        except (*UNAVAILABLE, asyncpg.PostgresError):
            await self._drop()

    async def _drop(self) -> None:
        conn = self._conn
        if conn is not None:
            conn.terminate()  # no goodbye on a connection that failed; `_lost` starts the reconnects
        self._conn = None

    @property
    def connected(self) -> bool:
        return self._conn is not None and not self._conn.is_closed()

    @property
    def in_doubt(self) -> int:
        return len(self._in_doubt)

    async def close(self) -> None:
        self.closed = True
        for task in (self._settler, self._reconnector):
            if task is not None:
                task.cancel()
        async with self._busy:
            conn, self._conn = self._conn, None
            if conn is not None:
                try:
                    await asyncio.wait_for(conn.close(), 5.0)
                except (*UNAVAILABLE, asyncpg.PostgresError):
                    conn.terminate()


async def _outcome(conn: asyncpg.Connection, stored: Lookup, session: Session) -> bool | None:
    """True if the write is stored; False if not and the session that sent it is gone (so it never
    will be); None while that session still lives. A session of ours left behind is ended."""
    if await stored(conn):
        return True
    if await _alive(conn, session):
        await conn.execute("SELECT pg_terminate_backend($1, 5000)", session[0])
        if await stored(conn):
            return True
        return None if await _alive(conn, session) else False
    return False


async def row_stored(conn: asyncpg.Connection, probe: EventRow) -> bool:
    """Whether a batch whose first row is `probe` is stored: its line holds a random event id, so
    finding it is proof."""
    era, box_id, seq, *_, line = probe
    if seq is not None:
        stored = await conn.fetchval("SELECT line FROM events WHERE era = $1 AND box_id = $2 AND seq = $3",
                                     era, box_id, seq)
        return bool(stored == line)
    # An audit-only line (rare: account changes) has no key; its text holds a random event id.
    return bool(await conn.fetchval("SELECT EXISTS (SELECT 1 FROM events WHERE box_id IS NOT DISTINCT FROM $1 "
                                    "AND seq IS NULL AND line = $2)", box_id, line))


async def _alive(conn: asyncpg.Connection, session: Session) -> bool:
    return bool(await conn.fetchval("SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = $1 "
                                    "AND backend_start = $2)", *session))
