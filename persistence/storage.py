"""The storage protocol: what the actors and the organiser commands ask of a backend.

It speaks of events, checkpoints, documents and durable points, never of files, so a database can
implement it. `persistence/factory.py` picks the backend by STORAGE_MODE; nothing else names one.
Every backend passes the contract suite in tests/persistence/contract/.

Two faces: a `Storage` is the one writer of a competition (it holds a lock for as long as it is
open); a `StorageReader` only reads, takes no lock and changes nothing, so it works beside a
running server.
"""
from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

from persistence.backup import BackupContents, Progress
from persistence.errors import StorageError, StorageLocked
from persistence.types import (
    Checkpoint,
    DurablePoint,
    FrozenPoint,
    Holder,
    Inspection,
    Recovered,
    SavedState,
    StateLoader,
    Unrebuildable,
)

__all__ = ["Checkpoint", "DurablePoint", "FrozenPoint", "Recovered", "SavedState", "StateLoader", "Storage",
           "StorageError", "StorageLocked", "StorageReader", "Unrebuildable"]


class Storage(Protocol):
    """One competition's storage, written by the process that opened it and by no other."""

    mode: str  # STORAGE_MODE of the backend: "json", ...
    location: str  # where it lives, for messages (a directory; a database and schema)
    results_dir: Path  # the official result sheets: local files in every mode, part of every durable point

    async def open(self, reset_boxes: bool, load_state: StateLoader | None = None) -> Recovered:
        """Become the one writer (StorageLocked, naming the holder, if another process is), repair
        what a crash left, and return what to replay. A checkpoint whose state `load_state` refuses
        is set aside like a corrupt one. reset_boxes=True starts a new era: nothing to replay, and
        nothing is lost (the earlier events stay readable in the audit)."""
        ...

    async def append(self, lines: Sequence[bytes]) -> None:
        """Make a batch of event lines durable together (each one JSON object ending in b"\\n"),
        in order and byte for byte: durable when this returns, or StorageError and nothing of the
        batch stored. Lines with a boxId and seq are a box's events; others are audit-only."""
        ...

    async def write_checkpoints(self, items: Sequence[tuple[int, int, SavedState]]) -> None:
        """(box, seq, state) as each box's checkpoint, `seq` the box's last event folded into `state`;
        an Unrebuildable instead of a state keeps a box its history cannot rebuild known to later
        opens. A checkpoint never moves backwards: an item with a lower seq than the stored one is
        ignored (an equal one replaces it)."""
        ...

    async def maintain(self, checkpoint_all: Callable[[], Awaitable[None]]) -> bool:
        """Housekeeping after a commit (the JSON backend rotates a full log, after `checkpoint_all`);
        True if it did any. A database has none."""
        ...

    async def read_document(self, name: str) -> Any | None:
        """"users", "officials" or "revocations"; None if there is none yet. One that cannot be read
        is set aside (kept, never deleted) and reads as None."""
        ...

    async def write_document(self, name: str, value: Any) -> None:
        """Replace a whole document, durably and atomically."""
        ...

    async def read_audit(self, *, limit: int, box_id: int | None, include_payload: bool) -> list[dict[str, Any]]:
        """The newest committed events (audit-only lines included, every era), newest first, each
        with exactly persistence/types.py's AUDIT_KEYS; payload None unless asked for."""
        ...

    async def read_box_events(self, box_id: int) -> list[dict[str, Any]]:
        """Every committed event of one box in the current era, ascending by seq (history, rollback)."""
        ...

    async def freeze(self) -> FrozenPoint:
        """Fix one durable point of everything stored, in an instant (a few ms): the writer calls it
        between two appends, with every box checkpointed, so the point holds exactly what was
        acknowledged. Held until `release`."""
        ...

    async def lay_out(self, frozen: FrozenPoint) -> DurablePoint:
        """The frozen point as the files of a backup, still exactly as it was frozen however much was
        appended since; this may take long (a database writes every event out), so call it after
        the writer's turn, while appends go on. On failure StorageError, and nothing of it is left
        half-written. Once per point."""
        ...

    async def release(self, frozen: FrozenPoint) -> None:
        """Let go of a point once its backup is written (or failed, or never laid out)."""
        ...

    async def check_empty(self) -> None:
        """StorageNotEmpty unless this (unopened) storage holds nothing: the only target a backup
        may be restored into."""
        ...

    async def adopt_backup(self, contents: BackupContents, verify: Callable[[Storage], Awaitable[None]],
                           progress: Progress | None = None) -> None:
        """Restore a verified backup into this empty, unopened storage, all or nothing: the contents
        are staged as a storage of their own, `verify` opens, checks and closes that one, and only
        if it returns do they become this storage's. StorageNotEmpty if anything is here."""
        ...

    def describe(self) -> dict[str, Any]:
        """For health: "mode" and the backend's figures (JSON: directory, audit_bytes, archives)."""
        ...

    async def close(self) -> None:
        """Stop writing and let go of the lock; what append acknowledged stays durable. Closing
        twice, or a storage that never opened, is harmless."""
        ...


class StorageReader(Protocol):
    """Reads of a storage that take no lock and change nothing: beside a running server too."""

    mode: str
    location: str

    async def exists(self) -> bool:
        """Whether there is a storage here at all (a typo must not make the commands create one)."""
        ...

    async def holder(self) -> Holder | None:
        """Who is the storage's writer now, or None."""
        ...

    async def read_document(self, name: str) -> Any | None:
        """As Storage.read_document, except that one that cannot be read raises DocumentUnreadable."""
        ...

    async def read_audit(self, *, limit: int, box_id: int | None, include_payload: bool) -> list[dict[str, Any]]:
        """As Storage.read_audit; never a batch still being written."""
        ...

    async def read_box_events(self, box_id: int) -> list[dict[str, Any]]:
        """As Storage.read_box_events."""
        ...

    async def inspect(self, load_state: StateLoader) -> Inspection:
        """Everything `run.py check` needs: the holder, findings about how the data is held, every
        checkpoint judged as opening judges it, and the current era's events by box and seq."""
        ...
