"""The persister: the only writer of state files.

It takes every event waiting in its mailbox, appends them with one write and one fdatasync
(group commit), then releases every waiter with the verdict. Box checkpoints are written later,
coalesced (latest state wins), off the acknowledgement path. The persister records the state that
goes with each committed event itself, so a checkpoint never runs ahead of or behind the log.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from actors.runtime import ActorStopped, BatchingActor, Failed
from actors.tallies import Buckets
from persistence.errors import CommitUnknown
from persistence.storage import FrozenPoint, SavedState, Storage, StorageError

log = logging.getLogger("belay.persister")


@dataclass(frozen=True, slots=True)
class Append:
    """One event line for the log; `verdict` resolves once it is durable (or failed)."""

    box_id: int
    seq: int
    line: bytes
    state: dict[str, Any]
    verdict: asyncio.Future[None]


@dataclass(frozen=True, slots=True)
class AuditLine:
    """An audit-only line (an account change): committed with the events, but it has no box seq,
    so replay, checkpoints and `run.py check` pass over it."""

    line: bytes
    verdict: asyncio.Future[None]


@dataclass(frozen=True, slots=True)
class AppendAll:
    """Events that must share one write and one fdatasync: all durable, or none."""

    appends: tuple[Append, ...]


class GroupAborted(Exception):
    """A box of a group commit failed before its event was ready: nothing of the group is written."""


class GroupCommit:
    """Events of several box actors that are durable together or not at all (a restore of many
    boxes). Each actor joins with its event and waits; the last to join hands all of them to the
    persister as one message. `abort` releases the waiters while nothing was handed over yet."""

    def __init__(self, persister: Persister, expected: int) -> None:
        self._persister = persister
        self._expected = expected
        self._joined: list[Append] = []
        self._verdict: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._sent = False

    def join(self, box_id: int, seq: int, line: bytes, state: dict[str, Any]) -> asyncio.Future[None]:
        self._joined.append(Append(box_id, seq, line, state, self._verdict))
        if len(self._joined) == self._expected and not self._verdict.done():
            self._sent = True
            try:
                self._persister.tell(AppendAll(tuple(self._joined)))
            except ActorStopped:
                self._verdict.set_exception(StorageError("the server is shutting down"))
        return self._verdict

    def abort(self) -> None:
        if not self._sent and not self._verdict.done():
            self._verdict.set_exception(GroupAborted())


@dataclass(frozen=True, slots=True)
class Flush:
    """Commit everything queued before it and checkpoint every dirty box."""


@dataclass(frozen=True, slots=True)
class WriteDocument:
    """Replace a whole document (users, officials) atomically; the reply comes once it is durable."""

    name: str
    value: Any


@dataclass(frozen=True, slots=True)
class Freeze:
    """Checkpoint every box and fix one durable point of the storage for a backup, between two
    batches, so it holds exactly what was acknowledged. Only fixing it is the persister's: laying
    it out as files may take long, and happens after its turn (BackupActor)."""


# Bounds of the commit histograms (transport/metrics/ exports them): an fdatasync takes about
# 0.2 ms on a good disk and a stalled one 100 ms or more (docs/performance.md).
COMMIT_SECONDS = (0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
BATCH_EVENTS = (1, 2, 3, 5, 10, 20, 50, 100, 200, 500)


@dataclass(slots=True)
class StorageStatus:
    """Read by health endpoints and /metrics; written only by the persister."""

    degraded: bool = False
    last_error: str | None = None
    last_durable_write: float | None = None  # epoch seconds
    batches: int = 0
    events: int = 0
    failed_batches: int = 0
    # Each committed batch: how long the storage's append took (the write and its fdatasync, or the
    # database COMMIT, with the hop to its thread), and how many events it held.
    commit_seconds: Buckets = field(default_factory=lambda: Buckets(COMMIT_SECONDS))
    batch_events: Buckets = field(default_factory=lambda: Buckets(BATCH_EVENTS))


class Persister(BatchingActor):
    def __init__(self, storage: Storage, checkpoint_interval_s: float) -> None:
        super().__init__("persister")
        self.storage = storage
        self.status = StorageStatus()
        self._interval = checkpoint_interval_s
        self._dirty: dict[int, tuple[int, SavedState]] = {}
        self._dirty_since: float | None = None  # monotonic time the oldest dirty box became dirty
        self._checkpointing = asyncio.Lock()

    def append(self, box_id: int, seq: int, line: bytes, state: dict[str, Any]) -> asyncio.Future[None]:
        verdict: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.tell(Append(box_id, seq, line, state, verdict))
        return verdict

    def append_audit(self, line: bytes) -> asyncio.Future[None]:
        verdict: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.tell(AuditLine(line, verdict))
        return verdict

    async def handle_batch(self, messages: list[object]) -> list[Any]:
        """The events of the batch first, in one write; then the other messages, in order."""
        appends: list[Append | AuditLine] = []
        others = False
        for message in messages:
            if isinstance(message, (Append, AuditLine)):
                appends.append(message)
            elif isinstance(message, AppendAll):
                appends.extend(message.appends)
            else:
                others = True
        if appends:
            await self._commit(appends)
        answers: list[Any] = [None] * len(messages)
        if not others:  # the usual batch: events only
            return answers
        for index, message in enumerate(messages):
            if isinstance(message, (Append, AuditLine, AppendAll)):
                continue
            try:
                if isinstance(message, Flush):
                    await self.checkpoint_all()
                elif isinstance(message, Freeze):
                    await self.checkpoint_all()
                    answers[index] = await self.storage.freeze()
                elif isinstance(message, WriteDocument):
                    await self.storage.write_document(message.name, message.value)
                else:
                    raise TypeError(f"unexpected message {message!r}")
            except Exception as exc:
                if not isinstance(exc, StorageError):
                    log.exception("persister failed on %s", type(message).__name__)
                answers[index] = Failed(exc)
        return answers

    async def _commit(self, appends: list[Append | AuditLine]) -> None:
        started = time.perf_counter()
        try:
            await self.storage.append([a.line for a in appends])
        except StorageError as exc:
            self.status.failed_batches += 1
            self.status.degraded = True
            self.status.last_error = str(exc) or type(exc).__name__
            log.error("storage failure, %d event(s) not committed: %s", len(appends), exc)
            for a in appends:
                if not a.verdict.done():
                    # An unknown outcome stays one: its boxes wait for it (BoxActor._enter_doubt).
                    a.verdict.set_exception(CommitUnknown(self.status.last_error, exc.settled)
                                            if isinstance(exc, CommitUnknown) else StorageError(self.status.last_error))
            return
        if self.status.degraded:
            log.warning("storage recovered")
        self.status.degraded = False
        self.status.last_error = None
        self.status.last_durable_write = time.time()
        self.status.commit_seconds.observe(time.perf_counter() - started)
        self.status.batches += 1
        self.status.events += len(appends)
        self.status.batch_events.observe(len(appends))
        for a in appends:
            if isinstance(a, Append):
                self._dirty[a.box_id] = (a.seq, a.state)
            if not a.verdict.done():
                a.verdict.set_result(None)
        if self._dirty_since is None and self._dirty:
            self._dirty_since = time.monotonic()
        try:
            await self.storage.maintain(self.checkpoint_all)
        except (StorageError, OSError) as exc:
            # The log keeps growing; rotation is retried after the next batch.
            log.error("log rotation failed: %s", exc)

    async def checkpoint_all(self) -> None:
        """Write every dirty box now; raises if they could not be written."""
        async with self._checkpointing:
            pending, self._dirty = self._dirty, {}
            if not pending:
                return
            since, self._dirty_since = self._dirty_since, None
            try:
                await self.storage.write_checkpoints([(box, seq, state) for box, (seq, state) in pending.items()])
            except Exception as exc:
                for box_id, entry in pending.items():  # still dirty, unless a newer state arrived
                    self._dirty.setdefault(box_id, entry)
                self._dirty_since = since
                raise StorageError(f"checkpoint failed: {exc}") from exc

    def remember(self, items: Sequence[tuple[int, int, SavedState]]) -> None:
        """States the checkpoints lag behind (boxes rebuilt from the log at start, or marks for boxes
        it cannot rebuild): written with the next checkpoints, and before the log rotates, so a box's
        events never end up only in an archive that a later start has no reason to read."""
        for box_id, seq, state in items:
            self._dirty.setdefault(box_id, (seq, state))
        if self._dirty_since is None and self._dirty:
            self._dirty_since = time.monotonic()

    def checkpoint_lag(self) -> tuple[int, float]:
        """Boxes whose last committed event is in no checkpoint yet, and for how many seconds the
        oldest of them has waited (0 when none has): what a crash now would replay."""
        if not self._dirty or self._dirty_since is None:
            return len(self._dirty), 0.0
        return len(self._dirty), time.monotonic() - self._dirty_since

    async def checkpoint_loop(self) -> None:
        """Coalesced checkpoints: at most one write per dirty box per interval."""
        while True:
            await asyncio.sleep(self._interval)
            if self._dirty:
                try:
                    await self.checkpoint_all()
                except StorageError as exc:
                    log.error("%s (will retry)", exc)

    async def write_document(self, name: str, value: Any) -> None:
        """Raises StorageError when the document could not be made durable."""
        await self.ask(WriteDocument(name, value))

    async def freeze(self) -> FrozenPoint:
        point: FrozenPoint = await self.ask(Freeze())
        return point

    async def flush(self) -> None:
        try:
            await self.ask(Flush())
        except ActorStopped:
            await self.checkpoint_all()
