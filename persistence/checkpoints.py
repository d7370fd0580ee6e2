"""Box checkpoints: `boxes/{boxId}.json`, written atomically, loaded with corrupt files set aside.

A checkpoint is `{"format":1,"boxId":int,"seq":int,"savedAt":iso8601,"state":{...}}`, where `seq`
is the last event of that box already folded into `state`.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import orjson

from persistence.errors import StorageError
from persistence.fs import FileSystem, write_atomic

log = logging.getLogger("belay.persistence")

FORMAT = 1
MAX_BOX_ID = 9999
# The box's next event gets seq + 1, and orjson writes no int past 64 bits: a hand-edited seq
# beyond JavaScript's safe integers would leave the box unable to log anything.
MAX_SEQ = 2**53 - 1

# Why a checkpoint's state is unusable, or None: the rules judge the state, this module only the file.
StateCheck = Callable[[dict[str, Any]], str | None]
TMP_SUFFIX = ".tmp"


@dataclass(frozen=True)
class Checkpoint:
    box_id: int
    seq: int
    state: dict[str, Any]


@dataclass(frozen=True)
class LoadedCheckpoints:
    valid: dict[int, Checkpoint]
    quarantined: list[str]          # destination paths under boxes/quarantine/
    quarantined_boxes: set[int]     # box ids whose checkpoint was set aside (when the name says one)


class CheckpointDir:
    """The `boxes/` folder: the only code that reads or writes checkpoint files."""

    def __init__(self, path: Path, fs: FileSystem, check_state: StateCheck | None = None) -> None:
        self.path = path
        self._fs = fs
        self._check_state = check_state

    @property
    def quarantine_path(self) -> Path:
        return self.path / "quarantine"

    def write(self, items: Sequence[tuple[int, int, dict[str, Any]]]) -> None:
        """(box, seq, state) each to a temp file, fsync, replace; then ONE directory fsync for all
        the renames, so checkpointing 15 boxes costs 16 syncs, not 30 (they share the disk with
        the log's fdatasync)."""
        try:
            try:
                for box_id, seq, state in items:
                    write_atomic(self._fs, self.path / f"{box_id}.json", _encode(box_id, seq, state), sync_dir=False)
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

    def load(self) -> LoadedCheckpoints:
        valid: dict[int, Checkpoint] = {}
        quarantined: list[str] = []
        quarantined_boxes: set[int] = set()
        for name in self._fs.list_files(self.path):
            if not name.endswith(".json"):
                continue
            box_id = parse_box_id(name[: -len(".json")])
            checkpoint = self._read(name, box_id) if box_id is not None else None
            if checkpoint is not None:
                valid[checkpoint.box_id] = checkpoint
                continue
            quarantined.append(str(self.quarantine(name)))
            if box_id is not None:
                quarantined_boxes.add(box_id)
        return LoadedCheckpoints(valid, quarantined, quarantined_boxes)

    def quarantine(self, name: str) -> Path:
        """Move a corrupt file aside under a name never used before; never fatal, never lossy."""
        self._fs.makedirs(self.quarantine_path)
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        dest = unique_path(self._fs, self.quarantine_path, f"{name}.{stamp}")
        self._fs.replace(self.path / name, dest)
        self._fs.fsync_dir(self.quarantine_path)
        self._fs.fsync_dir(self.path)
        log.warning("corrupt checkpoint %s moved to %s", self.path / name, dest)
        return dest

    def move_all_to(self, folder: Path) -> int:
        """Move every checkpoint into `folder` (a clean start that keeps the old files)."""
        self._fs.makedirs(folder)
        names = [name for name in self._fs.list_files(self.path) if name.endswith(".json")]
        for name in names:
            self._fs.replace(self.path / name, folder / name)
        self._fs.fsync_dir(folder)
        self._fs.fsync_dir(self.path)
        return len(names)

    def _read(self, name: str, box_id: int) -> Checkpoint | None:
        path = self.path / name
        try:
            raw = self._fs.read_bytes(path)
        except OSError as exc:
            # Not corruption: a transient read error must not move a good file aside.
            raise StorageError(f"cannot read checkpoint {path}: {exc}") from exc
        try:
            doc = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return None
        if not (
            isinstance(doc, dict)
            and doc.get("format") == FORMAT
            and doc.get("boxId") == box_id
            and is_int(doc.get("boxId"))
            and is_int(doc.get("seq"))
            and 0 <= doc["seq"] <= MAX_SEQ
            and isinstance(doc.get("state"), dict)
        ):
            return None
        problem = self._check_state(doc["state"]) if self._check_state is not None else None
        if problem is not None:  # a hand-edited or damaged state counts as a corrupt file
            log.warning("checkpoint %s holds a state no command could have produced: %s", path, problem)
            return None
        return Checkpoint(box_id, doc["seq"], doc["state"])


def _encode(box_id: int, seq: int, state: dict[str, Any]) -> bytes:
    if not is_box_id(box_id):
        raise ValueError(f"box id must be an int 0..{MAX_BOX_ID}, got {box_id!r}")
    doc = {"format": FORMAT, "boxId": box_id, "seq": seq, "savedAt": datetime.now(timezone.utc).isoformat(),
           "state": state}
    return orjson.dumps(doc, option=orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE)


def is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_box_id(value: object) -> bool:
    return is_int(value) and 0 <= value <= MAX_BOX_ID  # type: ignore[operator]


def parse_box_id(stem: str) -> int | None:
    """Only the canonical spelling counts, so "7" and "007" can never both claim box 7."""
    if not stem.isascii() or not stem.isdigit() or str(int(stem)) != stem:
        return None
    box_id = int(stem)
    return box_id if box_id <= MAX_BOX_ID else None


def unique_path(fs: FileSystem, folder: Path, name: str) -> Path:
    candidate, n = folder / name, 1
    while fs.exists(candidate):
        candidate, n = folder / f"{name}.{n}", n + 1
    return candidate
