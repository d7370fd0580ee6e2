"""What the storage protocol returns, the same from every backend.

Storage knows events, checkpoints, documents and durable points; it does not know the contest
rules (the actors pass their `StateLoader` in) nor the box-id range (the actors ignore ids outside
theirs). A box id or a seq is a non-negative int that JavaScript can still name exactly.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, TypeGuard

# The box's next event gets seq + 1, and orjson writes no int past 64 bits: a seq (or a box id)
# beyond JavaScript's safe integers could never be named by the UI, nor followed by another event.
MAX_SEQ: Final = 2**53 - 1
MAX_STORED_BOX_ID: Final = MAX_SEQ

# The caller's rule for a checkpoint's state: returns the state to use, or raises ValueError saying
# why it cannot be used. Storage does not know the contest rules; the actors pass theirs in.
StateLoader = Callable[[dict[str, Any]], dict[str, Any]]

# The documents a storage keeps (persistence/layout.py names their files in a backup).
DOCUMENTS: Final = ("users", "officials", "revocations")

# Levels of an inspection's findings (`run.py check` prints them as they are).
PROBLEM: Final = "problem"
WARNING: Final = "warning"
INFO: Final = "ok"
Finding = tuple[str, str]  # (level, sentence)


# What an audit read gives for each event, in this order; a key the event lacks reads as None.
AUDIT_KEYS: Final = (
    "id", "createdAt", "competitionId", "boxId", "action", "actionId", "boxVersion", "sessionId",
    "actorUsername", "actorRole", "actorIp", "actorUserAgent", "payload",
)


def audit_item(event: dict[str, Any], include_payload: bool) -> dict[str, Any]:
    item = {key: event.get(key) for key in AUDIT_KEYS}
    if not include_payload:
        item["payload"] = None
    return item


def is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def is_box_id(value: object) -> TypeGuard[int]:
    """Any id storage can keep; whether the rules know the box is the actors' business."""
    return is_int(value) and 0 <= value <= MAX_STORED_BOX_ID


@dataclass(frozen=True)
class Checkpoint:
    box_id: int
    seq: int  # the last event of the box already folded into `state`
    state: dict[str, Any]


@dataclass(frozen=True)
class Unrebuildable:
    """Saved instead of a state for a box whose history cannot rebuild it: without it, a box whose
    only trace was a checkpoint now set aside would be recreated empty on top of its history."""

    box_version: int  # the highest the box's history names: whatever brings it back goes on above
    reason: str


SavedState = dict[str, Any] | Unrebuildable


@dataclass(frozen=True)
class Recovered:
    """What opening a storage found: the boxes to rebuild, and what it had to repair first."""

    # Usable checkpoints: their state is what the caller's `load_state` returned (as stored without one).
    checkpoints: dict[int, Checkpoint]
    # Per box, ascending by seq: every event of the current era after its checkpoint (from seq 1
    # without one). Where the history has a hole the list has one too: replay decides.
    events: dict[int, list[dict[str, Any]]]
    quarantined: list[str]              # where unusable checkpoints were set aside (kept, never used),
                                        # named within the storage (JSON: boxes/quarantine/...)
    unrecoverable: list[int]            # boxes whose history after the checkpoint has a hole
    skipped_events: int = 0             # stored events that could not be read, skipped (and kept)
    # Anything else opening repaired, in the backend's own words (a JSON log's torn tail cut, ...).
    repairs: tuple[str, ...] = ()
    unusable: dict[int, str] = field(default_factory=dict)  # why a box has no usable checkpoint
    # Per box, the highest (seq, boxVersion) its events or any checkpoint (used or set aside) name:
    # a box that cannot be rebuilt and starts over goes on above them, never reusing a seq.
    highest: dict[int, tuple[int, int]] = field(default_factory=dict)


@dataclass(frozen=True)
class FrozenPoint:
    """One consistent, durable state of the whole storage, fixed by `Storage.freeze` in an instant,
    before all of it need be laid out as files: `Storage.lay_out` makes it a DurablePoint later,
    while appends go on. The JSON backend hard-links every file at once; a database holds a
    snapshot and writes its files out when laid out."""

    folder: Path  # where the point is laid out
    entries: tuple[tuple[str, int | None], ...]  # the files there already, as in DurablePoint


@dataclass(frozen=True)
class DurablePoint:
    """A frozen point laid out as the files of a backup zip (persistence/layout.py) under `folder`,
    readable from another process (the zip is built in a worker) until the storage releases it."""

    folder: Path
    # (name in the backup, bytes of it that belong to the point; None = the whole file)
    entries: tuple[tuple[str, int | None], ...]


@dataclass(frozen=True)
class Holder:
    """Who holds a storage's one-writer lock, as that process recorded it."""

    pid: str  # "unknown" when it could not be read
    host: str | None = None
    since: str | None = None

    def __str__(self) -> str:
        where = f" on {self.host}" if self.host else ""
        when = f" since {self.since}" if self.since else ""
        return f"pid {self.pid}{where}{when}"


@dataclass(frozen=True)
class StoredCheckpoint:
    """A box's checkpoint as stored, judged exactly as opening the storage judges it."""

    checkpoint: Checkpoint | None  # None: opening would set it aside, or it is an Unrebuildable mark
    stored_state: dict[str, Any] | None  # the state as stored, to compare with a replay of the events
    named_seq: int  # the seq it names, even an unusable one (0 if none)


@dataclass
class Inspection:
    """A read-only look at a storage (works beside a running server): its findings about how the
    data is held (in the backend's words), and the checkpoints and events the actors then replay."""

    holder: Holder | None
    findings: list[Finding]
    checkpoints: dict[int, StoredCheckpoint]
    # The current era's events by box, then by seq (a seq stored twice: the first copy, and a finding).
    events: dict[int, dict[int, dict[str, Any]]]
    events_read: int  # stored events looked at, the unreadable ones included
