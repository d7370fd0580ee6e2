"""Verifying a storage directory (read only) and repairing it offline: the work behind `run.py check`.

The check only reads (it works beside a running server) and returns a `Report` of findings. The
repair takes the directory's lock, lets JsonStore.open do what a server start does (cut a torn log
tail, remove stray temp files, move corrupt checkpoints to boxes/quarantine/), rebuilds every box
from checkpoint + log and writes fresh checkpoints. Nothing is ever deleted.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from actors.recovery.replay import ReplayError, load_state, rebuild, replay
from actors.recovery.restore import lagging_checkpoints, open_store, restore_boxes
from actors.rules.limits import is_box_id, parse_box_id
from persistence.checkpoints import (
    TMP_SUFFIX,
    Checkpoint,
    is_int,
    named_point,
    parse_checkpoint,
    parse_unrebuildable,
)
from persistence.documents import DOCUMENT_FILES
from persistence.errors import StorageLocked
from persistence.fs import FileSystem
from persistence.json_store import JsonStore, era_archives
from persistence.storage import Unrebuildable
from persistence.storage_lock import lock_holder, locked_by_server
from persistence.wal import LOG_NAME, committed_length, parse_line

PROBLEM, WARNING, INFO = "problem", "warning", "ok"
MAX_LISTED_LINES = 20


@dataclass
class Report:
    root: Path
    lock_pid: str | None = None     # None = free
    findings: list[tuple[str, str]] = field(default_factory=list)  # (level, sentence)
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

def check_storage(root: Path) -> Report:
    report = Report(root)
    report.lock_pid = lock_holder(root)
    running = report.lock_pid is not None
    if running:
        report.add(INFO, f"lock: held by pid {report.lock_pid} (a server is running; this check only reads)")
    else:
        report.add(INFO, "lock: free (no server is running on this directory)")
    boxes_dir = root / "boxes"
    # Checkpoints before the log: a checkpoint is only written after its events are in the log.
    checkpoints = _check_checkpoints(boxes_dir, report)
    _check_temp_files(boxes_dir, report, running)
    _check_documents(root, report)
    events = _check_log(root, report, running)
    _check_boxes(checkpoints, events, report)
    quarantined = FileSystem().list_files(boxes_dir / "quarantine")
    if quarantined:
        report.add(INFO, f"boxes/quarantine/ holds {len(quarantined)} file(s) set aside earlier (kept, never used)")
    return report


@dataclass
class _Checkpoint:
    """What a box file holds, judged by the same rules as a start (persistence's parse, then the
    rules' `load_state`). `checkpoint` is None when a start would set the file aside."""

    checkpoint: Checkpoint | None
    raw_state: dict[str, Any] | None  # as stored, for the comparison with a full replay
    named_seq: int  # the seq the file names, even an unusable one (0 if none)


def _check_checkpoints(boxes_dir: Path, report: Report) -> dict[int, _Checkpoint]:
    """Every box file by box."""
    found: dict[int, _Checkpoint] = {}
    names = [name for name in FileSystem().list_files(boxes_dir) if name.endswith(".json")]
    for name in names:
        box_id = parse_box_id(name[: -len(".json")])
        if box_id is None:
            report.add(PROBLEM, f"boxes/{name} is not named after a box id (a start moves it to boxes/quarantine/)")
            continue
        try:
            raw = (boxes_dir / name).read_bytes()
        except OSError as exc:
            report.add(PROBLEM, f"boxes/{name} cannot be read: {exc}")
            found[box_id] = _Checkpoint(None, None, 0)
            continue
        stored, reason = parse_checkpoint(raw, box_id)
        mark = parse_unrebuildable(raw, box_id) if stored is None else None
        if mark is not None:  # written by a start for a box it could not rebuild: judged below
            found[box_id] = _Checkpoint(None, None, mark[0])
            continue
        checkpoint = None
        if stored is not None:
            try:
                checkpoint = Checkpoint(box_id, stored.seq, load_state(stored.state))
            except Exception as exc:  # as a start judges it (persistence/checkpoints.py)
                reason = f"invalid state: {exc}"
        if checkpoint is None:
            report.add(PROBLEM, f"box {box_id}: checkpoint boxes/{name} is corrupt ({reason}); a start (or "
                                f"`check --repair`) moves it to boxes/quarantine/ and rebuilds the box from the log")
        point = named_point(raw)
        found[box_id] = _Checkpoint(checkpoint, stored.state if stored else None, point[0] if point else 0)
    valid = sum(1 for cp in found.values() if cp.checkpoint is not None)
    report.add(INFO, f"{valid} of {len(names)} box checkpoint(s) parse and validate")
    return found


def _check_temp_files(boxes_dir: Path, report: Report, running: bool) -> None:
    stray = [name for name in FileSystem().list_files(boxes_dir) if name.endswith(TMP_SUFFIX)]
    if not stray:
        return
    listed = ", ".join(f"boxes/{name}" for name in stray[:MAX_LISTED_LINES])
    if running:
        report.add(WARNING, f"temp file(s) {listed} (may be a checkpoint being written by the running server)")
    else:
        report.add(PROBLEM, f"stray temp file(s) left by a crash: {listed}; `check --repair` removes them")


def _check_documents(root: Path, report: Report) -> None:
    for file_name in DOCUMENT_FILES.values():
        path = root / file_name
        if not path.exists():
            continue
        try:
            orjson.loads(path.read_bytes())
        except orjson.JSONDecodeError:
            report.add(PROBLEM, f"{file_name} is not valid JSON (a start moves it aside and uses none)")
        except OSError as exc:
            report.add(PROBLEM, f"{file_name} cannot be read: {exc}")


def _check_log(root: Path, report: Report, running: bool) -> dict[int, dict[int, dict[str, Any]]]:
    """Events of the current history (archives since the last reset, then the live log) by box and seq."""
    fs = FileSystem()
    for _attempt in range(3):
        before = era_archives(root, fs)
        sources = [(path, path.read_bytes()) for path in before]
        try:
            log_data = (root / LOG_NAME).read_bytes()
        except FileNotFoundError:
            log_data = b""
        if era_archives(root, fs) == before:  # no rotation while reading
            break
    findings: list[tuple[str, str]] = []
    by_box: dict[int, dict[int, dict[str, Any]]] = {}
    where: dict[tuple[int, int], str] = {}
    total = 0
    for path, data in sources + [(root / LOG_NAME, log_data)]:
        is_log = path.name == LOG_NAME
        end = committed_length(data) if is_log else len(data)
        if is_log and end < len(data):
            torn = len(data) - end
            if running:
                findings.append((WARNING, f"{LOG_NAME} ends with {torn} byte(s) after its last committed line "
                                          f"(may be a write in progress)"))
            else:
                findings.append((PROBLEM, f"{LOG_NAME} has a torn tail: {torn} byte(s) after the last committed "
                                          f"line (a crash mid-write); `check --repair` cuts them off"))
        bad: list[int] = []
        number = 0
        start = 0
        while start < end:
            stop = data.find(b"\n", start, end)
            if stop < 0:
                stop = end
            number += 1
            event = parse_line(data[start:stop])
            start = stop + 1
            if event is None:
                bad.append(number)
                continue
            box, seq = event.get("boxId"), event.get("seq")
            if not is_box_id(box) or not is_int(seq):
                continue  # audit-only line (the old backend wrote those)
            here = f"{path.name} line {number}"
            if seq in by_box.setdefault(box, {}):
                findings.append((PROBLEM, f"box {box}: event seq {seq} appears twice ({where[(box, seq)]} and {here})"))
                continue
            by_box[box][seq] = event
            where[(box, seq)] = here
        total += number
        if bad:
            shown = ", ".join(str(n) for n in bad[:MAX_LISTED_LINES]) + (" ..." if len(bad) > MAX_LISTED_LINES else "")
            findings.append((PROBLEM, f"{path.name}: {len(bad)} line(s) do not parse (line {shown}); "
                                      f"they are skipped at start and kept in the file"))
    report.log_lines = total
    report.add(INFO, f"{total} log line(s) read from {LOG_NAME}" + (f" and {len(sources)} archive(s)" if sources else ""))
    for level, message in findings:
        report.add(level, message)
    return by_box


def _check_boxes(checkpoints: dict[int, _Checkpoint], events: dict[int, dict[int, dict[str, Any]]],
                 report: Report) -> None:
    box_ids = sorted(set(checkpoints) | set(events))
    report.boxes = len(box_ids)
    consistent = 0
    for box in box_ids:
        if _check_box(box, checkpoints.get(box), events.get(box, {}), report):
            consistent += 1
    if box_ids:
        report.add(INFO, f"{consistent} of {len(box_ids)} box(es) replay consistently")


def _check_box(box: int, saved: _Checkpoint | None, by_seq: dict[int, dict[str, Any]], report: Report) -> bool:
    """Exactly what a start does with the box (actors/recovery/replay.py `rebuild`), and, where the whole
    history is at hand, that it gives back the checkpoint."""
    checkpoint = saved.checkpoint if saved is not None else None
    seqs = sorted(by_seq)
    if checkpoint is not None and 1 in by_seq and saved is not None and saved.raw_state is not None:
        if any(n not in by_seq for n in range(1, checkpoint.seq + 1)):
            report.add(PROBLEM, f"box {box}: checkpoint is at seq {checkpoint.seq} but the log stops at seq "
                                f"{_contiguous(seqs, 1)}")
            return False
        try:
            replayed = replay(None, 0, (by_seq[n] for n in range(1, checkpoint.seq + 1)))
        except ReplayError as exc:
            report.add(PROBLEM, f"box {box}: replaying seq 1..{checkpoint.seq} fails: {exc}")
            return False
        differing = _differences(replayed.state, saved.raw_state)
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

def repair(root: Path) -> list[str]:
    """What a server start does, plus fresh checkpoints of every box; returns sentences of what it did."""
    store = JsonStore(root)
    try:
        recovered = open_store(store)
    except StorageLocked:
        raise locked_by_server(root, "stop it before a repair (a plain `check` works while it runs)") from None
    done: list[str] = []
    try:
        if recovered.torn_bytes:
            done.append(f"cut {recovered.torn_bytes} torn byte(s) from the end of {LOG_NAME}")
        if recovered.stray_temp_files:
            done.append(f"removed {recovered.stray_temp_files} stray temp file(s) from boxes/")
        for path in recovered.quarantined:
            done.append(f"moved an unusable checkpoint to {os.path.relpath(path, root)}")
        if recovered.bad_lines:
            done.append(f"skipped {recovered.bad_lines} unparsable log line(s) (kept in the file)")
        for name in DOCUMENT_FILES:
            path = root / DOCUMENT_FILES[name]
            existed = path.exists()
            if store.read_document(name) is None and existed and not path.exists():
                done.append(f"{DOCUMENT_FILES[name]} did not parse; moved aside next to it")
        recovery = restore_boxes(recovered)
        marks = [item for item in lagging_checkpoints(recovered, recovery) if isinstance(item[2], Unrebuildable)]
        store.write_checkpoints([(box.box_id, box.seq, box.state) for box in recovery.restored] + marks)
        done.append(f"rebuilt {len(recovery.restored)} box(es) from checkpoint and log and wrote fresh checkpoints")
        for lost in recovery.unavailable:  # nothing is written for them: their history stays as it is
            done.append(f"box {lost.box_id} cannot be rebuilt ({lost.reason}); a server keeps it unavailable "
                        f"until an admin restores a backup, rolls it back or starts it over")
    finally:
        store.close()
    return done
