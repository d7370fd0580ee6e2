"""A box checkpoint as a file holds it: `boxes/{id}.json` of the JSON backend and of every backup.

A checkpoint is `{"format":1,"boxId":int,"seq":int,"savedAt":iso8601,"state":{...}}`, where `seq`
is the last event of that box already folded into `state`. A box whose history cannot rebuild it
has `"state": null` and `"unrebuildable": {"boxVersion": int, "reason": str}` instead: no state,
but a later start still knows the box exists, and where its history ends.
"""
from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson

from persistence.types import MAX_SEQ, MAX_STORED_BOX_ID, Checkpoint, SavedState, Unrebuildable, is_box_id, is_int

FORMAT = 1


def parse_checkpoint(raw: bytes, box_id: int) -> tuple[Checkpoint | None, str]:
    """The checkpoint in a box file's bytes with its state as stored, or None and why not.
    Whether the state itself can be used is the caller's rule (a `StateLoader`)."""
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None, "not valid JSON"
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        return None, f"not a format-{FORMAT} checkpoint"
    if doc.get("boxId") != box_id or not is_int(doc.get("boxId")):
        return None, f"it names box {doc.get('boxId')!r}"
    if not is_int(doc.get("seq")) or not 0 <= doc["seq"] <= MAX_SEQ or not isinstance(doc.get("state"), dict):
        return None, "seq or state is missing or wrong"
    return Checkpoint(box_id, doc["seq"], doc["state"]), ""


def parse_unrebuildable(raw: bytes, box_id: int) -> tuple[int, Unrebuildable] | None:
    """(seq, mark) of a box file that says its box cannot be rebuilt, else None."""
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT or doc.get("boxId") != box_id:
        return None
    mark = doc.get("unrebuildable")
    if (doc.get("state") is not None or not is_int(doc.get("seq")) or doc["seq"] < 0 or not isinstance(mark, dict)
            or not is_int(mark.get("boxVersion")) or mark["boxVersion"] < 0 or not isinstance(mark.get("reason"), str)):
        return None
    return doc["seq"], Unrebuildable(mark["boxVersion"], mark["reason"])


def named_point(raw: bytes) -> tuple[int, int] | None:
    """(seq, boxVersion) an unusable checkpoint still names: a box that starts over must go on above them.
    A number no server could have written (past MAX_SEQ) names nothing: it is the damage, not history."""
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(doc, dict) or not is_int(doc.get("seq")) or not 0 <= doc["seq"] <= MAX_SEQ:
        return None
    state = doc.get("state")
    version = state.get("boxVersion") if isinstance(state, dict) else None
    return doc["seq"], version if is_int(version) and 0 <= version <= MAX_SEQ else 0


def encode_checkpoint(box_id: int, seq: int, state: SavedState) -> bytes:
    if not is_box_id(box_id):
        raise ValueError(f"a box id is an int from 0 to {MAX_STORED_BOX_ID}, got {box_id!r}")
    doc: dict[str, Any] = {"format": FORMAT, "boxId": box_id, "seq": seq,
                           "savedAt": datetime.now(UTC).isoformat(), "state": state}
    if isinstance(state, Unrebuildable):
        doc["state"] = None
        doc["unrebuildable"] = {"boxVersion": state.box_version, "reason": state.reason}
    return orjson.dumps(doc, option=orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE)
