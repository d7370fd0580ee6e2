"""Messages between transport and the box actors, and the actors' replies."""
from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from actors.rules import Command


@dataclass(frozen=True, slots=True)
class Origin:
    """Who sent a command; recorded in the audit log."""

    username: str | None = None
    role: str | None = None
    ip: str | None = None
    user_agent: str | None = None


@dataclass(frozen=True, slots=True)
class Execute:
    command: Command
    origin: Origin


class CommitGroup(Protocol):
    """Events of several boxes that become durable together or not at all (actors/persister.py)."""

    def join(self, box_id: int, seq: int, line: bytes, state: dict[str, Any]) -> asyncio.Future[None]: ...


@dataclass(frozen=True, slots=True)
class RestoreBox:
    """Put a saved state back on the box (a restore, a rollback), as one audited, durable event."""

    state: dict[str, Any]
    source: str
    origin: Origin
    # When the state's clock was read (the backup's time, the rolled-back version's): a running
    # clock comes back paused with the time it had left then. None = now.
    as_of_ms: int | None = None
    group: CommitGroup | None = None  # set when several boxes are restored at once


@dataclass(frozen=True, slots=True)
class TimerFired:
    deadline_ms: int


@dataclass(frozen=True, slots=True)
class Republish:
    """Something outside the box that its snapshot shows changed (the officials): send it again."""


@dataclass(frozen=True, slots=True)
class RideAlongFailed:
    """An event that was answered before it was durable did not commit."""


@dataclass(frozen=True, slots=True)
class DoubtSettled:
    """The database answered whether an event whose COMMIT got no answer committed after all."""

    committed: bool
    seq: int
    state: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Reply:
    """A box's answer: its JSON body and, for a refusal or a failure, its code (actors/codes.py;
    transport picks the status). `code` None means the command was answered (ok, ignored, a value)."""

    body: dict[str, Any] = field(default_factory=dict)
    code: str | None = None

    @classmethod
    def ok(cls) -> Reply:
        return _OK

    @classmethod
    def ignored(cls, reason: str) -> Reply:
        return cls({"status": "ignored", "reason": reason})

    @classmethod
    def error(cls, code: str, detail: str | None = None) -> Reply:
        """The client reads `detail`, or the code itself when the refusal needs no other words."""
        return cls({"detail": code if detail is None else detail}, code)


_OK = Reply({"status": "ok"})


View = Callable[[], dict[str, Any]]  # builds a snapshot or public view when someone will receive it


class Fanout(Protocol):
    """Where a box actor sends what its subscribers must see (implemented by transport's hubs)."""

    def box_changed(self, box_id: int, *, echo: dict[str, Any] | None, snapshot: View, snapshot_to_box: bool,
                    public_kind: str | None, public_box: View | None) -> None:
        """Box subscribers get the echo, then the snapshot if `snapshot_to_box`; spectators get the
        snapshot and the public view when `public_kind` is set."""


class Clock(Protocol):
    def now_ms(self) -> int: ...
