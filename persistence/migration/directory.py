"""A JSON storage directory read whole into a Competition, and a Competition written out as one.

Eras come from the directory's own marks: a reset moves the checkpoints to `boxes/reset-N/` and
the log to archive N, so archives up to N are the eras before it. Written out, each earlier era
becomes archive `events.{era}.ndjson` with its `boxes/reset-{era}/` folder, and the current era
archives numbered above them (rotated at a server's default size) and the live log: a server
started on the directory replays exactly the current era.

Writing goes into a new folder beside the target; `place` renames it into place once verified.
"""
from __future__ import annotations

import asyncio
import os
import shutil
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

import orjson

from persistence.checkpoint_file import named_point, parse_checkpoint, parse_unrebuildable
from persistence.errors import StorageError, StorageLocked, StorageNotEmpty
from persistence.fs import FileSystem
from persistence.json.lock import LOCK_NAME, StorageLock, lock_holder
from persistence.json.storage import DEFAULT_MAX_LOG_BYTES
from persistence.json.store import RESET_DIR_RE
from persistence.json.wal import committed_length
from persistence.layout import ARCHIVE_RE, BOXES_DIR, DOCUMENT_FILES, LOG_NAME, parse_checkpoint_stem
from persistence.migration.competition import Competition, Digest, SetAside, StoredBox, digest_of
from persistence.postgres.recovery import checkpoint_file_bytes
from persistence.postgres.rows import event_row, split_lines
from persistence.types import DOCUMENTS

MARKER_NAME: Final = "migrated-from.json"  # in a directory a migration made: where from, when, the figures
MIGRATED_TO_NAME: Final = "migrated-to.json"  # in a source directory: where it went, when
QUARANTINE: Final = "quarantine"
Tick = Callable[[int], None]  # bytes read or written so far


class DirectorySide:
    """A JSON storage directory as either side of a migration. As the source it is locked for the
    whole migration (no server starts on it meanwhile); as the target it is written into a new
    folder beside it, renamed into place by `commit` only, if it is still empty and free then."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.location = f"directory {root}"
        self._lock: StorageLock | None = None
        self._staged: Path | None = None
        self._read: Competition | None = None

    async def open_source(self, lock: bool) -> None:
        if not (self.root / LOG_NAME).exists() and not (self.root / BOXES_DIR).is_dir():
            raise StorageError(f"{self.root} is not a Belay storage directory (no {LOG_NAME}, no {BOXES_DIR}/)")
        await asyncio.to_thread(self._lock_or_refuse, lock)

    async def open_target(self, lock: bool) -> None:
        """Only asked, never locked, so a failed migration leaves it exactly as it was: `place`
        asks again before the rename."""
        check_target(self.root)
        if self.root.is_dir():
            await asyncio.to_thread(self._lock_or_refuse, False)

    def _lock_or_refuse(self, lock: bool) -> None:
        if not lock:  # a dry run writes nothing, not even a lock file: it only asks
            found = lock_holder(self.root)
            if found is not None:
                raise StorageLocked(f"{self.root} is in use by a Belay server ({found})", found, str(self.root))
            return
        self._lock = StorageLock(self.root, FileSystem())
        self._lock.acquire()

    async def size(self) -> int:
        return sum(path.stat().st_size for path in self.root.glob("events*.ndjson"))

    async def read(self, tick: Tick | None = None) -> Competition:
        self._read = await asyncio.to_thread(read_directory, self.root, tick)
        return self._read

    async def write(self, competition: Competition, tick: Tick | None = None) -> dict[str, float]:
        started = time.monotonic()
        self._staged = await asyncio.to_thread(write_directory, competition, self.root, tick)
        return {"writing": time.monotonic() - started}

    async def digest(self) -> Digest:
        """A source's, of what `read` found in its files; a target's, of the staged copy read back
        from the disk as a later start would read it."""
        staged, read = self._staged, self._read
        if staged is not None:
            return await asyncio.to_thread(lambda: digest_of(read_directory(staged)))
        assert read is not None, "read the source first"
        return await asyncio.to_thread(digest_of, read)

    async def commit(self, marker: dict[str, Any]) -> None:
        assert self._staged is not None
        await asyncio.to_thread(place, self._staged, self.root, marker)
        self._staged = None

    async def record(self, marker: dict[str, Any]) -> None:
        """A source directory keeps a note of where it went (migrated-to.json)."""
        try:
            await asyncio.to_thread(_write, self.root / MIGRATED_TO_NAME,
                                    orjson.dumps(marker, option=orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE))
        except OSError as exc:
            raise StorageError(f"cannot write {self.root / MIGRATED_TO_NAME}: {exc}") from exc

    async def close(self) -> None:
        if self._staged is not None:
            await asyncio.to_thread(discard, self._staged)
            self._staged = None
        if self._lock is not None:
            self._lock.release()
            self._lock = None


def read_directory(root: Path, tick: Tick | None = None) -> Competition:
    """Everything the directory holds that a server would use or keep, in commit order."""
    names = os.listdir(root)
    resets = sorted(int(m.group(1)) for name in _dirs(root / BOXES_DIR) if (m := RESET_DIR_RE.match(name)))
    archives = sorted((int(m.group(1)), name) for name in names if (m := ARCHIVE_RE.match(name)))
    competition = Competition(era=len(resets) + 1)
    done = 0
    for number, name in [*archives, (None, LOG_NAME)]:
        path = root / name
        if not path.exists():
            continue
        era = competition.era if number is None else 1 + sum(1 for r in resets if r < number)
        data = path.read_bytes()
        end = committed_length(data)
        if end < len(data):
            competition.left_behind.append(f"{len(data) - end} torn byte(s) at the end of {name}")
        competition.rows += [event_row(line, era) for line in split_lines(data[:end])]
        done += len(data)
        if tick is not None:
            tick(done)
    _read_checkpoints(root / BOXES_DIR, competition, resets)
    for document, file_name in DOCUMENT_FILES.items():
        if (root / file_name).exists():
            try:
                competition.documents[document] = orjson.loads((root / file_name).read_bytes())
            except orjson.JSONDecodeError:
                raise StorageError(f"{root / file_name} does not parse; `run.py check --repair` sets it "
                                   f"aside") from None
    return competition


def _read_checkpoints(boxes: Path, competition: Competition, resets: list[int]) -> None:
    if not boxes.is_dir():
        return
    for name in sorted(os.listdir(boxes)):
        box_id = parse_checkpoint_stem(name[:-len(".json")]) if name.endswith(".json") else None
        if box_id is not None:
            raw = (boxes / name).read_bytes()
            competition.checkpoints[box_id] = _stored_box(box_id, raw, competition)
        elif not (boxes / name).is_dir():
            competition.left_behind.append(f"{BOXES_DIR}/{name} (not a box checkpoint)")
    for number in resets:
        era = 1 + sum(1 for r in resets if r < number)
        folder = boxes / f"reset-{number:06d}"
        for name in sorted(os.listdir(folder)):
            box_id = parse_checkpoint_stem(name[:-len(".json")]) if name.endswith(".json") else None
            if box_id is None:
                competition.left_behind.append(f"{BOXES_DIR}/{folder.name}/{name} (not a box checkpoint)")
                continue
            raw = (folder / name).read_bytes()
            competition.set_aside.append(SetAside(era, box_id, (named_point(raw) or (0, 0))[0], "reset", raw))
    if (boxes / QUARANTINE).is_dir():
        for name in sorted(os.listdir(boxes / QUARANTINE)):
            box_id = parse_checkpoint_stem(name.split(".", 1)[0])
            if box_id is None:
                competition.left_behind.append(f"{BOXES_DIR}/{QUARANTINE}/{name} (not named after a box)")
                continue
            raw = (boxes / QUARANTINE / name).read_bytes()
            competition.set_aside.append(SetAside(competition.era, box_id, (named_point(raw) or (0, 0))[0],
                                                  f"quarantined as {name}", raw))


def _stored_box(box_id: int, raw: bytes, competition: Competition) -> StoredBox:
    """As the database keeps it: a state, a mark, or (unusable as it is) a mark and the file set aside,
    which is what opening the directory would do with it."""
    checkpoint, reason = parse_checkpoint(raw, box_id)
    if checkpoint is not None:
        version = checkpoint.state.get("boxVersion")
        return StoredBox(box_id, checkpoint.seq, version if isinstance(version, int) else 0,
                         orjson.dumps(checkpoint.state).decode(), None)
    mark = parse_unrebuildable(raw, box_id)
    if mark is not None:
        return StoredBox(box_id, mark[0], mark[1].box_version, None, mark[1].reason)
    seq, version = named_point(raw) or (0, 0)
    competition.set_aside.append(SetAside(competition.era, box_id, seq, reason, raw))
    return StoredBox(box_id, seq, version, None, f"its checkpoint was set aside ({reason})")


def _dirs(path: Path) -> list[str]:
    return [entry.name for entry in os.scandir(path) if entry.is_dir()] if path.is_dir() else []


# -- writing -------------------------------------------------------------------------------------------

def check_target(target: Path) -> None:
    """A new directory, or an empty one: a migration never mixes into existing data."""
    if target.exists() and not target.is_dir():
        raise StorageError(f"{target} exists and is not a directory")
    if target.is_dir() and any(name != LOCK_NAME for name in os.listdir(target)):
        raise StorageNotEmpty(f"{target} is not empty; migrate only into a new or empty directory (nothing was "
                              f"changed)")
    if not target.resolve().parent.is_dir():
        raise StorageError(f"{target.parent} does not exist")


def write_directory(competition: Competition, target: Path, tick: Tick | None = None) -> Path:
    """The competition as a storage directory in a new folder beside `target`; returns the folder."""
    folder = target.resolve().parent / f".{target.name}.migrating-{uuid.uuid4().hex[:8]}"
    (folder / BOXES_DIR).mkdir(parents=True)
    by_era: dict[int, list[bytes]] = {}
    for row in competition.rows:
        by_era.setdefault(row[0], []).append(row[6])
    done = 0
    for era in range(1, competition.era):
        if by_era.get(era):
            done += _write(folder / f"events.{era:06d}.ndjson", b"".join(by_era[era]))
        (folder / BOXES_DIR / f"reset-{era:06d}").mkdir()
        if tick is not None:
            tick(done)
    *parts, live = _rotated(by_era.get(competition.era, []))
    for number, part in enumerate(parts, start=competition.era):  # above every earlier era's number
        done += _write(folder / f"events.{number:06d}.ndjson", part)
    done += _write(folder / LOG_NAME, live)
    for box in competition.checkpoints.values():
        _write(folder / BOXES_DIR / f"{box.box_id}.json", checkpoint_file_bytes(box))
    for index, item in enumerate(competition.set_aside):
        if item.reason == "reset" and item.era < competition.era:
            _write(folder / BOXES_DIR / f"reset-{item.era:06d}" / f"{item.box_id}.json", item.content)
        else:
            (folder / BOXES_DIR / QUARANTINE).mkdir(exist_ok=True)
            _write(folder / BOXES_DIR / QUARANTINE / f"{item.box_id}.json.migrated-{index}", item.content)
    for name in DOCUMENTS:
        if name in competition.documents:
            _write(folder / DOCUMENT_FILES[name],
                   orjson.dumps(competition.documents[name], option=orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE))
    if tick is not None:
        tick(done)
    return folder


def _rotated(lines: list[bytes]) -> list[bytes]:
    """The current era as a server leaves it: archives of about DEFAULT_MAX_LOG_BYTES, then the live log."""
    parts, current, size = [], [], 0
    for line in lines:
        current.append(line)
        size += len(line)
        if size >= DEFAULT_MAX_LOG_BYTES:
            parts.append(b"".join(current))
            current, size = [], 0
    return [*parts, b"".join(current)]


def _write(path: Path, data: bytes) -> int:
    with open(path, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    return len(data)


def place(folder: Path, target: Path, marker: dict[str, object]) -> None:
    """The verified folder becomes `target`: the marker first, everything synced, then one rename
    (an empty target directory is replaced; its lock file was the only thing in it)."""
    _write(folder / MARKER_NAME, orjson.dumps(marker, option=orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE))
    for sub in (folder / BOXES_DIR, folder):
        _fsync_dir(sub)
    if target.exists():  # still empty and free, or a server that started on it meanwhile keeps it
        check_target(target)
        found = lock_holder(target)
        if found is not None:
            raise StorageLocked(f"{target} is in use by a Belay server ({found})", found, str(target))
        shutil.rmtree(target)
    os.replace(folder, target)
    _fsync_dir(target.resolve().parent)


def discard(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
