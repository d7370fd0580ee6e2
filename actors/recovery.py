"""Rebuilds box states at startup: checkpoint, then replay of the later events through the rules."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from actors.rules import CommandError, apply_command, default_state, parse_command, state_from_checkpoint
from actors.events import RESTORE, replay_inputs
from persistence.storage import Recovered

log = logging.getLogger("belay.recovery")


@dataclass(frozen=True, slots=True)
class RestoredBox:
    box_id: int
    seq: int
    state: dict[str, Any]


def restore_boxes(recovered: Recovered) -> list[RestoredBox]:
    boxes: list[RestoredBox] = []
    for box_id in sorted(set(recovered.checkpoints) | set(recovered.events)):
        restored = _restore_one(box_id, recovered)
        if restored is not None:
            boxes.append(restored)
    return boxes


def checkpoint_problem(state: dict[str, Any]) -> str | None:
    """Why a saved state cannot be loaded, for the storage to set its file aside like a corrupt one
    (and rebuild the box from the log where it can), or None."""
    try:
        state_from_checkpoint(state)
    except ValueError as exc:
        return str(exc)
    return None


def _restore_one(box_id: int, recovered: Recovered) -> RestoredBox | None:
    checkpoint = recovered.checkpoints.get(box_id)
    events = recovered.events.get(box_id, [])
    state: dict[str, Any] | None = None
    seq = 0
    if checkpoint is not None:
        try:
            state = state_from_checkpoint(checkpoint.state)
            seq = checkpoint.seq
        except ValueError as exc:
            log.error("box %d: checkpoint is invalid (%s); rebuilding from the log", box_id, exc)
    if state is None:
        if not events or events[0].get("seq") != 1:
            log.error("box %d: no usable checkpoint and the log lacks its history; not restored", box_id)
            return None
        state = default_state(str(events[0].get("baseSessionId") or ""))
    return replay(box_id, state, seq, events)


def replay(box_id: int, state: dict[str, Any], seq: int, events: list[dict[str, Any]]) -> RestoredBox:
    """Apply logged events in order; the rules are pure, so this rebuilds the acknowledged state."""
    for event in events:
        event_seq = event.get("seq")
        if not isinstance(event_seq, int) or event_seq <= seq:
            continue
        if event_seq != seq + 1:
            log.error("box %d: event %d follows %d; a gap in the log, replay stops here", box_id, event_seq, seq)
            break
        try:
            if event.get("action") == RESTORE:
                new_state = state_from_checkpoint(event["restoredState"])
            else:
                command = parse_command(event["cmd"])
                new_state = apply_command(state, command, *replay_inputs(event, command)).state
        except (CommandError, KeyError, TypeError, ValueError) as exc:
            log.error("box %d: event %d cannot be replayed (%s); replay stops here", box_id, event_seq, exc)
            break
        if new_state.get("boxVersion") != event.get("boxVersion"):
            log.warning("box %d: event %d replays to version %s, log says %s", box_id, event_seq,
                        new_state.get("boxVersion"), event.get("boxVersion"))
        state, seq = new_state, event_seq
    return RestoredBox(box_id, seq, state)
