"""Rebuilds the boxes of a storage directory: at start-up, and to prove a backup would start.

Each box is its checkpoint plus the later events replayed through the rules (actors/recovery/replay.py).
A box that cannot be rebuilt exactly is never recreated on top of its own history: it is kept
as unavailable, with the last seq and version its history holds, until an admin brings it back.
Storage keeps any box id; a box outside the rules' range is left as it is stored, and logged.
"""
from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from actors.recovery.replay import ReplayError, load_state, rebuild
from actors.rules.backups import state_from_backup
from actors.rules.limits import MAX_BOX_ID
from persistence.storage import Recovered, SavedState, Storage, Unrebuildable

log = logging.getLogger("belay.recovery")


@dataclass(frozen=True, slots=True)
class RestoredBox:
    box_id: int
    seq: int
    state: dict[str, Any]
    last_event_ms: int | None = None  # server time of the last event replayed, if any


@dataclass(frozen=True, slots=True)
class UnavailableBox:
    """A box whose history cannot rebuild it; whatever brings it back continues above these."""

    box_id: int
    seq: int  # the highest seq its history (or a checkpoint) names
    box_version: int  # likewise, the highest boxVersion
    reason: str


@dataclass(frozen=True, slots=True)
class Recovery:
    restored: list[RestoredBox]
    unavailable: list[UnavailableBox]


class NotRebuildable(ValueError):
    """Some box of a directory (an unpacked backup) cannot be rebuilt exactly; the message names each."""


async def open_as_a_start(storage: Storage, reset_boxes: bool = False) -> Recovered:
    """Open a storage exactly as a server start does (same checkpoint rule)."""
    return await storage.open(reset_boxes, load_state)


def restore_boxes(recovered: Recovered) -> Recovery:
    restored: list[RestoredBox] = []
    unavailable: list[UnavailableBox] = []
    stored = (set(recovered.checkpoints) | set(recovered.events) | set(recovered.unrecoverable)
              | set(recovered.unusable))
    outside = sorted(box_id for box_id in stored if box_id > MAX_BOX_ID)
    if outside:
        log.warning("box id(s) %s are outside the box-id range 0..%d: what storage holds for them is kept "
                    "but not restored", outside, MAX_BOX_ID)
    for box_id in sorted(stored - set(outside)):
        last_seq, last_version = recovered.highest.get(box_id, (0, 0))
        try:
            rebuilt = rebuild(recovered.checkpoints.get(box_id), recovered.events.get(box_id, []), last_seq=last_seq)
        except ReplayError as exc:
            reason = str(exc)
            if box_id in recovered.unusable:
                reason = f"{recovered.unusable[box_id]}, and {reason}"
            log.error("box %d cannot be rebuilt: %s. It answers 503 box_unavailable until an admin restores "
                      "a backup, rolls it back or starts it over", box_id, reason)
            unavailable.append(UnavailableBox(box_id, last_seq, last_version, reason))
            continue
        restored.append(RestoredBox(box_id, rebuilt.seq, rebuilt.state, rebuilt.now_ms))
    return Recovery(restored, unavailable)


def lagging_checkpoints(recovered: Recovered, recovery: Recovery) -> list[tuple[int, int, SavedState]]:
    """What the checkpoints must catch up with after a start: boxes rebuilt past their checkpoint
    (or without one), and a mark for each box that cannot be rebuilt and has no box file at all.
    Otherwise, once the log rotates, a later start would have no reason to read the archive that
    holds those events (and a box known only by a checkpoint now in quarantine would be forgotten)."""
    items: list[tuple[int, int, SavedState]] = []
    for box in recovery.restored:
        checkpoint = recovered.checkpoints.get(box.box_id)
        if checkpoint is None or checkpoint.seq < box.seq:
            items.append((box.box_id, box.seq, box.state))
    for lost in recovery.unavailable:
        if lost.box_id not in recovered.checkpoints and lost.box_id not in recovered.unusable:
            mark = Unrebuildable(lost.box_version, f"an earlier start could not rebuild it ({lost.reason})")
            items.append((lost.box_id, lost.seq, mark))
    return items


async def rebuild_storage(storage: Storage) -> list[RestoredBox]:
    """Every box of a storage nobody else uses (a backup's contents), rebuilt as a start would;
    raises NotRebuildable naming each box that cannot be rebuilt exactly. Closes the storage."""
    try:
        recovered = await open_as_a_start(storage)
    finally:
        await storage.close()
    recovery = await asyncio.to_thread(restore_boxes, recovered)  # the replay is long for a long log
    if recovery.unavailable:
        raise NotRebuildable("; ".join(f"box {box.box_id} cannot be rebuilt: {box.reason}"
                                       for box in recovery.unavailable))
    return recovery.restored


@dataclass(frozen=True, slots=True)
class BackupBox:
    box_id: int
    state: dict[str, Any]
    as_of_ms: int | None  # when the backup recorded it: a running clock comes back with the time left then


async def rebuild_backup(storage: Storage, created_at: object) -> list[BackupBox]:
    """A backup's contents as a storage (persistence.factory.backup_as_storage, or the staged copy
    of a restore), all or nothing: every box rebuilt exactly and restorable, or NotRebuildable
    naming each box that is not. `run.py restore` and `POST /api/admin/restore` both rely on this
    one check.

    The backup's time is its manifest's `createdAt`, but never before a box's last event (a clock
    started just before the backup's durable point must not get time back)."""
    boxes = await rebuild_storage(storage)
    taken_ms = _iso_ms(created_at)
    verified: list[BackupBox] = []
    problems: list[str] = []
    for box in boxes:
        try:
            _, state = state_from_backup({"boxId": box.box_id, "state": box.state})
        except ValueError as exc:
            problems.append(f"box {box.box_id}: {exc}")
            continue
        times = [ms for ms in (taken_ms, box.last_event_ms) if ms is not None]
        verified.append(BackupBox(box.box_id, state, max(times) if times else None))
    if problems:
        raise NotRebuildable("; ".join(problems))
    return verified


def _iso_ms(value: object) -> int | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    if moment.tzinfo is None:
        return None
    return int(moment.timestamp() * 1000)
