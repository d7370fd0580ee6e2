"""SIGKILL soak: `run.py` killed at random moments under mixed load, restarted, checked each round.

`run_rounds(n, data_dir, spawn)` is used by the CI test (a few rounds) and by a soak
(BELAY_CRASH_ROUNDS=500 or more). `spawn(data_dir, env=...)` starts `run.py` and returns an
object with `.url`, `.kill()`, `.terminate()` (tests.conftest.spawn_server).

Load: per box two judge tablets sending PROGRESS_UPDATE, SUBMIT_SCORE, REGISTER_TIME with unique
actionIds, a TIMER_SYNC now and then (answered at once, not durable by itself), and occasionally an
INIT_ROUTE (new session: the other tablet picks it up). After each restart: every acknowledged
durable command's actionId is in the log exactly once, and its retry is a no-op; the live
version is the last logged one; every checkpoint parses; no (box, seq) or (box, boxVersion)
twice among version-bumping events.
"""
from __future__ import annotations

import asyncio
import os
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
from aiohttp import ClientError, ClientSession, ClientTimeout

from tests.conftest import ADMIN_PASSWORD

COMPETITORS = [{"nume": n} for n in ("Ana Pop", "Bogdan Ionescu", "Ștefan Dragomir", "Dan O'Connor")]
UNLIMITED = {"RATE_LIMITS": "0"}  # as many commands in flight as possible when the kill comes


def init_body(box: int, route: int = 1) -> dict[str, Any]:
    return {"boxId": box, "type": "INIT_ROUTE", "routeIndex": route, "holdsCount": 30, "routesCount": 2,
            "holdsCounts": [30, 35], "competitors": COMPETITORS, "timerPreset": "04:00",
            "categorie": f"Cat {box}"}


async def admin_session(url: str) -> ClientSession:
    async with ClientSession() as anonymous:
        async with anonymous.post(f"{url}/api/auth/login",
                                  json={"username": "admin", "password": ADMIN_PASSWORD}) as response:
            assert response.status == 200
            token = (await response.json())["access_token"]
    return ClientSession(headers={"Authorization": f"Bearer {token}"}, timeout=ClientTimeout(total=30))


async def post(session: ClientSession, url: str, body: dict[str, Any]) -> tuple[int, Any]:
    async with session.post(f"{url}/api/cmd", json=body) as response:
        return response.status, await response.json()


async def get_state(session: ClientSession, url: str, box: int) -> dict[str, Any]:
    async with session.get(f"{url}/api/state/{box}") as response:
        assert response.status == 200
        return await response.json()


def read_log(data: Path) -> list[dict[str, Any]]:
    lines: list[dict[str, Any]] = []
    for path in [*sorted(data.glob("events.*.ndjson")), data / "events.ndjson"]:
        if not path.exists():
            continue
        raw = path.read_bytes()
        assert raw == b"" or raw.endswith(b"\n"), f"{path.name} does not end at a line"
        lines.extend(orjson.loads(line) for line in raw.splitlines())
    return lines


async def _tablet(url: str, box: int, acked: list[tuple[int, str]], stop: asyncio.Event, rng: random.Random,
                  may_init: bool) -> None:
    try:
        session = await admin_session(url)
    except (TimeoutError, ClientError, OSError, AssertionError):
        return  # killed before this tablet logged in
    async with session:
        try:
            session_id = (await get_state(session, url, box))["sessionId"]
            n = 0
            while not stop.is_set():
                n += 1
                action_id = f"box{box}-{n}-{rng.random()}"
                roll = rng.random()
                if may_init and roll < 0.02:
                    body: dict[str, Any] = {**init_body(box, rng.choice([1, 2])), "actionId": action_id}
                    kind = "INIT_ROUTE"
                elif roll < 0.12:
                    kind = "TIMER_SYNC"
                    body = {"boxId": box, "sessionId": session_id, "type": kind, "remaining": rng.randint(1, 240)}
                else:
                    kind = rng.choice(["REGISTER_TIME", "PROGRESS_UPDATE", "SUBMIT_SCORE"])
                    body = {"boxId": box, "sessionId": session_id, "actionId": action_id, "type": kind}
                    if kind == "REGISTER_TIME":
                        body["registeredTime"] = float(n % 3600)
                    elif kind == "PROGRESS_UPDATE":
                        body["delta"] = rng.choice([1, 0.1, -1])
                    else:
                        body.update(competitor=rng.choice(COMPETITORS)["nume"], score=float(n % 30))
                status, reply = await post(session, url, body)
                if status == 200 and reply == {"status": "ok"} and kind != "TIMER_SYNC":
                    acked.append((box, action_id))  # TIMER_SYNC rides along: "ok" is not "durable"
                elif status == 200 and reply.get("status") == "ignored":
                    session_id = (await get_state(session, url, box))["sessionId"]  # someone re-INITed
        except (TimeoutError, ClientError, OSError):
            return  # the server was killed


async def run_rounds(n: int, data: Path, spawn: Callable[..., Any], *, boxes: int = 4, seed: int | None = None,
                     on_round: Callable[[int, dict[str, int]], None] | None = None,
                     log_of: Callable[[Path], list[dict[str, Any]]] = read_log) -> dict[str, int]:
    """n kill/restart rounds on `data`; raises AssertionError at the first violation. `log_of`
    reads every stored event (another storage mode reads its own)."""
    rng = random.Random(seed if seed is not None else int(os.environ.get("BELAY_CRASH_SEED", "0")) or None)
    server = spawn(data, env=UNLIMITED)
    async with await admin_session(server.url) as session:
        for box in range(boxes):
            assert (await post(session, server.url, init_body(box)))[0] == 200
    acked: list[tuple[int, str]] = []
    totals = {"rounds": 0, "acknowledged": 0, "retries_checked": 0, "log_events": 0, "lost": 0}
    for round_no in range(n):
        stop = asyncio.Event()
        tablets = [asyncio.create_task(_tablet(server.url, box, acked, stop, random.Random(rng.random()),
                                               may_init=(t == 0)))
                   for box in range(boxes) for t in range(2)]
        await asyncio.sleep(rng.uniform(0.05, 0.6))
        server.kill()
        stop.set()
        await asyncio.gather(*tablets)
        server.close() if hasattr(server, "close") else None

        server = spawn(data, env=UNLIMITED)
        log = log_of(data)
        action_ids = [e["actionId"] for e in log if e.get("actionId")]
        assert len(action_ids) == len(set(action_ids)), "an actionId was applied twice"
        pairs = [(e["boxId"], e["seq"]) for e in log if "seq" in e]
        assert len(pairs) == len(set(pairs)), "a (box, seq) pair appears twice"
        versions = [(e["boxId"], e["boxVersion"]) for e in log if e["action"] != "TIMER_SYNC" and "seq" in e]
        assert len(versions) == len(set(versions)), "a (box, boxVersion) pair appears twice"
        logged = set(action_ids)
        missing = [a for _b, a in acked if a not in logged]
        totals["lost"] = len(missing)
        assert not missing, f"acknowledged but not in the log: {missing[:5]}"
        async with await admin_session(server.url) as session:
            for box in range(boxes):
                live = await get_state(session, server.url, box)
                box_events = [e for e in log if e.get("boxId") == box and "seq" in e]
                last = max(box_events, key=lambda e: e["seq"])
                assert live["boxVersion"] == last["boxVersion"], (box, live["boxVersion"], last["boxVersion"])
                # Retries of commands acknowledged since the box's last INIT_ROUTE are no-ops.
                last_init = max((e["seq"] for e in box_events if e["action"] == "INIT_ROUTE"), default=0)
                since = {e["actionId"] for e in box_events if e["seq"] > last_init and e.get("actionId")}
                recent = [a for b, a in acked if b == box and a in since][-3:]
                for action_id in recent:
                    body = {"boxId": box, "type": "PROGRESS_UPDATE", "delta": 1, "actionId": action_id,
                            "sessionId": live["sessionId"]}
                    assert await post(session, server.url, body) == (200, {"status": "ok"})
                    totals["retries_checked"] += 1
                assert (await get_state(session, server.url, box))["boxVersion"] == live["boxVersion"]
        for checkpoint in (data / "boxes").glob("*.json"):
            orjson.loads(checkpoint.read_bytes())
        totals["rounds"] = round_no + 1
        totals["acknowledged"] = len(acked)
        totals["log_events"] = len(log)
        if on_round is not None:
            on_round(round_no, totals)
    assert server.terminate() == 0
    return totals
