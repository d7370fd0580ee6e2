"""Backups: one at a time, taken at a durable point frozen by the persister, zipped off the loop.

The persister only checkpoints and has the storage fix a durable point (the JSON backend
hard-links its files; a database takes a snapshot): a few ms. Here, after the persister's turn
and while commands keep flowing, the storage lays that point out as files (a database writes out
every event) and a worker process builds the zip from them. A failed backup is logged and
reported in the ops status, never fatal.
"""
from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from actors.jobs.process import background_executor
from actors.messages import Clock
from actors.persister import Persister
from actors.runtime import Actor
from persistence.backup import backups, build_zip, prune
from persistence.storage import Storage

if TYPE_CHECKING:
    from collections.abc import Callable
    from concurrent.futures import ProcessPoolExecutor

log = logging.getLogger("belay.backup")
T = TypeVar("T")

FIRST_BACKUP_DELAY_S = 30.0


@dataclass(frozen=True, slots=True)
class BackupNow:
    reason: str


@dataclass(frozen=True, slots=True)
class BackupDone:
    path: Path
    size: int
    created_at: datetime
    seconds: float


@dataclass(slots=True)
class BackupStatus:
    last_file: str | None = None
    last_at: datetime | None = None
    last_size: int | None = None  # bytes of last_file
    last_error: str | None = None
    last_error_at: datetime | None = None
    taken: int = 0
    failed: int = 0


class BackupActor(Actor):
    answered_errors = (Exception,)  # a failed backup is logged and counted here, then reported to the caller

    def __init__(self, persister: Persister, storage: Storage, backup_dir: Path, retention: int,
                 clock: Clock) -> None:
        super().__init__("backups")
        self.status = BackupStatus()
        self._persister = persister
        self._storage = storage
        self._clock = clock  # the boxes' clock: a restore reads a running clock as of the backup's time
        self.backup_dir = backup_dir
        self._retention = retention
        self._pool: ProcessPoolExecutor | None = None
        newest = backups(backup_dir)
        if newest:  # a restarted server still knows how old its newest backup is
            stat = newest[-1].stat()
            self.status.last_file = newest[-1].name
            self.status.last_at = datetime.fromtimestamp(stat.st_mtime, UTC)
            self.status.last_size = stat.st_size

    async def handle(self, message: object) -> BackupDone:
        if not isinstance(message, BackupNow):
            raise TypeError(f"unexpected message {message!r}")
        started = asyncio.get_running_loop().time()
        now = datetime.fromtimestamp(self._clock.now_ms() / 1000, UTC)
        try:
            frozen = await self._persister.freeze()
            try:
                point = await self._storage.lay_out(frozen)
                path = await self._in_worker(build_zip, point, self.backup_dir, now)
            finally:
                await self._storage.release(frozen)
            removed = await asyncio.to_thread(prune, self.backup_dir, self._retention)
        except Exception as exc:
            self.status.failed += 1
            self.status.last_error = f"{type(exc).__name__}: {exc}"
            self.status.last_error_at = now
            log.error("backup (%s) failed: %s", message.reason, self.status.last_error)
            raise
        size = path.stat().st_size
        self.status.taken += 1
        self.status.last_file, self.status.last_at, self.status.last_size = path.name, now, size
        if removed:
            log.info("removed %d old backup(s)", len(removed))
        seconds = asyncio.get_running_loop().time() - started
        log.info("backup %s written in %.2f s (%s)", path.name, seconds, message.reason)
        return BackupDone(path, size, now, seconds)

    async def _in_worker(self, fn: Callable[..., T], *args: object) -> T:
        if self._pool is None:
            self._pool = background_executor()  # with the first backup, not at every start-up
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    async def periodic(self, interval_min: float) -> None:
        """The first backup soon after start, then one every interval; failures never stop it."""
        await asyncio.sleep(min(FIRST_BACKUP_DELAY_S, interval_min * 60))
        while True:
            try:
                await self.ask(BackupNow("periodic"))
            except Exception:  # already logged and shown in the ops status
                pass
            await asyncio.sleep(interval_min * 60)

    async def on_stop(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
