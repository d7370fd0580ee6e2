"""Small builders shared by the storage tests."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from persistence.fs import FileSystem
from persistence.json_store import JsonStore, Recovered


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


def open_store(root: Path, fs: FileSystem | None = None, **kwargs: Any) -> JsonStore:
    """A store opened on `root`, discarding the recovery report."""
    store = JsonStore(root, fs=fs, **kwargs)
    store.open()
    return store


def reopen(root: Path) -> Recovered:
    """What a restart on `root` would recover (the store is closed again)."""
    store = JsonStore(root)
    recovered = store.open()
    store.close()
    return recovered
