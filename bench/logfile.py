"""A big events.ndjson for the audit scenario, written directly in the shape of lines Belay wrote itself.

Synthetic lines go BEFORE the real ones, for box ids no checkpoint covers, so Belay replays them
at startup: each synthetic box starts with a copy of a real INIT_ROUTE line (seq 1, baseSessionId)
followed by copies of a real REGISTER_TIME line, seq and boxVersion increasing by one.
"""
from __future__ import annotations

import copy
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from bench.server import http_json

LOG_NAME = "events.ndjson"
STEP_MS = 50  # synthetic events 50 ms apart, all before the first real one


def build_log(storage_dir: Path, total: int, first_box: int, boxes: int) -> dict[str, Any]:
    """Prepend `total - real` synthetic events; returns counts and each synthetic box's final version."""
    path = storage_dir / LOG_NAME
    real_bytes = path.read_bytes()
    real = [orjson.loads(line) for line in real_bytes.splitlines() if line.strip()]
    init = next(e for e in real if e["action"] == "INIT_ROUTE")
    register = next(e for e in real if e["action"] == "REGISTER_TIME")
    synthetic = max(0, total - len(real))
    start_ms = min(e["nowMs"] for e in real) - (synthetic + 1) * STEP_MS
    sessions = {first_box + b: str(uuid.uuid4()) for b in range(boxes)}
    expected: dict[int, int] = {}
    out: list[bytes] = []
    for i in range(synthetic):
        box = first_box + i % boxes
        seq = expected.get(box, 0) + 1
        expected[box] = seq
        now_ms = start_ms + i * STEP_MS
        template = init if seq == 1 else register
        out.append(orjson.dumps(_event(template, box, seq, now_ms, sessions[box], i)) + b"\n")
    path.write_bytes(b"".join(out) + real_bytes)
    return {"events": synthetic + len(real), "synthetic": synthetic, "real": len(real),
            "log_mb": round(path.stat().st_size / 1048576, 1), "expected_versions": expected,
            "real_boxes": sorted({e["boxId"] for e in real})}


def _event(template: dict[str, Any], box: int, seq: int, now_ms: int, session_id: str, i: int) -> dict[str, Any]:
    event = copy.deepcopy(template)
    event.pop("newSessionId", None)
    event.pop("baseSessionId", None)
    event.update(id=str(uuid.uuid4()), createdAt=datetime.fromtimestamp(now_ms / 1000, tz=UTC).isoformat(),
                 boxId=box, boxVersion=seq, sessionId=session_id, seq=seq, nowMs=now_ms)
    cmd = event["cmd"]
    cmd["boxId"] = box
    if seq == 1:
        cmd.pop("sessionId", None)
        event["baseSessionId"] = session_id  # replay builds the default state with this session
    else:
        cmd["sessionId"] = session_id
        cmd["registeredTime"] = round(30 + (i * 7.3) % 300, 1)
    payload = event.get("payload")
    if isinstance(payload, dict):
        payload.update(boxId=box, boxVersion=seq, sessionId=session_id)
        if "registeredTime" in cmd and "registeredTime" in payload:
            payload["registeredTime"] = cmd["registeredTime"]
    return event


def verify_replayed(url: str, built: dict[str, Any]) -> dict[str, Any]:
    """Did Belay restore every box: the real ones from checkpoints, the synthetic ones by replay?"""
    _status, health = http_json(url + "/api/health")
    ok = 0
    for box, version in built["expected_versions"].items():
        _status, state = http_json(f"{url}/api/state/{box}")
        if isinstance(state, dict) and state.get("boxVersion") == version and state.get("initiated"):
            ok += 1
    expected_boxes = len(built["expected_versions"]) + len(built["real_boxes"])
    loaded = health.get("boxes_loaded") if isinstance(health, dict) else None
    return {"boxes_loaded": loaded, "boxes_expected": expected_boxes,
            "replayed_boxes_ok": ok, "replay_ok": ok == len(built["expected_versions"]) and loaded == expected_boxes}
