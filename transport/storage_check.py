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

from actors.events import RESTORE, replay_inputs
from actors.recovery import checkpoint_problem, restore_boxes
from actors.rules import CommandError, apply_command, default_state, parse_command, state_from_checkpoint
from persistence.checkpoints import FORMAT, MAX_SEQ, TMP_SUFFIX, is_box_id, is_int, parse_box_id
from persistence.documents import DOCUMENT_FILES
from persistence.errors import StorageLocked
from persistence.json_store import RESET_DIR_RE, JsonStore
from persistence.wal import ARCHIVE_RE, LOG_NAME, committed_length, parse_line
from transport.cli import lock_holder, locked_error

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


class _ReplayError(Exception):
    pass


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
    quarantined = _files(boxes_dir / "quarantine")
    if quarantined:
        report.add(INFO, f"boxes/quarantine/ holds {len(quarantined)} file(s) set aside earlier (kept, never used)")
    return report


def _files(path: Path) -> list[str]:
    try:
        return sorted(entry.name for entry in os.scandir(path) if entry.is_file(follow_symlinks=False))
    except FileNotFoundError:
        return []


def _dirs(path: Path) -> list[str]:
    try:
        return sorted(entry.name for entry in os.scandir(path) if entry.is_dir(follow_symlinks=False))
    except FileNotFoundError:
        return []


@dataclass
class _Checkpoint:
    seq: int
    raw_state: dict[str, Any]
    state: dict[str, Any]


def _check_checkpoints(boxes_dir: Path, report: Report) -> dict[int, _Checkpoint | None]:
    """Valid checkpoints by box; None for a box whose checkpoint is corrupt."""
    found: dict[int, _Checkpoint | None] = {}
    names = [name for name in _files(boxes_dir) if name.endswith(".json")]
    for name in names:
        box_id = parse_box_id(name[: -len(".json")])
        if box_id is None:
            report.add(PROBLEM, f"boxes/{name} is not named after a box id (a start moves it to boxes/quarantine/)")
            continue
        try:
            raw = (boxes_dir / name).read_bytes()
        except OSError as exc:
            report.add(PROBLEM, f"boxes/{name} cannot be read: {exc}")
            found[box_id] = None
            continue
        reason, checkpoint = _parse_checkpoint(raw, box_id)
        if checkpoint is None:
            report.add(PROBLEM, f"box {box_id}: checkpoint boxes/{name} is corrupt ({reason}); "
                                f"`check --repair` moves it to boxes/quarantine/ and rebuilds the box from the log")
        found[box_id] = checkpoint
    valid = sum(1 for cp in found.values() if cp is not None)
    report.add(INFO, f"{valid} of {len(names)} box checkpoint(s) parse and validate")
    return found


def _parse_checkpoint(raw: bytes, box_id: int) -> tuple[str, _Checkpoint | None]:
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return "not valid JSON", None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        return f"not a format-{FORMAT} checkpoint", None
    if doc.get("boxId") != box_id or not is_int(doc.get("boxId")):
        return f"it names box {doc.get('boxId')!r}", None
    if not is_int(doc.get("seq")) or not 0 <= doc["seq"] <= MAX_SEQ or not isinstance(doc.get("state"), dict):
        return "seq or state is missing or wrong", None
    try:
        state = state_from_checkpoint(doc["state"])
    except ValueError as exc:
        return f"invalid state: {exc}", None
    return "", _Checkpoint(doc["seq"], doc["state"], state)


def _check_temp_files(boxes_dir: Path, report: Report, running: bool) -> None:
    stray = [name for name in _files(boxes_dir) if name.endswith(TMP_SUFFIX)]
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
    for _attempt in range(3):
        before = _era_archives(root)
        sources = [(path, path.read_bytes()) for path in before]
        try:
            log_data = (root / LOG_NAME).read_bytes()
        except FileNotFoundError:
            log_data = b""
        if _era_archives(root) == before:  # no rotation while reading
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


def _era_archives(root: Path) -> list[Path]:
    """Archives written since the last reset, oldest first: the only ones a start replays."""
    since = max((int(m.group(1)) for name in _dirs(root / "boxes") if (m := RESET_DIR_RE.match(name))), default=0)
    found = sorted((int(m.group(1)), name) for name in _files(root) if (m := ARCHIVE_RE.match(name)))
    return [root / name for number, name in found if number > since]


def _check_boxes(checkpoints: dict[int, _Checkpoint | None], events: dict[int, dict[int, dict[str, Any]]],
                 report: Report) -> None:
    box_ids = sorted(set(checkpoints) | set(events))
    report.boxes = len(box_ids)
    consistent = 0
    for box in box_ids:
        if _check_box(box, checkpoints.get(box), box in checkpoints, events.get(box, {}), report):
            consistent += 1
    if box_ids:
        report.add(INFO, f"{consistent} of {len(box_ids)} box(es) replay consistently")


def _check_box(box: int, checkpoint: _Checkpoint | None, had_file: bool, by_seq: dict[int, dict[str, Any]],
               report: Report) -> bool:
    seqs = sorted(by_seq)
    if 1 in by_seq:
        # The whole history is at hand: it must rebuild the checkpoint exactly.
        run = _contiguous(seqs, 1)
        state = default_state(str(by_seq[1].get("baseSessionId") or ""))
        seq = 0
        target = checkpoint.seq if checkpoint is not None else None
        if target is not None and target > run:
            report.add(PROBLEM, f"box {box}: checkpoint is at seq {target} but the log stops at seq {run}")
            return False
        try:
            for n in range(1, (target if target is not None else 0) + 1):
                state = _step(state, by_seq[n])
                seq = n
        except _ReplayError as exc:
            report.add(PROBLEM, f"box {box}: event seq {seq + 1} cannot be replayed ({exc})")
            return False
        if checkpoint is not None:
            differing = _differences(state, checkpoint.raw_state)
            if differing:
                report.add(PROBLEM, f"box {box}: replaying seq 1..{target} does not give the checkpoint's state "
                                    f"(differs in {', '.join(differing[:8])})")
                return False
            state = checkpoint.state
    elif checkpoint is not None:
        seq, state, run = checkpoint.seq, checkpoint.state, checkpoint.seq
        later = [n for n in seqs if n > seq]
        if later:
            if seq + 1 not in by_seq:
                report.add(PROBLEM, f"box {box}: the log lacks seq {seq + 1} (the checkpoint is at {seq}, "
                                    f"the log resumes at {later[0]})")
                return False
            run = _contiguous(seqs, seq + 1)
    else:
        what = "its checkpoint is corrupt" if had_file else "it has no checkpoint"
        report.add(PROBLEM, f"box {box}: {what} and the log does not hold its history from seq 1; "
                            f"it cannot be rebuilt")
        return False
    # Events after the checkpoint (or all of them, without one) must replay.
    try:
        for n in range(seq + 1, run + 1):
            state = _step(state, by_seq[n])
            seq = n
    except _ReplayError as exc:
        report.add(PROBLEM, f"box {box}: event seq {seq + 1} after the checkpoint cannot be replayed ({exc})")
        return False
    if any(n > run for n in seqs):
        following = min(n for n in seqs if n > run)
        report.add(PROBLEM, f"box {box}: the log jumps from seq {run} to seq {following}; later events are lost")
        return False
    return True


def _contiguous(seqs: list[int], first: int) -> int:
    """The last seq of the unbroken run starting at `first` (first - 1 if it is missing)."""
    present, last = set(seqs), first - 1
    while last + 1 in present:
        last += 1
    return last


def _step(state: dict[str, Any], event: dict[str, Any]) -> dict[str, Any]:
    """One event through the rules, exactly as a start replays it."""
    try:
        if event.get("action") == RESTORE:
            new_state = state_from_checkpoint(event["restoredState"])
        else:
            command = parse_command(event["cmd"])
            new_state = apply_command(state, command, *replay_inputs(event, command)).state
    except (CommandError, KeyError, TypeError, ValueError) as exc:
        raise _ReplayError(f"{type(exc).__name__}: {exc}") from None
    if new_state.get("boxVersion") != event.get("boxVersion"):
        raise _ReplayError(f"it replays to version {new_state.get('boxVersion')}, the log says {event.get('boxVersion')}")
    return new_state


def _differences(replayed: dict[str, Any], saved: dict[str, Any]) -> list[str]:
    """Top-level keys whose JSON differs (the checkpoint went through JSON, so compare through it too)."""
    left = orjson.loads(orjson.dumps(replayed))
    keys = sorted(set(left) | set(saved))
    return [key for key in keys if orjson.dumps(left.get(key), option=orjson.OPT_SORT_KEYS)
            != orjson.dumps(saved.get(key), option=orjson.OPT_SORT_KEYS)]


# -- repair ----------------------------------------------------------------------------------------

def repair(root: Path) -> list[str]:
    """What a server start does, plus fresh checkpoints of every box; returns sentences of what it did."""
    store = JsonStore(root, check_state=checkpoint_problem)
    try:
        recovered = store.open()
    except StorageLocked:
        raise locked_error(root, "stop it before a repair (a plain `check` works while it runs)") from None
    done: list[str] = []
    try:
        if recovered.torn_bytes:
            done.append(f"cut {recovered.torn_bytes} torn byte(s) from the end of {LOG_NAME}")
        if recovered.stray_temp_files:
            done.append(f"removed {recovered.stray_temp_files} stray temp file(s) from boxes/")
        for path in recovered.quarantined:
            done.append(f"moved a corrupt checkpoint to {os.path.relpath(path, root)}")
        if recovered.bad_lines:
            done.append(f"skipped {recovered.bad_lines} unparsable log line(s) (kept in the file)")
        for name in DOCUMENT_FILES:
            path = root / DOCUMENT_FILES[name]
            existed = path.exists()
            if store.read_document(name) is None and existed and not path.exists():
                done.append(f"{DOCUMENT_FILES[name]} did not parse; moved aside next to it")
        boxes = restore_boxes(recovered)
        for box in boxes:
            store.write_checkpoint(box.box_id, box.seq, box.state)
        done.append(f"rebuilt {len(boxes)} box(es) from checkpoint and log and wrote fresh checkpoints")
        wanted = set(recovered.checkpoints) | set(recovered.events) | set(recovered.unrecoverable)
        lost = sorted(wanted - {box.box_id for box in boxes})
        if recovered.unrecoverable:
            done.append(f"box(es) {', '.join(map(str, recovered.unrecoverable))} have a hole in their history "
                        f"and were rebuilt only up to it")
        if lost:
            done.append(f"box(es) {', '.join(map(str, lost))} could not be rebuilt at all")
    finally:
        store.close()
    return done
