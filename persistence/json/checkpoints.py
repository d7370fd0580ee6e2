"""Box checkpoints: `boxes/{boxId}.json`, written atomically, loaded with corrupt files set aside.

Each file holds one checkpoint in the format persistence/checkpoint_file.py defines (the same in
a backup of any storage mode).
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from persistence.checkpoint_file import encode_checkpoint, named_point, parse_checkpoint, parse_unrebuildable
from persistence.errors import StorageError
from persistence.fs import FileSystem, write_atomic
from persistence.layout import checkpoint_name, parse_checkpoint_stem
from persistence.types import (
    Checkpoint,
    SavedState,
    StateLoader,
    Unrebuildable,
)

log = logging.getLogger("belay.persistence")

TMP_SUFFIX = ".tmp"


@dataclass(frozen=True)
class LoadedCheckpoints:
    valid: dict[int, Checkpoint]
    quarantined: list[str]          # destination paths under boxes/quarantine/
    quarantined_boxes: set[int]     # box ids whose checkpoint was set aside (when the name says one)
    # Boxes with no usable state: (seq, mark) of those set aside now or marked earlier.
    unrebuildable: dict[int, tuple[int, Unrebuildable]] = field(default_factory=dict)


class CheckpointDir:
    """The `boxes/` folder: the only code that reads or writes checkpoint files."""

    def __init__(self, path: Path, fs: FileSystem) -> None:
        self.path = path
        self._fs = fs

    @property
    def quarantine_path(self) -> Path:
        return self.path / "quarantine"

    def write(self, items: Sequence[tuple[int, int, SavedState]]) -> None:
        """(box, seq, state) each to a temp file, fsync, replace; then ONE directory fsync for all
        the renames, so checkpointing 15 boxes costs 16 syncs, not 30 (they share the disk with
        the log's fdatasync)."""
        try:
            try:
                for box_id, seq, state in items:
                    write_atomic(self._fs, self.path / checkpoint_name(box_id), encode_checkpoint(box_id, seq, state),
                                 sync_dir=False)
            finally:
                if items:
                    self._fs.fsync_dir(self.path)
        except OSError as exc:
            raise StorageError(f"cannot write checkpoints in {self.path}: {exc}") from exc

    def remove_stray_temp_files(self) -> int:
        """A crash between writing a temp file and renaming it leaves the temp file behind."""
        stray = [name for name in self._fs.list_files(self.path) if name.endswith(TMP_SUFFIX)]
        for name in stray:
            self._fs.unlink(self.path / name)
        if stray:
            self._fs.fsync_dir(self.path)
        return len(stray)

    def load(self, load_state: StateLoader | None = None) -> LoadedCheckpoints:
        """Every usable checkpoint; any other box file (corrupt, misnamed, or a state `load_state`
        refuses) is moved to the quarantine, so the box is rebuilt from the log instead. A box's
        set-aside file is replaced by an Unrebuildable mark, so the box stays known (and its whole
        history is read) until a state is written for it again, whoever opened the directory."""
        loaded = LoadedCheckpoints({}, [], set())
        for name in self._fs.list_files(self.path):
            if not name.endswith(".json"):
                continue
            box_id = parse_checkpoint_stem(name[: -len(".json")])
            if box_id is None:
                loaded.quarantined.append(str(self.quarantine(name, "not named after a box id")))
                continue
            raw = self._read_bytes(name)
            checkpoint, reason = parse_checkpoint(raw, box_id)
            mark = parse_unrebuildable(raw, box_id) if checkpoint is None else None
            if mark is not None:
                loaded.unrebuildable[box_id] = mark
                continue
            if checkpoint is not None and load_state is not None:
                try:
                    checkpoint = Checkpoint(box_id, checkpoint.seq, load_state(checkpoint.state))
                except Exception as exc:  # whatever the rule refuses; the file is kept in quarantine
                    checkpoint, reason = None, f"invalid state: {exc}"
            if checkpoint is not None:
                loaded.valid[box_id] = checkpoint
                continue
            seq, version = named_point(raw) or (0, 0)
            set_aside = Unrebuildable(version, f"its checkpoint was set aside ({reason})")
            # A copy first, then the mark replaces the file: a crash at any point leaves the box a file.
            loaded.quarantined.append(str(self._copy_aside(name, raw, reason)))
            self.write([(box_id, seq, set_aside)])
            loaded.quarantined_boxes.add(box_id)
            loaded.unrebuildable[box_id] = (seq, set_aside)
        return loaded

    def _copy_aside(self, name: str, raw: bytes, reason: str) -> Path:
        self._fs.makedirs(self.quarantine_path)
        dest = self._quarantine_name(name)
        write_atomic(self._fs, dest, raw)
        log.warning("unusable checkpoint %s (%s) set aside as %s", self.path / name, reason, dest)
        return dest

    def quarantine(self, name: str, reason: str = "corrupt") -> Path:
        """Move an unusable file aside under a name never used before; never fatal, never lossy."""
        self._fs.makedirs(self.quarantine_path)
        dest = self._quarantine_name(name)
        self._fs.replace(self.path / name, dest)
        self._fs.fsync_dir(self.quarantine_path)
        self._fs.fsync_dir(self.path)
        log.warning("unusable checkpoint %s (%s) moved to %s", self.path / name, reason, dest)
        return dest

    def _quarantine_name(self, name: str) -> Path:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        return unique_path(self._fs, self.quarantine_path, f"{name}.{stamp}")

    def move_all_to(self, folder: Path) -> int:
        """Move every checkpoint into `folder` (a clean start that keeps the old files)."""
        self._fs.makedirs(folder)
        names = [name for name in self._fs.list_files(self.path) if name.endswith(".json")]
        for name in names:
            self._fs.replace(self.path / name, folder / name)
        self._fs.fsync_dir(folder)
        self._fs.fsync_dir(self.path)
        return len(names)

    def _read_bytes(self, name: str) -> bytes:
        path = self.path / name
        try:
            return self._fs.read_bytes(path)
        except OSError as exc:
            # Not corruption: a transient read error must not move a good file aside.
            raise StorageError(f"cannot read checkpoint {path}: {exc}") from exc


def unique_path(fs: FileSystem, folder: Path, name: str) -> Path:
    candidate, n = folder / name, 1
    while fs.exists(candidate):
        candidate, n = folder / f"{name}.{n}", n + 1
    return candidate
