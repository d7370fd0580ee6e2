"""The event line: one audit-log entry that also holds everything replay needs."""
from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import Any

import orjson

from actors.messages import Origin, RestoreBox
from actors.rules import Command, needs_new_session
from actors.rules.backups import restored_state
from actors.rules.valid_state import check_epoch_ms, check_session_id, check_state

RESTORE = "RESTORE"
# Account changes: audit-only lines (no per-box seq), which replay and `run.py check` pass over.
JUDGE_PASSWORD_SET = "JUDGE_PASSWORD_SET"
JUDGE_NAME_MOVED = "JUDGE_NAME_MOVED"
USER_DISABLED = "USER_DISABLED"
USER_ENABLED = "USER_ENABLED"
USER_REMOVED = "USER_REMOVED"


def iso_from_ms(now_ms: int) -> str:
    return datetime.fromtimestamp(now_ms / 1000, tz=UTC).isoformat()


def new_event_id() -> str:
    """A random (version 4) UUID in its text form, without building a `uuid.UUID` (half the cost)."""
    raw = bytearray(os.urandom(16))
    raw[6] = (raw[6] & 0x0F) | 0x40  # version 4
    raw[8] = (raw[8] & 0x3F) | 0x80  # RFC 4122 variant
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def encode_event(*, box_id: int, seq: int, command: Command, before: dict[str, Any],
                 after: dict[str, Any], now_ms: int, origin: Origin,
                 echo: dict[str, Any] | None, self_contained: bool = False) -> bytes:
    """The audit keys of the spec first, then the replay inputs (seq, nowMs, cmd, generated ids).
    A self-contained event also carries the resulting state, so replay needs nothing before it
    (a box started over on top of a history that cannot rebuild it)."""
    event = _audit_fields(box_id, command.type, command.action_id, after, now_ms, origin, echo)
    event.update(seq=seq, nowMs=now_ms, cmd=command.to_json())
    if after["sessionId"] != before["sessionId"]:
        event["newSessionId"] = after["sessionId"]
    if seq == 1:
        event["baseSessionId"] = before["sessionId"]
    if self_contained:
        event["restoredState"] = after
    return orjson.dumps(event) + b"\n"


def encode_restore(*, box_id: int, seq: int, live_version: int, message: RestoreBox, now_ms: int,
                   new_session_id: str) -> tuple[dict[str, Any], bytes]:
    """The state a restore or rollback puts on a box, and its event line: the box actor and the
    offline `run.py rollback` both write exactly this."""
    as_of_ms = now_ms if message.as_of_ms is None else message.as_of_ms
    state = restored_state(message.state, live_version, as_of_ms, new_session_id)
    check_state(state)  # raises InvalidState: one more version may leave the range a client can count
    line = encode_restore_event(box_id=box_id, seq=seq, after=state, now_ms=now_ms, origin=message.origin,
                                source=message.source)
    return state, line


def encode_restore_event(*, box_id: int, seq: int, after: dict[str, Any], now_ms: int, origin: Origin,
                         source: str) -> bytes:
    """A restore replaces the whole state, so the event carries it: replay just takes it."""
    echo = {"type": RESTORE, "boxId": box_id, "boxVersion": after["boxVersion"],
            "sessionId": after["sessionId"], "source": source}
    event = _audit_fields(box_id, RESTORE, None, after, now_ms, origin, echo)
    event.update(seq=seq, nowMs=now_ms, restoredState=after)
    return orjson.dumps(event) + b"\n"


def encode_account_event(*, action: str, box_id: int | None, now_ms: int, origin: Origin,
                         payload: dict[str, Any]) -> bytes:
    """The audit keys only: no seq and no box version (an account change is no box's history)."""
    return orjson.dumps(_audit_fields(box_id, action, None, None, now_ms, origin, payload)) + b"\n"


def replay_inputs(event: dict[str, Any], command: Command) -> tuple[int, str]:
    """The clock reading and generated session id a logged command was applied with. A damaged or
    hand-edited line whose values the live server could never have written raises ValueError, so
    replay stops there instead of building a state no event or client could hold."""
    now_ms = check_epoch_ms("nowMs", event.get("nowMs"))
    if not needs_new_session(command):
        return now_ms, ""
    return now_ms, check_session_id("newSessionId", event.get("newSessionId"))


def _audit_fields(box_id: int | None, action: str, action_id: str | None, after: dict[str, Any] | None,
                  now_ms: int, origin: Origin, payload: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "id": new_event_id(),
        "createdAt": iso_from_ms(now_ms),
        "competitionId": 0,
        "boxId": box_id,
        "action": action,
        "actionId": action_id,
        "boxVersion": after["boxVersion"] if after is not None else None,
        "sessionId": after["sessionId"] if after is not None else None,
        "actorUsername": origin.username,
        "actorRole": origin.role,
        "actorIp": origin.ip,
        "actorUserAgent": origin.user_agent,
        "payload": payload,
    }
