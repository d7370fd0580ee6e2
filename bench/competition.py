"""`python -m bench.competition DIR [--events N] [--boxes B]`: a stopped server's JSON storage
directory holding N events, for the migration scenario and `run.py migrate` by hand.

Every line is what a server writes (actors/events.py through the pure rules): each box starts with
an INIT_ROUTE, then judges' PROGRESS_UPDATE and REGISTER_TIME commands, with a SUBMIT_SCORE
now and then. The log rotates every `--rotate-mb` as a server's does, every box ends with a
checkpoint of its last state (so replay proves it), and users.json holds the bench's admin.
"""
from __future__ import annotations

import argparse
import time
import uuid
from pathlib import Path
from typing import Any

import orjson

from bench.client_process import init_route
from bench.credentials import seed_admin
from persistence.json.storage import DEFAULT_MAX_LOG_BYTES

START_MS = 1_767_225_600_000  # 2026-01-01, 50 ms between events


def build(root: Path, events: int, boxes: int, rotate_bytes: int = DEFAULT_MAX_LOG_BYTES) -> dict[str, Any]:
    """Write the directory; returns its figures."""
    from actors.events import encode_event
    from actors.messages import Origin
    from actors.rules import apply_command, default_state, parse_command
    from persistence.checkpoint_file import encode_checkpoint

    root.mkdir(parents=True, exist_ok=True)
    (root / "boxes").mkdir(exist_ok=True)
    origin = Origin("judge", "judge", "127.0.0.1", "bench.competition")
    states: dict[int, dict[str, Any]] = {}
    seqs: dict[int, int] = {}
    archive, written, pending, size = 0, 0, [], 0
    log = root / "events.ndjson"
    for i in range(events):
        box = i % boxes
        now_ms = START_MS + i * 50
        state = states.get(box) or default_state(str(uuid.uuid4()))
        seq = seqs.get(box, 0) + 1
        command = parse_command(_body(box, seq, i, state))
        outcome = apply_command(state, command, now_ms, str(uuid.uuid4()))
        line = encode_event(box_id=box, seq=seq, command=command, before=state, after=outcome.state,
                            now_ms=now_ms, origin=origin, echo=outcome.echo)
        states[box], seqs[box] = outcome.state, seq
        pending.append(line)
        size += len(line)
        written += 1
        if size >= rotate_bytes:
            archive += 1
            _write(root / f"events.{archive:06d}.ndjson", pending)
            pending, size = [], 0
    _write(log, pending)
    for box, state in states.items():
        (root / "boxes" / f"{box}.json").write_bytes(encode_checkpoint(box, seqs[box], state))
    seed_admin(root)
    total = sum(p.stat().st_size for p in root.glob("events*.ndjson"))
    return {"events": written, "boxes": len(states), "archives": archive, "log_mb": round(total / 2**20, 1)}


def _body(box: int, seq: int, i: int, state: dict[str, Any]) -> dict[str, Any]:
    if seq == 1:
        return init_route(box)
    session = state["sessionId"]
    kind = i % 10
    if kind == 9 and state.get("currentClimber"):
        return {"boxId": box, "type": "SUBMIT_SCORE", "sessionId": session, "score": 10 + i % 40,
                "registeredTime": 30 + i % 200, "competitor": state["currentClimber"]}
    if kind < 6:
        return {"boxId": box, "type": "PROGRESS_UPDATE", "sessionId": session, "delta": 1 if i % 3 else -1}
    return {"boxId": box, "type": "REGISTER_TIME", "sessionId": session,
            "registeredTime": round(30 + (i * 7.3) % 300, 1)}


def _write(path: Path, lines: list[bytes]) -> None:
    with open(path, "wb") as out:
        out.write(b"".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.competition", description=__doc__)
    parser.add_argument("directory", type=Path)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--boxes", type=int, default=15)
    args = parser.parse_args()
    if args.directory.exists() and any(args.directory.iterdir()):
        parser.error(f"{args.directory} is not empty")
    t0 = time.monotonic()
    figures = build(args.directory, args.events, args.boxes)
    print(orjson.dumps({**figures, "seconds": round(time.monotonic() - t0, 1)}).decode())


if __name__ == "__main__":
    main()
