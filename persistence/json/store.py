"""JSON-file storage: the write-ahead log, box checkpoints and the directory lock behind one object.

Plain blocking code, owned by the single persister actor (which runs it in a thread executor).
Under the storage root: `events.ndjson` (+ archives `events.NNNNNN.ndjson`), `boxes/{id}.json`,
`boxes/quarantine/`, `boxes/reset-NNNNNN/` and `belay.lock`.
"""
from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from persistence.json.box_events import close_all, open_sources, read_box_events
from persistence.json.checkpoints import (
    Checkpoint,
    CheckpointDir,
    LoadedCheckpoints,
    SavedState,
    StateLoader,
    is_box_id,
    is_int,
)
from persistence.json.documents import DOCUMENT_FILES, Documents
from persistence.errors import StorageError, StorageLocked
from persistence.fs import FileSystem
from persistence.json.lock import StorageLock
from persistence.json.wal import LOG_NAME, WriteAheadLog, iter_lines, list_archives

__all__ = ["Checkpoint", "JsonStore", "Recovered", "StorageError", "StorageLocked"]

log = logging.getLogger("belay.persistence")

RESET_DIR_RE = re.compile(r"^reset-(\d+)$")
OPEN_ATTEMPTS = 5


@dataclass(frozen=True)
class Recovered:
    # Usable checkpoints: their state is what the caller's `load_state` returned (as stored without one).
    checkpoints: dict[int, Checkpoint]
    # Per box, ascending by seq: every event of the current history after its checkpoint (from
    # seq 1 without one). Where the history has a hole the list has one too: replay decides.
    events: dict[int, list[dict[str, Any]]]
    quarantined: list[str]              # where unusable checkpoints were moved
    unrecoverable: list[int]            # boxes whose history after the checkpoint has a hole
    torn_bytes: int                     # bytes cut from the log tail
    bad_lines: int                      # unparsable complete lines skipped
    stray_temp_files: int               # *.tmp removed from boxes/
    unusable: dict[int, str] = field(default_factory=dict)  # why a box has no usable checkpoint
    # Per box, the highest (seq, boxVersion) the log or any checkpoint (used or set aside) names:
    # a box that cannot be rebuilt and starts over goes on above them, never reusing a seq.
    highest: dict[int, tuple[int, int]] = field(default_factory=dict)


RESULTS_DIR = "results"  # official result sheets, written by their own component
RESULT_FILE = re.compile(r"^(overall|route_\d{1,3})\.(xlsx|pdf)$")


@dataclass(frozen=True)
class FrozenPoint:
    """Links to the state files at one durable point; the log counts only up to `log_offset`."""

    staging: Path
    log_offset: int
    files: tuple[str, ...]  # relative to staging; the live log is `events.ndjson`


class JsonStore:
    def __init__(self, root: Path, fs: FileSystem | None = None, max_log_bytes: int = 50 * 2**20) -> None:
        self.root = Path(root)
        self._fs = fs or FileSystem()
        self.max_log_bytes = max_log_bytes
        self._lock = StorageLock(self.root, self._fs)
        self._wal = WriteAheadLog(self.root, self._fs)
        self._boxes = CheckpointDir(self.root / "boxes", self._fs)
        self._documents = Documents(self.root, self._fs)
        self._open = False
        # Rotation swaps the log for an archive; audit readers on another thread need both at once.
        self._rotation = threading.Lock()

    @property
    def log_path(self) -> Path:
        return self._wal.path

    @property
    def committed_offset(self) -> int:
        """End of the last durable line; readers never read past it."""
        return self._wal.committed_offset

    def open(self, reset_boxes: bool = False, load_state: StateLoader | None = None) -> Recovered:
        """Lock the directory, repair what a crash left, and return what to replay.

        reset_boxes=True is a clean start that loses nothing: the log becomes an archive and the
        checkpoints move to `boxes/reset-NNNNNN/`, so there is nothing to replay. A checkpoint
        whose state `load_state` refuses is set aside exactly like a corrupt file, and the box's
        earlier history is read from the archives.
        """
        if self._open:
            raise RuntimeError("JsonStore is already open")
        try:
            self._fs.makedirs(self._boxes.path)
        except OSError as exc:
            raise StorageError(f"cannot create {self._boxes.path}: {exc}") from exc
        self._lock.acquire()
        try:
            recovered = self._recover(reset_boxes, load_state)
        except BaseException:
            self._wal.close()
            self._lock.release()
            raise
        self._open = True
        return recovered

    def append(self, lines: Sequence[bytes]) -> int:
        """Make `lines` (each one JSON object ending in b"\\n") durable; returns the new offset.

        One write and one fdatasync per call. On failure the log is cut back to the last
        committed offset and StorageError is raised; nothing of the batch counts as written.
        """
        self._require_open()
        return self._wal.append(lines)

    def write_checkpoints(self, items: Sequence[tuple[int, int, SavedState]]) -> None:
        """Atomically replace `boxes/{box_id}.json` for each (box_id, seq, state); `seq` is the last
        event folded into `state` (an Unrebuildable mark: the last event the box's history names)."""
        self._require_open()
        self._boxes.write(items)

    def write_checkpoint(self, box_id: int, seq: int, state: dict[str, Any]) -> None:
        self.write_checkpoints([(box_id, seq, state)])

    def read_document(self, name: str) -> Any | None:
        """users / officials, or None when there is none yet (a corrupt one is moved aside)."""
        self._require_open()
        return self._documents.read(name)

    def write_document(self, name: str, value: Any) -> None:
        self._require_open()
        self._documents.write(name, value)

    def rotation_due(self) -> bool:
        return self.committed_offset >= self.max_log_bytes

    def rotate(self) -> Path:
        """Archive the log under a new name and start a fresh one. The caller checkpoints every
        box first, so nothing in the archive is needed for replay."""
        self._require_open()
        with self._rotation:
            archive = self.root / f"events.{self._next_number():06d}.ndjson"
            self._wal.rotate(archive)
        log.info("rotated %s to %s", self.log_path, archive)
        return archive

    def archives(self) -> list[Path]:
        """Rotated logs, oldest first."""
        return [path for _, path in self._wal.archives()]

    def freeze(self, staging: Path) -> FrozenPoint:
        """Hard-link every state file into `staging` (same file system, so it is instant) and note
        the committed end of the log. Call it from the log's thread with every box checkpointed:
        the links then hold one durable point while commands go on, and the zip is built later."""
        self._require_open()
        with self._rotation:
            offset = self.committed_offset
            files: list[str] = []
            self._fs.makedirs(staging / "boxes")
            sources = [(self.log_path, self.log_path.name)]
            sources += [(path, path.name) for path in self.archives()]
            sources += [(self._boxes.path / name, f"boxes/{name}") for name in self._fs.list_files(self._boxes.path)
                        if name.endswith(".json")]
            sources += [(self._documents.path(name), self._documents.path(name).name) for name in DOCUMENT_FILES
                        if self._fs.exists(self._documents.path(name))]
            results = self.root / RESULTS_DIR
            for folder in self._fs.list_dirs(results) if self._fs.exists(results) else []:
                self._fs.makedirs(staging / RESULTS_DIR / folder)
                sources += [(results / folder / name, f"{RESULTS_DIR}/{folder}/{name}")
                            for name in self._fs.list_files(results / folder) if RESULT_FILE.match(name)]
            for source, relative in sources:
                self._fs.link(source, staging / relative)
                files.append(relative)
        return FrozenPoint(staging, offset, tuple(files))

    def box_events(self, box_id: int) -> list[dict[str, Any]]:
        """Every committed event of one box since the last reset, ascending by seq."""
        self._require_open()
        with self._rotation:  # the files are opened together; reading them can wait
            sources = open_sources(self._fs, self.log_path, self.committed_offset, self._current_era_archives())
        return read_box_events(self._fs, sources, box_id)

    def audit_view(self) -> tuple[Path, int, list[Path]]:
        """The log, its committed end and the archives (newest first), consistent with each other."""
        with self._rotation:
            return self.log_path, self.committed_offset, list(reversed(self.archives()))

    def close(self) -> None:
        self._open = False
        try:
            self._wal.close()
        finally:
            self._lock.release()

    def _require_open(self) -> None:
        if not self._open:
            raise RuntimeError("JsonStore is not open")

    def _recover(self, reset_boxes: bool, load_state: StateLoader | None) -> Recovered:
        try:
            stray = self._boxes.remove_stray_temp_files()
            log_data, torn = self._wal.open()
            if reset_boxes:
                self._reset()
                return Recovered({}, {}, [], [], torn, 0, stray)
            loaded = self._boxes.load(load_state)
        except OSError as exc:
            raise StorageError(f"cannot recover {self.root}: {exc}") from exc
        history = _History({box: cp.seq for box, cp in loaded.valid.items()})
        history.add(iter_lines(log_data))
        # Boxes without a usable checkpoint need their history from seq 1, archives included.
        needy = set(loaded.unrebuildable)
        missing = history.incomplete(needy)
        for archive in reversed(self._current_era_archives()):
            if not missing:
                break  # older archives are read only for boxes that need earlier history
            try:
                history.add(iter_lines(self._fs.read_bytes(archive)))
            except OSError as exc:
                raise StorageError(f"cannot read {archive}: {exc}") from exc
            missing = history.incomplete(needy)
        events, holes = history.runs()
        highest = _highest(loaded, events, holes)
        unrecoverable = sorted(holes | missing)
        if unrecoverable:
            log.warning("boxes whose history after the checkpoint has a hole: %s (replay decides whether a later "
                        "restore still rebuilds them)", unrecoverable)
        unusable = {box: mark.reason for box, (_, mark) in loaded.unrebuildable.items()}
        return Recovered(loaded.valid, events, loaded.quarantined, unrecoverable, torn, history.bad_lines, stray,
                         unusable, highest)

    def _reset(self) -> None:
        """Set the log and the checkpoints aside under one new number: it also marks where the
        current history starts, so archives before it are never replayed."""
        number = self._next_number()
        # The marker folder first: a crash halfway leaves valid checkpoints and a valid log.
        self._fs.makedirs(self._boxes.path / f"reset-{number:06d}")
        self._fs.fsync_dir(self._boxes.path)
        if self._wal.committed_offset > 0:
            self._wal.rotate(self.root / f"events.{number:06d}.ndjson")
        moved = self._boxes.move_all_to(self._boxes.path / f"reset-{number:06d}")
        log.warning("reset: %d checkpoint(s) moved to %s", moved, self._boxes.path / f"reset-{number:06d}")

    def _reset_numbers(self) -> list[int]:
        return [int(m.group(1)) for name in self._fs.list_dirs(self._boxes.path) if (m := RESET_DIR_RE.match(name))]

    def _next_number(self) -> int:
        """Archives and reset folders share one sequence, so a number is never reused."""
        used = [n for n, _ in self._wal.archives()] + self._reset_numbers()
        return max(used, default=0) + 1

    def _current_era_archives(self) -> list[Path]:
        return era_archives(self.root, self._fs)


def era_archives(root: Path, fs: FileSystem) -> list[Path]:
    """Archives written after the last reset, oldest first: the only history a start replays."""
    since = max((int(m.group(1)) for name in fs.list_dirs(root / "boxes") if (m := RESET_DIR_RE.match(name))),
                default=0)
    return [path for n, path in list_archives(root, fs) if n > since]


def read_box_events_offline(root: Path, box_id: int, fs: FileSystem | None = None) -> list[dict[str, Any]]:
    """`JsonStore.box_events` without the directory's lock (beside a running server, or on a
    stopped one): a batch still being written is never read, and a rotation that falls between
    listing the files and opening them is retried."""
    fs = fs or FileSystem()
    for _ in range(OPEN_ATTEMPTS):
        archives = era_archives(root, fs)
        sources = open_sources(fs, root / LOG_NAME, None, archives)
        if era_archives(root, fs) == archives:
            return read_box_events(fs, sources, box_id)
        close_all(fs, sources)
    raise StorageError(f"the log in {root} kept rotating while it was read; try again")


def _highest(loaded: LoadedCheckpoints, events: dict[int, list[dict[str, Any]]],
             holes: set[int]) -> dict[int, tuple[int, int]]:
    """Per box, the highest (seq, boxVersion) named by its checkpoint (used or set aside) or its
    events after it. Versions only grow along a sound history, so only a broken one is searched."""
    highest: dict[int, tuple[int, int]] = {}

    def note(box: int, seq: int, version: object) -> None:
        seen_seq, seen_version = highest.get(box, (0, 0))
        highest[box] = (max(seq, seen_seq), max(version if is_int(version) else 0, seen_version))  # type: ignore[type-var]

    for box, checkpoint in loaded.valid.items():
        note(box, checkpoint.seq, checkpoint.state.get("boxVersion"))
    for box, (seq, mark) in loaded.unrebuildable.items():
        note(box, seq, mark.box_version)
    for box, run in events.items():
        if box in holes or box in loaded.unrebuildable:
            for event in run:
                note(box, event["seq"], event.get("boxVersion"))
        else:
            note(box, run[-1]["seq"], run[-1].get("boxVersion"))
    return highest


class _History:
    """Events per box from the log and, when needed, older archives, keyed by seq."""

    def __init__(self, checkpoint_seqs: dict[int, int]) -> None:
        self._after = checkpoint_seqs
        self._by_box: dict[int, dict[int, dict[str, Any]]] = {}
        self.bad_lines = 0

    def add(self, lines: Iterable[dict[str, Any] | None]) -> None:
        for event in lines:
            if event is None:
                self.bad_lines += 1
                continue
            box, seq = event.get("boxId"), event.get("seq")
            # Lines without a per-box seq are audit-only (e.g. written by the old backend).
            if not is_box_id(box) or not is_int(seq) or seq <= self._after.get(box, 0):
                continue
            # An earlier copy of a seq wins: the log is read before older archives, and within
            # one file a repeated seq can only be a stale line.
            self._by_box.setdefault(box, {}).setdefault(seq, event)

    def incomplete(self, also: Iterable[int]) -> set[int]:
        """Boxes (with events, or listed in `also`) whose first needed seq is not known yet."""
        boxes = set(self._by_box) | set(also)
        return {box for box in boxes if self._after.get(box, 0) + 1 not in self._by_box.get(box, {})}

    def runs(self) -> tuple[dict[int, list[dict[str, Any]]], set[int]]:
        """The events per box in seq order, and the boxes whose events do not run without a hole
        from the first needed seq. Events past a hole are kept: a later self-contained event
        (a restore) may still rebuild the box."""
        runs: dict[int, list[dict[str, Any]]] = {}
        holes: set[int] = set()
        for box, by_seq in self._by_box.items():
            seqs = sorted(by_seq)
            first = self._after.get(box, 0) + 1
            if seqs[0] != first or seqs[-1] - first + 1 != len(seqs):
                holes.add(box)
            runs[box] = [by_seq[seq] for seq in seqs]
        return runs, holes
