"""`run.py migrate`: a whole competition moved between a JSON directory and a PostgreSQL schema,
all or nothing, and proven before it counts.

A server on either side refuses it; the source (and a target schema) stay locked for the whole
run, and a target directory is asked again just before its rename. The source is read
whole; its digest (per era and box: event count, seqs, SHA-256 of the lines in seq order; the
checkpoints; the documents) must show contiguous seqs, and every box of the current era is
replayed from seq 1 and compared with its checkpoint, as `run.py check` does, in worker processes
while the target is written. The target is staged (one open transaction; a new folder beside the
directory), computes its own digest, and only if that equals the source's and every replay
agreed is it committed (COMMIT; one rename), with a record of the migration on both sides.
A dry run reads and proves the source and asks the target whether it is free and empty; it
writes nothing.
"""
from __future__ import annotations

import asyncio
import multiprocessing
import os
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final, Protocol

import orjson

from actors.recovery.check import Report, check_boxes
from actors.recovery.replay import load_state
from persistence.errors import StorageError
from persistence.migration.competition import Competition, Digest
from persistence.types import PROBLEM, WARNING, Checkpoint, StoredCheckpoint

MAX_REPLAY_WORKERS: Final = 8  # one per core up to this; each holds only its boxes' lines
Tick = Callable[[int], None]
Stage = Callable[[str, int], Tick]  # (what, total bytes) -> a tick for bytes done


class MigrationFailed(StorageError):
    """The proof failed: nothing was written to the target (the reasons are in `problems`)."""

    def __init__(self, message: str, problems: list[str]) -> None:
        super().__init__(message)
        self.problems = problems


class Side(Protocol):
    """Either side of a migration (persistence/migration/directory.py and schema.py)."""

    location: str

    async def open_source(self, lock: bool) -> None: ...
    async def open_target(self, lock: bool) -> None: ...
    async def size(self) -> int: ...
    async def read(self, tick: Tick | None = None) -> Competition: ...
    async def write(self, competition: Competition, tick: Tick | None = None) -> dict[str, float]: ...
    async def digest(self) -> Digest: ...
    async def commit(self, marker: dict[str, Any]) -> None: ...
    async def record(self, marker: dict[str, Any]) -> None: ...
    async def close(self) -> None: ...


@dataclass
class Migrated:
    source: str
    target: str
    dry_run: bool
    events: int = 0
    boxes: int = 0
    line_bytes: int = 0
    seconds: dict[str, float] = field(default_factory=dict)  # reading, copy/writing, indexes, hashing, replay, total
    notes: list[str] = field(default_factory=list)  # what the source holds that was not carried, warnings


async def migrate(source: Side, target: Side, *, dry_run: bool = False, stage: Stage | None = None) -> Migrated:
    started = time.monotonic()
    result = Migrated(source.location, target.location, dry_run)
    try:
        await target.open_target(lock=not dry_run)  # first: its refusals cost nothing to find
        await source.open_source(lock=not dry_run)
        competition = await _timed(result, "reading", source.read(_tick(stage, "reading", await source.size())))
        result.events, result.line_bytes = len(competition.rows), competition.line_bytes
        result.notes += [f"not carried: {what}" for what in competition.left_behind]
        replays = Replays(competition, result)  # the longest part: started first, beside the rest
        try:
            digest = await _timed(result, "hashing", source.digest())
            gaps = digest.gaps()
            if gaps:
                raise MigrationFailed("the source's seqs are not contiguous (`run.py check` says more)", gaps)
            if not dry_run:
                result.seconds.update(await target.write(competition, _tick(stage, "writing", result.line_bytes)))
                competition.rows.clear()  # written, and the replays hold their own: memory for the read-back
                differences = digest.differences(await _timed(result, "hashing", target.digest()))
                if differences:
                    raise MigrationFailed("the copy differs from the source", differences)
            problems = await replays.result(_tick(stage, "replaying", replays.total))
        finally:
            await replays.result(None)  # the worker processes end before anything else is said
        current = {box for (era, box) in digest.boxes if era == competition.era}
        result.boxes = len(current | set(competition.checkpoints))
        if problems:
            raise MigrationFailed("replaying the source's boxes does not give their checkpoints", problems)
        if not dry_run:
            marker = _marker(result, digest)
            await target.commit(marker)
            try:
                await source.record(marker)
            except StorageError as exc:  # the copy is committed: only the note on the source is missing
                result.notes.append(str(exc))
    finally:
        await target.close()
        await source.close()
    result.seconds["total"] = time.monotonic() - started
    return result


async def _timed(result: Migrated, part: str, work: Any) -> Any:
    started = time.monotonic()
    value = await work
    result.seconds[part] = result.seconds.get(part, 0.0) + time.monotonic() - started
    return value


def _tick(stage: Stage | None, name: str, total: int) -> Tick | None:
    return stage(name, total) if stage is not None else None


def _marker(result: Migrated, digest: Digest) -> dict[str, Any]:
    return {"at": datetime.now(UTC).isoformat(), "from": result.source, "to": result.target,
            "events": result.events, "boxes": result.boxes, "era": digest.era,
            "boxes_sha256": {f"{era}/{box}": d.sha256 for (era, box), d in sorted(digest.boxes.items())}}


# -- replay, in worker processes --------------------------------------------------------------------

ReplayItem = tuple[int, bytes, str | None, int | None]  # box, its lines in seq order, checkpoint state, its seq


class Replays:
    """Every box of the current era replayed against its checkpoint in worker processes, from the
    moment it is made; `result` waits for the problems found."""

    def __init__(self, competition: Competition, result: Migrated) -> None:
        self._items = sorted(_replay_items(competition), key=lambda item: -len(item[1]))  # biggest first
        self.total = sum(len(item[1]) for item in self._items)
        self._done = 0
        self._tick: Tick | None = None
        self._result = result
        self._task = asyncio.ensure_future(self._run())

    async def result(self, tick: Tick | None) -> list[str]:
        self._tick = tick
        if tick is not None:
            tick(self._done)
        return await self._task

    async def _run(self) -> list[str]:
        started = time.monotonic()
        loop = asyncio.get_running_loop()
        workers = max(1, min(MAX_REPLAY_WORKERS, os.cpu_count() or 1, len(self._items)))
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            async def one(item: ReplayItem) -> list[tuple[str, str]]:
                found = await loop.run_in_executor(pool, replay_box, item)
                self._done += len(item[1])
                if self._tick is not None:
                    self._tick(self._done)
                return found

            parts = await asyncio.gather(*(one(item) for item in self._items))
        self._result.seconds["replay"] = time.monotonic() - started
        findings = [pair for part in parts for pair in part]
        self._result.notes += [text for level, text in findings if level == WARNING]
        return [text for level, text in findings if level == PROBLEM]


def _replay_items(competition: Competition) -> list[ReplayItem]:
    by_box: dict[int, list[tuple[int, bytes]]] = {}
    for era, box, seq, _, _, _, line in competition.rows:
        if era == competition.era and box is not None and seq is not None:
            by_box.setdefault(box, []).append((seq, line))
    items: list[ReplayItem] = []
    for box in sorted(set(by_box) | set(competition.checkpoints)):
        pairs = sorted(by_box.get(box, ()), key=lambda pair: pair[0])
        saved = competition.checkpoints.get(box)
        items.append((box, b"".join(line for _, line in pairs), saved.state if saved else None,
                      saved.seq if saved else None))
    return items


def replay_box(item: ReplayItem) -> list[tuple[str, str]]:
    """In a worker: `run.py check`'s test of one box (actors/recovery/check.py); its findings."""
    box, lines, state_text, seq = item
    by_seq: dict[int, dict[str, Any]] = {}
    for line in lines.splitlines():
        event = orjson.loads(line)
        by_seq[event["seq"]] = event
    report = Report("migration")
    saved = None
    if seq is not None and state_text is None:  # an Unrebuildable mark: replay decides, as at a start
        saved = StoredCheckpoint(None, None, seq)
    elif seq is not None and state_text is not None:
        state = orjson.loads(state_text)
        try:
            saved = StoredCheckpoint(Checkpoint(box, seq, load_state(state)), state, seq)
        except Exception as exc:  # whatever the rule refuses
            report.add(PROBLEM, f"box {box}: its checkpoint is unusable (invalid state: {exc})")
            saved = StoredCheckpoint(None, state, seq)
    check_boxes({box: saved} if saved is not None else {}, {box: by_seq}, report)
    return report.findings
