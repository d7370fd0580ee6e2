"""JSON-file storage: the write-ahead log, box checkpoints and the directory lock behind one object.

Plain blocking code, owned by the single persister actor (JsonStorage runs it on its threads).
Under the storage root: `events.ndjson` (+ archives `events.NNNNNN.ndjson`), `boxes/{id}.json`,
`boxes/quarantine/`, `boxes/reset-NNNNNN/`, the documents, `results/`, `.backup-staging/` and
`belay.lock`.
"""
from __future__ import annotations

import logging
import os
import re
import shutil
import threading
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from persistence.errors import StorageError
from persistence.fs import FileSystem
from persistence.json.box_events import close_all, open_sources, read_box_events
from persistence.json.checkpoints import CheckpointDir
from persistence.json.documents import Documents
from persistence.json.lock import StorageLock
from persistence.json.recovery import History, highest_points
from persistence.json.wal import WriteAheadLog, iter_lines, list_archives
from persistence.layout import BOXES_DIR, DOCUMENT_FILES, LOG_NAME, RESULT_FILE, RESULTS_DIR
from persistence.types import FrozenPoint, Recovered, SavedState, StateLoader

log = logging.getLogger("belay.persistence")

RESET_DIR_RE = re.compile(r"^reset-(\d+)$")
OPEN_ATTEMPTS = 5
STAGING_DIR = ".backup-staging"  # durable points (hard links) while their backup is written


class JsonStore:
    def __init__(self, root: Path, fs: FileSystem | None = None, max_log_bytes: int = 50 * 2**20) -> None:
        self.root = Path(root)
        self._fs = fs or FileSystem()
        self.max_log_bytes = max_log_bytes
        self._lock = StorageLock(self.root, self._fs)
        self._wal = WriteAheadLog(self.root, self._fs)
        self._boxes = CheckpointDir(self.root / BOXES_DIR, self._fs)
        self._documents = Documents(self.root, self._fs)
        self._open = False
        # Rotation swaps the log for an archive; audit readers on another thread need both at once.
        self._rotation = threading.Lock()
        # The seq of each box's checkpoint on disk: a checkpoint never moves backwards.
        self._checkpoint_seqs: dict[int, int] = {}

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
            shutil.rmtree(self.root / STAGING_DIR, ignore_errors=True)  # links of a backup a crash cut short
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
        event folded into `state` (an Unrebuildable mark: the last event the box's history names).
        An item older than the box's checkpoint on disk is skipped: a checkpoint never moves back."""
        self._require_open()
        newer = [item for item in items if item[1] >= self._checkpoint_seqs.get(item[0], -1)]
        self._boxes.write(newer)
        for box_id, seq, _ in newer:
            self._checkpoint_seqs[box_id] = seq

    def write_checkpoint(self, box_id: int, seq: int, state: dict[str, Any]) -> None:
        self.write_checkpoints([(box_id, seq, state)])

    def read_document(self, name: str) -> Any | None:
        """users / officials / revocations, or None when there is none yet (a corrupt one is moved aside)."""
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

    def freeze(self) -> FrozenPoint:
        """Hard-link every state file into a new folder under `.backup-staging/` (same file system,
        so it is instant) and note the committed end of the log. Call it from the log's thread with
        every box checkpointed: the links then hold one durable point, laid out in full, while
        commands go on (files are only ever replaced by a rename, never rewritten)."""
        self._require_open()
        staging = self.root / STAGING_DIR / uuid.uuid4().hex
        try:
            return self._link_all(staging)
        except BaseException:
            self.release(FrozenPoint(staging, ()))  # no half-linked point stays behind
            raise

    def _link_all(self, staging: Path) -> FrozenPoint:
        boxes, results = self._boxes.path, self.root / RESULTS_DIR
        with self._rotation:
            entries: list[tuple[str, int | None]] = []
            self._fs.makedirs(staging / BOXES_DIR)
            sources: list[tuple[Path, str, int | None]] = [(self.log_path, LOG_NAME, self.committed_offset)]
            sources += [(path, path.name, None) for path in self.archives()]
            sources += [(boxes / name, f"{BOXES_DIR}/{name}", None) for name in self._fs.list_files(boxes)
                        if name.endswith(".json")]
            sources += [(self.root / file, file, None) for file in DOCUMENT_FILES.values()
                        if self._fs.exists(self.root / file)]
            for folder in self._fs.list_dirs(results) if self._fs.exists(results) else []:
                self._fs.makedirs(staging / RESULTS_DIR / folder)
                sources += [(results / folder / name, f"{RESULTS_DIR}/{folder}/{name}", None)
                            for name in self._fs.list_files(results / folder) if RESULT_FILE.match(name)]
            for source, relative, size in sources:
                self._fs.link(source, staging / relative)
                entries.append((relative, size))
        return FrozenPoint(staging, tuple(entries))

    def release(self, point: FrozenPoint) -> None:
        shutil.rmtree(point.folder, ignore_errors=True)
        try:
            os.rmdir(self.root / STAGING_DIR)  # only if no other backup's links are in it
        except OSError:
            pass

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
        repairs: list[str] = []
        try:
            stray = self._boxes.remove_stray_temp_files()
            log_data, torn = self._wal.open()
            if torn:
                repairs.append(f"cut {torn} torn byte(s) from the end of {LOG_NAME}")
            if stray:
                repairs.append(f"removed {stray} stray temp file(s) from {BOXES_DIR}/")
            if reset_boxes:
                self._reset()
                self._checkpoint_seqs = {}
                return Recovered({}, {}, [], [], repairs=tuple(repairs))
            loaded = self._boxes.load(load_state)
        except OSError as exc:
            raise StorageError(f"cannot recover {self.root}: {exc}") from exc
        self._checkpoint_seqs = {box: cp.seq for box, cp in loaded.valid.items()}
        self._checkpoint_seqs.update({box: seq for box, (seq, _) in loaded.unrebuildable.items()})
        history = History({box: cp.seq for box, cp in loaded.valid.items()})
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
        highest = highest_points(loaded, events, holes)
        unrecoverable = sorted(holes | missing)
        if unrecoverable:
            log.warning("boxes whose history after the checkpoint has a hole: %s (replay decides whether a later "
                        "restore still rebuilds them)", unrecoverable)
        unusable = {box: mark.reason for box, (_, mark) in loaded.unrebuildable.items()}
        quarantined = [os.path.relpath(path, self.root) for path in loaded.quarantined]
        return Recovered(loaded.valid, events, quarantined, unrecoverable, history.bad_lines, tuple(repairs),
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
    since = max((int(m.group(1)) for name in fs.list_dirs(root / BOXES_DIR) if (m := RESET_DIR_RE.match(name))),
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
