"""A whole competition in memory, as either backend holds it, and the digest that proves two
copies equal: what `run.py migrate` reads from one side, writes to the other and compares.

Events are kept as rows (persistence/postgres/rows.py: the exact line and the columns read from it)
in commit order, each with its era (a reset starts a new one); checkpoints as the database's
columns; set-aside checkpoints and documents as they are.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import orjson

from persistence.postgres.rows import EventRow


@dataclass(frozen=True)
class StoredBox:
    """A box's checkpoint as the `checkpoints` table holds it: a state, or an Unrebuildable mark."""

    box_id: int
    seq: int
    box_version: int
    state: str | None  # the state's JSON text; None for a mark
    unrebuildable_reason: str | None

    def __getitem__(self, key: str) -> Any:  # persistence/postgres/recovery.py reads rows by name
        return getattr(self, key)


@dataclass(frozen=True)
class SetAside:
    era: int
    box_id: int
    seq: int
    reason: str
    content: bytes


@dataclass
class Competition:
    rows: list[EventRow] = field(default_factory=list)  # commit order
    era: int = 1  # the current era
    checkpoints: dict[int, StoredBox] = field(default_factory=dict)
    set_aside: list[SetAside] = field(default_factory=list)
    documents: dict[str, Any] = field(default_factory=dict)
    left_behind: list[str] = field(default_factory=list)  # what the source holds that is not carried, and why

    @property
    def line_bytes(self) -> int:
        return sum(len(row[6]) for row in self.rows)


@dataclass(frozen=True)
class BoxDigest:
    count: int
    first_seq: int
    last_seq: int
    sha256: str  # of the box's lines in seq order

    @property
    def contiguous(self) -> bool:
        return self.last_seq - self.first_seq + 1 == self.count


@dataclass(frozen=True)
class Digest:
    """What must be equal on both sides of a migration."""

    events: int
    boxes: dict[tuple[int, int], BoxDigest]  # (era, box) -> its events
    audit_only: dict[int, tuple[int, str]]  # era -> (lines without a box seq, sha256 of them in commit order)
    checkpoints: dict[int, tuple[int, int, str]]  # box -> (seq, boxVersion, sha256 of the state or the mark)
    set_aside: tuple[str, ...]  # sha256 of each set-aside checkpoint, sorted
    documents: dict[str, str]  # name -> sha256 of its canonical JSON
    era: int

    def differences(self, other: Digest) -> list[str]:
        """Sentences naming what differs (empty: the same)."""
        found = []
        if self.events != other.events:
            found.append(f"{self.events} event line(s) against {other.events}")
        found += [f"box {key[1]} (era {key[0]}): {_box(self.boxes.get(key))} against {_box(other.boxes.get(key))}"
                  for key in sorted(set(self.boxes) | set(other.boxes)) if self.boxes.get(key) != other.boxes.get(key)]
        if self.audit_only != other.audit_only:
            found.append("the lines without a box seq differ")
        found += [f"box {box}: the checkpoints differ" for box in sorted(set(self.checkpoints) | set(other.checkpoints))
                  if self.checkpoints.get(box) != other.checkpoints.get(box)]
        if self.set_aside != other.set_aside:
            found.append("the set-aside checkpoints differ")
        found += [f"document {name} differs" for name in sorted(set(self.documents) | set(other.documents))
                  if self.documents.get(name) != other.documents.get(name)]
        if self.era != other.era:
            found.append(f"the current era is {self.era} against {other.era}")
        return found

    def gaps(self) -> list[str]:
        return [f"box {box} (era {era}) has {d.count} event(s) for seqs {d.first_seq}..{d.last_seq}"
                for (era, box), d in sorted(self.boxes.items()) if not d.contiguous]


def _box(d: BoxDigest | None) -> str:
    return "none" if d is None else f"{d.count} event(s), seq {d.first_seq}..{d.last_seq}, sha256 {d.sha256[:12]}"


def digest_of(competition: Competition) -> Digest:
    """The digest computed from the rows in memory (the database computes its own in SQL)."""
    by_box: dict[tuple[int, int], list[tuple[int, bytes]]] = {}
    audit: dict[int, Any] = {}
    counts: dict[int, int] = {}
    for era, box, seq, _, _, _, line in competition.rows:
        if seq is None or box is None:
            audit.setdefault(era, hashlib.sha256()).update(line)
            counts[era] = counts.get(era, 0) + 1
        else:
            by_box.setdefault((era, box), []).append((seq, line))
    boxes = {}
    for key, pairs in by_box.items():
        pairs.sort(key=lambda pair: pair[0])
        h = hashlib.sha256()
        for _, line in pairs:
            h.update(line)
        boxes[key] = BoxDigest(len(pairs), pairs[0][0], pairs[-1][0], h.hexdigest())
    return Digest(len(competition.rows), boxes, {era: (counts[era], h.hexdigest()) for era, h in audit.items()},
                  {box: checkpoint_digest(cp.seq, cp.box_version, cp.state, cp.unrebuildable_reason)
                   for box, cp in competition.checkpoints.items()},
                  tuple(sorted(hashlib.sha256(item.content).hexdigest() for item in competition.set_aside)),
                  {name: value_digest(value) for name, value in competition.documents.items()}, competition.era)


def checkpoint_digest(seq: int, box_version: int, state: str | bytes | None,
                      reason: str | None) -> tuple[int, int, str]:
    value = orjson.loads(state) if state is not None else {"unrebuildable": reason}
    return seq, box_version, value_digest(value)


def value_digest(value: Any) -> str:
    """The same JSON value gives the same digest, however it was spelt (indents, key order)."""
    return hashlib.sha256(orjson.dumps(value, option=orjson.OPT_SORT_KEYS)).hexdigest()
