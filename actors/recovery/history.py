"""A box's versions since the last reset, rebuilt from its logged events: history for disputes,
and the state to roll back to.

Most versions come from one event. A clock sync that only changes a paused clock's time is logged
without a new version, so a version is the events that carry its number: the first one says what
made it (action, time, who), the last one what the box was when the next version replaced it.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from actors.events import RESTORE
from actors.recovery.replay import ReplayError, walk
from actors.rules import COMMAND_TYPES
from actors.rules.snapshot import score_count
from persistence.types import is_int

DEFAULT_LIMIT = 100
MAX_LIMIT = 500
ACTIONS = frozenset(COMMAND_TYPES) | {RESTORE}  # what a version's action can be (a filter names them)


class UnknownVersion(LookupError):
    """The box's history since the last reset has no such version."""


@dataclass(frozen=True, slots=True)
class Version:
    box_version: int
    action: str | None
    created_at: str | None
    actor_username: str | None
    actor_role: str | None
    categorie: str | None  # the box as this version left it; None when it cannot be rebuilt
    route_index: int | None
    scores: int | None
    problem: str | None  # why it cannot be rebuilt (then it cannot be rolled back to)

    def to_json(self) -> dict[str, Any]:
        return {"boxVersion": self.box_version, "action": self.action, "createdAt": self.created_at,
                "actorUsername": self.actor_username, "actorRole": self.actor_role, "categorie": self.categorie,
                "routeIndex": self.route_index, "scores": self.scores, "restorable": self.problem is None,
                "problem": self.problem}


def versions(events: Iterable[dict[str, Any]]) -> list[Version]:
    """Every version in the events (one box, ascending by seq), oldest first."""
    found: list[Version] = []
    first: dict[str, Any] | None = None
    for step in walk(events):
        version = step.event.get("boxVersion")
        if not is_int(version):
            continue  # a line no version can name
        if found and found[-1].box_version == version and first is not None:
            found.pop()
        else:
            first = step.event
        state = step.state
        found.append(Version(
            box_version=version,
            action=_text(first.get("action")),
            created_at=_text(first.get("createdAt")),
            actor_username=_text(first.get("actorUsername")),
            actor_role=_text(first.get("actorRole")),
            categorie=state["categorie"] if state is not None else None,
            route_index=state["routeIndex"] if state is not None else None,
            scores=score_count(state) if state is not None else None,
            problem=step.problem,
        ))
    return found


def state_at(events: Iterable[dict[str, Any]], box_version: int) -> tuple[dict[str, Any], int | None]:
    """The state the box had at `box_version` (after the last event carrying it), and that event's
    server time. Raises UnknownVersion, or ReplayError when the log cannot rebuild that version."""
    found: tuple[dict[str, Any] | None, str | None, Any] | None = None
    for step in walk(events):
        version = step.event.get("boxVersion")
        if version == box_version and is_int(version):
            found = (step.state, step.problem, step.event.get("nowMs"))
        elif found is not None:
            break
    if found is None:
        raise UnknownVersion(box_version)
    state, problem, now_ms = found
    if state is None:
        raise ReplayError(problem or "it cannot be rebuilt")
    return state, now_ms if is_int(now_ms) else None


def rollback_source(version: int) -> str:
    """What the audit log's RESTORE says a rollback was (the route and `run.py rollback` alike)."""
    return f"rollback to version {version}"


def page(all_versions: Sequence[Version], *, limit: int, before: int | None,
         actions: frozenset[str] | None) -> tuple[list[Version], int | None]:
    """Newest first: versions below `before` made by one of `actions`, at most `limit`, and the
    `before` that asks for the next page (None on the last one)."""
    picked: list[Version] = []
    for version in reversed(all_versions):
        if before is not None and version.box_version >= before:
            continue
        if actions is not None and version.action not in actions:
            continue
        if len(picked) == limit:
            return picked, picked[-1].box_version
        picked.append(version)
    return picked, None


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None
