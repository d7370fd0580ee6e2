"""Messages between transport and the box actors, and the actors' replies."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

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


@dataclass(frozen=True, slots=True)
class RestoreBox:
    """Put a backed-up state back on the box, as one audited, durable event."""

    state: dict[str, Any]
    source: str
    origin: Origin


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
class Reply:
    """HTTP status and JSON body for the caller."""

    status: int
    body: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def ok(cls) -> "Reply":
        return _OK

    @classmethod
    def ignored(cls, reason: str) -> "Reply":
        return cls(200, {"status": "ignored", "reason": reason})

    @classmethod
    def error(cls, status: int, detail: str) -> "Reply":
        return cls(status, {"detail": detail})


_OK = Reply(200, {"status": "ok"})


View = Callable[[], dict[str, Any]]  # builds a snapshot or public view when someone will receive it


class Fanout(Protocol):
    """Where a box actor sends what its subscribers must see (implemented by transport's hubs)."""

    def box_changed(self, box_id: int, *, echo: dict[str, Any] | None, snapshot: View, snapshot_to_box: bool,
                    public_kind: str | None, public_box: View | None) -> None:
        """Box subscribers get the echo, then the snapshot if `snapshot_to_box`; spectators get the
        snapshot and the public view when `public_kind` is set."""


class Clock(Protocol):
    def now_ms(self) -> int: ...
