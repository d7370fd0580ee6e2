"""Replay: logged events back through the pure rules, which rebuilds exactly the acknowledged states.

The one implementation behind start-up, `run.py check` and `check --repair`, backup verification,
history and rollback. An event either applies exactly (same resulting `boxVersion` as the log
says) or raises ReplayError with the reason; nothing is skipped silently. An event that carries
the whole resulting state (`restoredState`: a restore, a rollback, a box started over) needs
nothing before it, so replay can also begin there when the earlier history is unusable.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from actors.events import replay_inputs
from actors.rules import CommandError, apply_command, default_state, parse_command, state_from_checkpoint
from actors.rules.valid_state import check_session_id
from persistence.types import Checkpoint

# The one rule for whether a saved state can be used (a checkpoint, a restore event's state); the
# storage applies it when it loads checkpoints, so an unusable one is set aside like a corrupt file.
load_state = state_from_checkpoint


class ReplayError(ValueError):
    """The events cannot rebuild the box exactly; the message says where and why."""


@dataclass(frozen=True, slots=True)
class Rebuilt:
    seq: int  # the last event folded into `state`
    state: dict[str, Any]
    now_ms: int | None  # server time of that event (None when nothing was replayed after a checkpoint)


@dataclass(frozen=True, slots=True)
class Step:
    """One event of a walk through a box's history, with the state it left (None when unknown)."""

    event: dict[str, Any]
    state: dict[str, Any] | None
    problem: str | None  # why the state is unknown


def is_self_contained(event: dict[str, Any]) -> bool:
    return "restoredState" in event


def apply_event(state: dict[str, Any] | None, event: dict[str, Any]) -> dict[str, Any]:
    """The state after `event`; `state` is None before a box's first event (or when unknown)."""
    seq = event.get("seq")
    try:
        if is_self_contained(event):
            new = load_state(event["restoredState"])
        else:
            if state is None:
                state = _first_state(event)
            command = parse_command(event["cmd"])
            if command.box_id != event.get("boxId"):
                raise ReplayError(f"event seq {seq} holds a command for box {command.box_id}")
            new = apply_command(state, command, *replay_inputs(event, command)).state
    except ReplayError:
        raise
    except (CommandError, KeyError, TypeError, ValueError) as exc:
        raise ReplayError(f"event seq {seq} cannot be replayed ({type(exc).__name__}: {exc})") from None
    if new.get("boxVersion") != event.get("boxVersion"):
        raise ReplayError(f"event seq {seq} replays to version {new.get('boxVersion')}, "
                          f"the log says {event.get('boxVersion')}")
    return new


def _first_state(event: dict[str, Any]) -> dict[str, Any]:
    seq = event.get("seq")
    if seq != 1:
        raise ReplayError(f"the state before seq {seq} is unknown")
    try:
        base = check_session_id("baseSessionId", event.get("baseSessionId"))
    except ValueError:
        raise ReplayError("event seq 1 lacks a valid session the box started with (baseSessionId)") from None
    return default_state(base)


def replay(state: dict[str, Any] | None, seq: int, events: Iterable[dict[str, Any]]) -> Rebuilt:
    """Apply `events`, which must continue `seq` without a gap, to `state` (None: from scratch)."""
    now_ms = None
    for event in events:
        if event.get("seq") != seq + 1:
            raise ReplayError(f"the log lacks seq {seq + 1} (the next event it holds is seq {event.get('seq')})")
        state = apply_event(state, event)
        seq, now_ms = event["seq"], event.get("nowMs")
    if state is None:
        raise ReplayError("there is nothing to rebuild it from")
    return Rebuilt(seq, state, now_ms)


def rebuild(checkpoint: Checkpoint | None, events: Sequence[dict[str, Any]], *, last_seq: int = 0) -> Rebuilt:
    """A box from its checkpoint (state already loaded) and every logged event after it (all of
    them without one), ascending by seq. If that fails, from the newest self-contained event that
    the log continues without a gap. `last_seq` is the highest seq known anywhere for the box: a
    rebuild that ends before it has lost acknowledged events and is refused too."""
    try:
        rebuilt = _from_start(checkpoint, events)
    except ReplayError as failure:
        tail = _self_contained_tail(events)
        if tail is None:
            raise
        try:
            rebuilt = replay(None, tail[0]["seq"] - 1, tail)
        except ReplayError:
            raise failure from None
    if rebuilt.seq < last_seq:
        raise ReplayError(f"its history ends at seq {rebuilt.seq}, but seq {last_seq} was written")
    return rebuilt


def _from_start(checkpoint: Checkpoint | None, events: Sequence[dict[str, Any]]) -> Rebuilt:
    if checkpoint is not None:
        if not events:
            return Rebuilt(checkpoint.seq, checkpoint.state, None)
        return replay(checkpoint.state, checkpoint.seq, events)
    if not events:
        raise ReplayError("the log holds no event of it")
    if events[0].get("seq") != 1 and not is_self_contained(events[0]):
        raise ReplayError(f"the log lacks its history from seq 1 (the first event it holds is seq "
                          f"{events[0].get('seq')})")
    return replay(None, events[0]["seq"] - 1, events)


def _self_contained_tail(events: Sequence[dict[str, Any]]) -> Sequence[dict[str, Any]] | None:
    """The events from the newest self-contained one on, if they follow each other without a gap."""
    for index in range(len(events) - 1, -1, -1):
        if index + 1 < len(events) and events[index].get("seq") != events[index + 1]["seq"] - 1:
            return None
        if is_self_contained(events[index]):
            return events[index:]
    return None


def walk(events: Iterable[dict[str, Any]]) -> Iterator[Step]:
    """Every event of a box's history (ascending by seq, from the start of the current history)
    with the state it left. After a hole or an event that cannot be replayed the state is unknown
    until the next self-contained event."""
    state: dict[str, Any] | None = None
    seq = 0
    problem: str | None = None
    for event in events:
        event_seq = event["seq"]
        if state is not None and event_seq != seq + 1:
            state, problem = None, f"the log lacks seq {seq + 1}"
        if state is not None or is_self_contained(event) or (event_seq == 1 and problem is None):
            try:
                state, problem = apply_event(state, event), None
            except ReplayError as exc:
                state, problem = None, str(exc)
        elif problem is None:
            problem = f"the log lacks the history before seq {event_seq}"
        seq = event_seq
        yield Step(event, state, problem)
