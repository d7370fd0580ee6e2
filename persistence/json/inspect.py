"""A read-only look at a JSON storage directory, for `run.py check`: every box file judged as a start
judges it, stray temp files, documents that do not parse, and every log line (bad ones by line
number, a torn tail, a (box, seq) written twice). It never writes, so it works beside a running
server; what a running server may be writing right now is a warning, not a problem.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import orjson

from persistence.checkpoint_file import named_point, parse_checkpoint, parse_unrebuildable
from persistence.fs import FileSystem
from persistence.json.checkpoints import TMP_SUFFIX
from persistence.json.lock import lock_holder
from persistence.json.store import era_archives
from persistence.json.wal import committed_length
from persistence.layout import BOXES_DIR, DOCUMENT_FILES, LOG_NAME, parse_checkpoint_stem
from persistence.lines import parse_line
from persistence.types import (
    INFO,
    PROBLEM,
    WARNING,
    Checkpoint,
    Finding,
    Inspection,
    StateLoader,
    StoredCheckpoint,
    is_box_id,
    is_int,
)

MAX_LISTED_LINES = 20
READ_ATTEMPTS = 3


def inspect(root: Path, load_state: StateLoader) -> Inspection:
    holder = lock_holder(root)
    running = holder is not None
    findings: list[Finding] = []
    boxes_dir = root / BOXES_DIR
    # Checkpoints before the log: a checkpoint is only written after its events are in the log.
    checkpoints = _checkpoints(boxes_dir, load_state, findings)
    _temp_files(boxes_dir, running, findings)
    _documents(root, findings)
    events, lines = _log(root, running, findings)
    quarantined = _files(boxes_dir / "quarantine")
    if quarantined:
        findings.append((INFO, (f"{BOXES_DIR}/quarantine/ holds {len(quarantined)} file(s) set aside earlier "
                                f"(kept, never used)")))
    return Inspection(holder, findings, checkpoints, events, lines)


def _files(path: Path) -> list[str]:
    try:
        return sorted(entry.name for entry in os.scandir(path) if entry.is_file(follow_symlinks=False))
    except FileNotFoundError:
        return []


def _checkpoints(boxes_dir: Path, load_state: StateLoader, findings: list[Finding]) -> dict[int, StoredCheckpoint]:
    """Every box file by box, judged by the same rules as a start (the file's parse, then `load_state`)."""
    found: dict[int, StoredCheckpoint] = {}
    names = [name for name in _files(boxes_dir) if name.endswith(".json")]
    for name in names:
        box_id = parse_checkpoint_stem(name[: -len(".json")])
        if box_id is None:
            findings.append((PROBLEM, (f"{BOXES_DIR}/{name} is not named after a box id (a start moves it to "
                                       f"{BOXES_DIR}/quarantine/)")))
            continue
        try:
            raw = (boxes_dir / name).read_bytes()
        except OSError as exc:
            findings.append((PROBLEM, f"{BOXES_DIR}/{name} cannot be read: {exc}"))
            found[box_id] = StoredCheckpoint(None, None, 0)
            continue
        stored, reason = parse_checkpoint(raw, box_id)
        mark = parse_unrebuildable(raw, box_id) if stored is None else None
        if mark is not None:  # written by a start for a box it could not rebuild: judged by the replay
            found[box_id] = StoredCheckpoint(None, None, mark[0])
            continue
        checkpoint = None
        if stored is not None:
            try:
                checkpoint = Checkpoint(box_id, stored.seq, load_state(stored.state))
            except Exception as exc:  # as a start judges it (persistence/json/checkpoints.py)
                reason = f"invalid state: {exc}"
        if checkpoint is None:
            findings.append((PROBLEM, (f"box {box_id}: checkpoint {BOXES_DIR}/{name} is corrupt ({reason}); a start "
                                       f"(or `check --repair`) moves it to {BOXES_DIR}/quarantine/ and rebuilds the "
                                       f"box from the log")))
        point = named_point(raw)
        found[box_id] = StoredCheckpoint(checkpoint, stored.state if stored else None, point[0] if point else 0)
    valid = sum(1 for cp in found.values() if cp.checkpoint is not None)
    findings.append((INFO, f"{valid} of {len(names)} box checkpoint(s) parse and validate"))
    return found


def _temp_files(boxes_dir: Path, running: bool, findings: list[Finding]) -> None:
    stray = [name for name in _files(boxes_dir) if name.endswith(TMP_SUFFIX)]
    if not stray:
        return
    listed = ", ".join(f"{BOXES_DIR}/{name}" for name in stray[:MAX_LISTED_LINES])
    if running:
        findings.append((WARNING, f"temp file(s) {listed} (may be a checkpoint being written by the running server)"))
    else:
        findings.append((PROBLEM, f"stray temp file(s) left by a crash: {listed}; `check --repair` removes them"))


def _documents(root: Path, findings: list[Finding]) -> None:
    for file_name in DOCUMENT_FILES.values():
        path = root / file_name
        if not path.exists():
            continue
        try:
            orjson.loads(path.read_bytes())
        except orjson.JSONDecodeError:
            findings.append((PROBLEM, f"{file_name} is not valid JSON (a start moves it aside and uses none)"))
        except OSError as exc:
            findings.append((PROBLEM, f"{file_name} cannot be read: {exc}"))


def _read_current_era(root: Path) -> tuple[list[tuple[Path, bytes]], bytes]:
    """The archives since the last reset and the live log, read with no rotation in between."""
    fs = FileSystem()
    archives: list[tuple[Path, bytes]] = []
    log_data = b""
    for _attempt in range(READ_ATTEMPTS):
        before = era_archives(root, fs)
        archives = [(path, path.read_bytes()) for path in before]
        try:
            log_data = (root / LOG_NAME).read_bytes()
        except FileNotFoundError:
            log_data = b""
        if era_archives(root, fs) == before:
            break
    return archives, log_data


def _log(root: Path, running: bool, findings: list[Finding]) -> tuple[dict[int, dict[int, dict[str, Any]]], int]:
    """Events of the current history (archives since the last reset, then the live log) by box and seq."""
    archives, log_data = _read_current_era(root)
    found: list[Finding] = []
    by_box: dict[int, dict[int, dict[str, Any]]] = {}
    where: dict[tuple[int, int], str] = {}
    total = 0
    for path, data in [*archives, (root / LOG_NAME, log_data)]:
        is_log = path.name == LOG_NAME
        end = committed_length(data) if is_log else len(data)
        if is_log and end < len(data):
            torn = len(data) - end
            if running:
                found.append((WARNING, (f"{LOG_NAME} ends with {torn} byte(s) after its last committed line "
                                        f"(may be a write in progress)")))
            else:
                found.append((PROBLEM, (f"{LOG_NAME} has a torn tail: {torn} byte(s) after the last committed "
                                        f"line (a crash mid-write); `check --repair` cuts them off")))
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
                found.append((PROBLEM, f"box {box}: event seq {seq} appears twice ({where[(box, seq)]} and {here})"))
                continue
            by_box[box][seq] = event
            where[(box, seq)] = here
        total += number
        if bad:
            shown = ", ".join(str(n) for n in bad[:MAX_LISTED_LINES]) + (" ..." if len(bad) > MAX_LISTED_LINES else "")
            found.append((PROBLEM, (f"{path.name}: {len(bad)} line(s) do not parse (line {shown}); "
                                    f"they are skipped at start and kept in the file")))
    findings.append((INFO, f"{total} log line(s) read from {LOG_NAME}"
                           + (f" and {len(archives)} archive(s)" if archives else "")))
    findings.extend(found)
    return by_box, total
