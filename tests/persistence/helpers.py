"""Event lines as the persister writes them, shared by the storage tests of every backend."""
from __future__ import annotations

from typing import Any

import orjson


def event(box_id: int, seq: int, **extra: Any) -> dict[str, Any]:
    """An event line as the persister writes it: audit keys plus what replay needs."""
    return {
        "id": f"ev-{box_id}-{seq}",
        "createdAt": "2026-11-22T08:32:16.818205+00:00",
        "competitionId": 0,
        "boxId": box_id,
        "action": "PROGRESS_UPDATE",
        "actionId": None,
        "boxVersion": seq,
        "sessionId": f"session-{box_id}",
        "actorUsername": "judge1",
        "actorRole": "judge",
        "actorIp": "10.0.0.7",
        "actorUserAgent": "tablet",
        "payload": {"type": "PROGRESS_UPDATE", "boxId": box_id, "delta": 1},
        "seq": seq,
        "nowMs": 1_700_000_000_000 + seq,
        "cmd": {"type": "PROGRESS_UPDATE", "delta": 1},
        **extra,
    }


def line(box_id: int, seq: int, **extra: Any) -> bytes:
    return orjson.dumps(event(box_id, seq, **extra)) + b"\n"


def seqs(events: list[dict[str, Any]]) -> list[int]:
    return [e["seq"] for e in events]
