"""The one connection that writes a competition: it holds the schema's advisory lock, so nothing is
ever written by a session without it; a cut connection loses both, and the next write connects
again and takes the lock again before anything else.

Every write is one transaction. A COMMIT whose answer never came (the connection died during it)
is not guessed. Its batch is looked for by content, for at most COMMIT_READBACK_S seconds: found,
it committed; not found while the session that sent it is gone, it did not. (A transaction id is
no proof: one that never reached the disk is handed out again after a crash.) If the database
stays away, the write raises CommitUnknown, whose `settled` future answers later: looked up again
before the next write after a reconnect, and once a second meanwhile.
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

COMMIT_READBACK_S: Final = 5.0  # how long an unknown COMMIT is looked up before the answer is 503
READBACK_PAUSE_S: Final = 0.2
SETTLE_INTERVAL_S: Final = 1.0
RECONNECT_INTERVAL_S: Final = 1.0  # a lost writer connection is tried again this often, writes or not

Work = Callable[[asyncpg.Connection], Awaitable[Any]]
BeforeCommit = Callable[[int], Awaitable[None]]  # tests: gets the writer's backend pid before each COMMIT
Session = tuple[int, datetime]  # a server session: backend pid and when it started (pids are reused)


@dataclass(frozen=True)
class InDoubt:
    probe: EventRow  # the batch's first row: its line holds a random event id, so finding it is proof
    session: Session  # the session that sent the COMMIT
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

    async def run(self, work: Work, probe: EventRow | None = None) -> Any:
        """`work` in one transaction of the locked connection; StorageError if it did not commit.
        With a `probe` (a batch of events), a COMMIT without an answer is looked up, not guessed."""
        async with self._busy:
            conn = await self._connection()
            session = self._session
            try:
                await conn.execute("BEGIN")
                result = await work(conn)
                if self._before_commit is not None:
                    await self._before_commit(conn.get_server_pid())
            except UNAVAILABLE as exc:
                await self._drop()
                raise StorageError(f"the database connection failed: {describe_error(exc)}") from exc
            except asyncpg.PostgresError as exc:
                await self._roll_back(conn)
                raise StorageError(f"the database refused the write: {describe_error(exc)}") from exc
            except Exception as exc:  # the driver in a state we cannot trust: nothing was committed
                await self._drop()
                raise StorageError(f"the database connection failed: {describe_error(exc)}") from exc
            except BaseException:  # cancelled: the transaction must not stay open
                await self._drop()
                raise
            try:
                await conn.execute("COMMIT")
            except asyncpg.PostgresError as exc:
                if not isinstance(exc, UNAVAILABLE):  # the server answered: it did not commit
                    raise StorageError(f"the database refused the commit: {describe_error(exc)}") from exc
                await self._lost_commit(probe, session, exc)
            except Exception as exc:  # no answer (a cut connection, or a driver we cannot trust)
                await self._lost_commit(probe, session, exc)
            return result

    async def _lost_commit(self, probe: EventRow | None, session: Session | None, exc: Exception) -> None:
        await self._drop()
        if probe is None or session is None:
            raise StorageError(f"the connection failed during a COMMIT: {describe_error(exc)}") from exc
        await self._settle(probe, session, exc)

    async def _settle(self, probe: EventRow, session: Session, cause: BaseException) -> None:
        """Returns if the batch committed after all; raises otherwise."""
        committed = await self._read_back(probe, session)
        if committed:
            log.warning("the connection was lost during a COMMIT, which is found committed")
            return
        if committed is False:
            raise StorageError(f"the database connection failed during a COMMIT, which did not commit: "
                               f"{describe_error(cause)}") from cause
        settled: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._in_doubt.append(InDoubt(probe, session, settled))
        if self._settler is None or self._settler.done():
            self._settler = asyncio.create_task(self._settle_loop(), name="belay-pg-settle")
        log.error("the outcome of a COMMIT is unknown after %.0f s; its boxes wait until the database answers",
                  COMMIT_READBACK_S)
        raise CommitUnknown(f"the database did not answer whether a write committed within {COMMIT_READBACK_S:.0f} s",
                            settled) from cause

    async def _read_back(self, probe: EventRow, session: Session) -> bool | None:
        deadline = time.monotonic() + COMMIT_READBACK_S
        while time.monotonic() < deadline:
            try:
                conn = await asyncio.wait_for(self._target.connect(), max(0.1, deadline - time.monotonic()))
                try:
                    outcome = await _outcome(conn, probe, session)
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
            outcome = await _outcome(conn, doubt.probe, doubt.session)
            if outcome is None:
                continue
            self._in_doubt.remove(doubt)
            if not doubt.settled.done():
                log.warning("a COMMIT whose outcome was unknown is found %s",
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


async def _outcome(conn: asyncpg.Connection, probe: EventRow, session: Session) -> bool | None:
    """True if the batch is stored; False if not and the session that sent it is gone (so it never
    will be); None while that session still lives. A session of ours left behind is ended."""
    if await _stored(conn, probe):
        return True
    if await _alive(conn, session):
        await conn.execute("SELECT pg_terminate_backend($1, 5000)", session[0])
        if await _stored(conn, probe):
            return True
        return None if await _alive(conn, session) else False
    return False


async def _stored(conn: asyncpg.Connection, probe: EventRow) -> bool:
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
