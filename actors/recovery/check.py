"""Verifying a storage (read only) and repairing it offline: the work behind `run.py check`.

The check only reads (it works beside a running server): the storage's own inspection (how it
holds its data, in its backend's words: for JSON files a torn log tail, stray temp files, bad lines
by number) and then, the same in every mode, what a start would make of each box: contiguous seqs
from the checkpoint on, and a replay from seq 1 that gives back the checkpoint exactly. The repair
opens the storage as a start does (which repairs what a crash left and sets unusable checkpoints
aside), rebuilds every box and writes fresh checkpoints. Nothing is ever deleted.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from actors.recovery.replay import ReplayError, load_state, rebuild, replay
from actors.recovery.restore import lagging_checkpoints, open_as_a_start, restore_boxes
from actors.rules.limits import MAX_BOX_ID
from persistence.errors import DocumentUnreadable, StorageLocked
from persistence.storage import Storage, StorageReader
from persistence.types import DOCUMENTS, INFO, PROBLEM, WARNING, Finding, StoredCheckpoint, Unrebuildable


@dataclass
class Report:
    location: str
    lock_pid: str | None = None     # None = free
    findings: list[Finding] = field(default_factory=list)  # (level, sentence)
    boxes: int = 0
    log_lines: int = 0

    def add(self, level: str, message: str) -> None:
        self.findings.append((level, message))

    @property
    def problems(self) -> int:
        return sum(1 for level, _ in self.findings if level == PROBLEM)

    @property
    def warnings(self) -> int:
        return sum(1 for level, _ in self.findings if level == WARNING)


# -- the read-only check ---------------------------------------------------------------------------

async def check_storage(reader: StorageReader) -> Report:
    inspection = await reader.inspect(load_state)
    report = Report(reader.location)
    if inspection.holder is not None:
        report.lock_pid = inspection.holder.pid
        report.add(INFO, f"lock: held by {inspection.holder} (a server is running; this check only reads)")
    else:
        report.add(INFO, "lock: free (no server is running on this directory)")
    report.findings += inspection.findings
    report.log_lines = inspection.events_read
    check_boxes(inspection.checkpoints, inspection.events, report)
    return report


def check_boxes(checkpoints: dict[int, StoredCheckpoint], events: dict[int, dict[int, dict[str, Any]]],
                 report: Report) -> None:
    stored = set(checkpoints) | set(events)
    outside = sorted(box for box in stored if box > MAX_BOX_ID)
    if outside:
        report.add(WARNING, f"box id(s) {', '.join(map(str, outside))} are outside the box-id range 0..{MAX_BOX_ID}: "
                            f"a start keeps what is stored for them but does not restore them")
    box_ids = sorted(stored - set(outside))
    report.boxes = len(box_ids)
    consistent = 0
    for box in box_ids:
        if _check_box(box, checkpoints.get(box), events.get(box, {}), report):
            consistent += 1
    if box_ids:
        report.add(INFO, f"{consistent} of {len(box_ids)} box(es) replay consistently")


def _check_box(box: int, saved: StoredCheckpoint | None, by_seq: dict[int, dict[str, Any]], report: Report) -> bool:
    """Exactly what a start does with the box (actors/recovery/replay.py `rebuild`), and, where the whole
    history is at hand, that it gives back the checkpoint."""
    checkpoint = saved.checkpoint if saved is not None else None
    seqs = sorted(by_seq)
    if checkpoint is not None and 1 in by_seq and saved is not None and saved.stored_state is not None:
        if any(n not in by_seq for n in range(1, checkpoint.seq + 1)):
            report.add(PROBLEM, f"box {box}: checkpoint is at seq {checkpoint.seq} but the log stops at seq "
                                f"{_contiguous(seqs, 1)}")
            return False
        try:
            replayed = replay(None, 0, (by_seq[n] for n in range(1, checkpoint.seq + 1)))
        except ReplayError as exc:
            report.add(PROBLEM, f"box {box}: replaying seq 1..{checkpoint.seq} fails: {exc}")
            return False
        differing = _differences(replayed.state, saved.stored_state)
        if differing:
            report.add(PROBLEM, f"box {box}: replaying seq 1..{checkpoint.seq} does not give the checkpoint's state "
                                f"(differs in {', '.join(differing[:8])})")
            return False
    after = checkpoint.seq if checkpoint is not None else 0
    last_seq = max([*seqs, saved.named_seq if saved is not None else 0])
    try:
        rebuild(checkpoint, [by_seq[n] for n in seqs if n > after], last_seq=last_seq)
    except ReplayError as exc:
        unusable = " (its checkpoint is unusable)" if saved is not None and checkpoint is None else ""
        report.add(PROBLEM, f"box {box} cannot be rebuilt{unusable}: {exc}. A start keeps it unavailable "
                            f"(503 box_unavailable) until an admin restores a backup, rolls it back "
                            f"(run.py rollback) or starts it over")
        return False
    return True


def _contiguous(seqs: list[int], first: int) -> int:
    """The last seq of the unbroken run starting at `first` (first - 1 if it is missing)."""
    present, last = set(seqs), first - 1
    while last + 1 in present:
        last += 1
    return last


def _differences(replayed: dict[str, Any], saved: dict[str, Any]) -> list[str]:
    """Top-level keys whose JSON differs (the checkpoint went through JSON, so compare through it too)."""
    left = orjson.loads(orjson.dumps(replayed))
    keys = sorted(set(left) | set(saved))
    return [key for key in keys if orjson.dumps(left.get(key), option=orjson.OPT_SORT_KEYS)
            != orjson.dumps(saved.get(key), option=orjson.OPT_SORT_KEYS)]


# -- repair ----------------------------------------------------------------------------------------

async def repair(storage: Storage, reader: StorageReader) -> list[str]:
    """What a server start does, plus fresh checkpoints of every box; returns sentences of what it did."""
    try:
        recovered = await open_as_a_start(storage)
    except BaseException as exc:
        await storage.close()
        if isinstance(exc, StorageLocked):
            raise exc.advising("stop it before a repair (a plain `check` works while it runs)") from None
        raise
    try:
        done = list(recovered.repairs)
        done += [f"moved an unusable checkpoint to {where}" for where in recovered.quarantined]
        if recovered.skipped_events:
            done.append(f"skipped {recovered.skipped_events} unparsable log line(s) (kept in the file)")
        for name in DOCUMENTS:
            try:
                await reader.read_document(name)
            except DocumentUnreadable as exc:
                await storage.read_document(name)  # as a start reads it: set aside, and none is used
                done.append(f"{exc.where} did not parse; moved aside next to it")
        recovery = restore_boxes(recovered)
        marks = [item for item in lagging_checkpoints(recovered, recovery) if isinstance(item[2], Unrebuildable)]
        await storage.write_checkpoints([(box.box_id, box.seq, box.state) for box in recovery.restored] + marks)
        done.append(f"rebuilt {len(recovery.restored)} box(es) from checkpoint and log and wrote fresh checkpoints")
        for lost in recovery.unavailable:  # nothing is written for them: their history stays as it is
            done.append(f"box {lost.box_id} cannot be rebuilt ({lost.reason}); a server keeps it unavailable "
                        f"until an admin restores a backup, rolls it back or starts it over")
    finally:
        await storage.close()
    return done
