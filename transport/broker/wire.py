"""The keys, channels and messages the core writes to Redis and the edges read.

Everything lives under one prefix (one per competition). A key and the channel that announces
its changes have the same name:

    {prefix}:epoch       the core's start counter (an integer, bigger at every start)
    {prefix}:control     {"epoch", "boxes": [live ids], "unavailable": [ids]}: who exists now
    {prefix}:officials   {"epoch", "n", "officials": {...}}
    {prefix}:box:{id}    {"epoch", "n", "boxId", "boxVersion", "kind", "timerEndsAtMs", "snapshot", "public"}

`n` counts the core's publications since it started, so a receiver keeps per box the newest by
(epoch, boxVersion, n): nothing older, from this core or an earlier one, overwrites a newer state.
`snapshot` and `public` are the spectators' STATE_SNAPSHOT and public box; a receiver recomputes
their `remaining` from `timerEndsAtMs` when it sends them (see `with_remaining`).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Final, TypeGuard

import orjson

from actors.rules.timer import remaining_seconds

DEFAULT_PREFIX: Final = "belay"
PREFIX_PATTERN: Final = re.compile(r"[A-Za-z0-9_.-]{1,64}")  # no glob characters: edges subscribe to {prefix}:*


@dataclass(frozen=True, slots=True)
class Names:
    prefix: str

    @property
    def epoch(self) -> str:
        return f"{self.prefix}:epoch"

    @property
    def control(self) -> str:
        return f"{self.prefix}:control"

    @property
    def officials(self) -> str:
        return f"{self.prefix}:officials"

    @property
    def everything(self) -> str:
        """The one pattern an edge subscribes to (and its Redis account may read)."""
        return f"{self.prefix}:*"

    @property
    def box_pattern(self) -> str:
        return f"{self.prefix}:box:*"

    def box(self, box_id: int) -> str:
        return f"{self.prefix}:box:{box_id}"

    def box_id_of(self, name: str) -> int | None:
        head = f"{self.prefix}:box:"
        if not name.startswith(head) or not name[len(head):].isdigit():
            return None
        return int(name[len(head):])


@dataclass(frozen=True, slots=True)
class BoxRecord:
    """A box as the spectators see it, in the order receivers keep (`order`)."""

    epoch: int
    n: int
    box_id: int
    box_version: int
    kind: str
    timer_ends_at_ms: int | None
    snapshot: dict[str, Any]
    public: dict[str, Any]

    @property
    def order(self) -> tuple[int, int, int]:
        return (self.epoch, self.box_version, self.n)

    def encode(self) -> bytes:
        return orjson.dumps({"epoch": self.epoch, "n": self.n, "boxId": self.box_id, "boxVersion": self.box_version,
                             "kind": self.kind, "timerEndsAtMs": self.timer_ends_at_ms, "snapshot": self.snapshot,
                             "public": self.public})


@dataclass(frozen=True, slots=True)
class Control:
    epoch: int
    boxes: tuple[int, ...]
    unavailable: tuple[int, ...]

    def encode(self) -> bytes:
        return orjson.dumps({"epoch": self.epoch, "boxes": self.boxes, "unavailable": self.unavailable})


@dataclass(frozen=True, slots=True)
class OfficialsRecord:
    epoch: int
    n: int
    officials: dict[str, str]

    def encode(self) -> bytes:
        return orjson.dumps({"epoch": self.epoch, "n": self.n, "officials": self.officials})


class WireError(ValueError):
    """A message that is not what the core writes (an edge logs it and ignores it)."""


def with_remaining(view: dict[str, Any], timer_ends_at_ms: int | None, now_ms: int) -> dict[str, Any]:
    """The view with a running clock's `remaining` as of `now_ms`, as the core computes it."""
    if timer_ends_at_ms is None:
        return view
    return {**view, "remaining": remaining_seconds({"timerEndsAtMs": timer_ends_at_ms}, now_ms)}


def decode_box(raw: bytes | str) -> BoxRecord:
    data = _object(raw)
    ends = data.get("timerEndsAtMs")
    snapshot, public, kind = data.get("snapshot"), data.get("public"), data.get("kind")
    if not (isinstance(snapshot, dict) and isinstance(public, dict) and isinstance(kind, str)
            and (ends is None or _is_int(ends))):
        raise WireError("not a box record")
    return BoxRecord(_int(data, "epoch"), _int(data, "n"), _int(data, "boxId"), _int(data, "boxVersion"), kind,
                     ends, snapshot, public)


def decode_control(raw: bytes | str) -> Control:
    data = _object(raw)
    boxes, unavailable = data.get("boxes"), data.get("unavailable", [])
    if not (isinstance(boxes, list) and isinstance(unavailable, list)
            and all(_is_int(b) for b in boxes) and all(_is_int(b) for b in unavailable)):
        raise WireError("not a control record")
    return Control(_int(data, "epoch"), tuple(boxes), tuple(unavailable))


def decode_officials(raw: bytes | str) -> OfficialsRecord:
    data = _object(raw)
    officials = data.get("officials")
    if not isinstance(officials, dict) or not all(isinstance(v, str) for v in officials.values()):
        raise WireError("not an officials record")
    return OfficialsRecord(_int(data, "epoch"), _int(data, "n"), officials)


def _object(raw: bytes | str) -> dict[str, Any]:
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise WireError("not JSON") from None
    if not isinstance(data, dict):
        raise WireError("not a JSON object")
    return data


def _int(data: dict[str, Any], key: str) -> int:
    value = data.get(key)
    if not _is_int(value):
        raise WireError(f"{key} is not an integer")
    return value


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)
