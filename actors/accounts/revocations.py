"""Revoked login sessions (a logout), as pure functions: no I/O, no clock, inputs never mutated.

A logout ends one session, not the account, so it cannot be expressed in users.json: the session id
is kept here until every token of that session would have expired anyway, then dropped. The
document (revoked_sessions.json): {"sessions": {sid: until_epoch_seconds}}.
"""
from __future__ import annotations

from typing import Any

Revoked = dict[str, int]  # session id -> epoch second after which no token of it can be valid

MAX_SESSION_ID = 256  # as in a token's claims


def load_revoked(obj: object, now_s: float) -> Revoked:
    """The document as read, without entries that have run out; anything malformed is skipped."""
    sessions = obj.get("sessions") if isinstance(obj, dict) else None
    if not isinstance(sessions, dict):
        return {}
    return {sid: until for sid, until in sessions.items()
            if isinstance(sid, str) and 0 < len(sid) <= MAX_SESSION_ID
            and isinstance(until, int) and not isinstance(until, bool) and until > now_s}


def with_revoked(revoked: Revoked, sid: str, until: int, now_s: float) -> Revoked:
    """`sid` revoked until `until` (an earlier entry is never shortened); expired entries pruned."""
    kept = {key: value for key, value in revoked.items() if value > now_s}
    kept[sid] = max(until, kept.get(sid, until))
    return kept


def revoked_document(revoked: Revoked) -> dict[str, Any]:
    return {"sessions": dict(revoked)}
