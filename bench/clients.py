"""The closed-loop command client on aiohttp, which makes the audit scenario's real traffic.

Every other scenario uses bench.clients_raw. This one stays for the audit log: aiohttp sends a
User-Agent, so the events it leaves carry one, as a tablet's do, and the audit scenario copies those
events up to a million times (bench.logfile).
"""
from __future__ import annotations

import asyncio
import random
import time
from array import array
from collections import Counter
from typing import Any

import orjson
from aiohttp import ClientSession, ClientTimeout, TCPConnector

from bench.client_process import NAMES, PRESET_S, Ready, WaitGo, init_route, run_client
from bench.credentials import admin_headers

JSON = {"Content-Type": "application/json"}


def _session(limit: int = 0) -> ClientSession:
    # limit=0: websockets hold their connection, and the default cap of 100 would stall the 101st.
    return ClientSession(connector=TCPConnector(limit=limit, force_close=False), headers=admin_headers(),
                         timeout=ClientTimeout(total=60), json_serialize=lambda v: orjson.dumps(v).decode())


async def post(session: ClientSession, url: str, body: dict[str, Any]) -> tuple[int, Any]:
    async with session.post(url + "/api/cmd", data=orjson.dumps(body), headers=JSON) as response:
        raw = await response.read()
        try:
            return response.status, orjson.loads(raw)
        except orjson.JSONDecodeError:
            return response.status, raw[:200].decode(errors="replace")


async def get_state(session: ClientSession, url: str, box: int) -> dict[str, Any]:
    async with session.get(f"{url}/api/state/{box}") as response:
        return orjson.loads(await response.read())


async def setup_box(session: ClientSession, url: str, box: int, start_timer: bool) -> tuple[str, int]:
    """INIT_ROUTE (+ START_TIMER so the clock runs); returns (sessionId, boxVersion)."""
    status, reply = await post(session, url, init_route(box))
    if status != 200 or reply != {"status": "ok"}:
        raise RuntimeError(f"INIT_ROUTE box {box}: {status} {reply}")
    state = await get_state(session, url, box)
    if start_timer:
        status, reply = await post(session, url, {"boxId": box, "type": "START_TIMER",
                                                  "sessionId": state["sessionId"]})
        if status != 200 or reply != {"status": "ok"}:
            raise RuntimeError(f"START_TIMER box {box}: {status} {reply}")
        state = await get_state(session, url, box)
    return state["sessionId"], state["boxVersion"]


# ---------------------------------------------------------------- closed-loop command clients

def closed_loop_proc(idx: int, cfg: dict[str, Any], queue: Any, go: Any) -> None:
    """One closed-loop client per box in cfg["boxes"]: send, await the reply, send the next.

    cfg: url, boxes, mix [(type, weight)], duration_s and/or max_per_box, start_timer, seed.
    """
    run_client(idx, cfg, queue, go, _closed_loop)


async def _closed_loop(_extra: Any, cfg: dict[str, Any], ready: Ready, wait_go: WaitGo) -> dict[str, Any]:
    url = cfg["url"]
    types = [t for t, _ in cfg["mix"]]
    weights = [w for _, w in cfg["mix"]]
    latencies: dict[str, array] = {t: array("d") for t in types}
    errors: Counter[str] = Counter()
    async with _session(limit=len(cfg["boxes"]) + 2) as session:
        sessions = [await setup_box(session, url, box, cfg.get("start_timer", True)) for box in cfg["boxes"]]
        ready({"boxes": cfg["boxes"]})
        await wait_go()
        t0 = time.monotonic()
        deadline = t0 + cfg.get("duration_s", 3600.0)
        max_n = cfg.get("max_per_box", 1 << 62)

        async def one_box(box: int, session_id: str) -> None:
            rng = random.Random(cfg.get("seed", 0) * 10007 + box)
            up, scored = True, 0
            n = 0
            while n < max_n and time.monotonic() < deadline:
                kind = rng.choices(types, weights)[0]
                body: dict[str, Any] = {"boxId": box, "type": kind, "sessionId": session_id}
                if kind == "TIMER_SYNC":  # what a counting tablet sends about every second
                    body["remaining"] = round(max(0.0, PRESET_S - (time.monotonic() - t0) - n * 0.001), 3)
                elif kind == "PROGRESS_UPDATE":  # +1 then -1: holdCount never reaches holdsCount
                    body["delta"] = 1 if up else -1
                    up = not up
                elif kind == "SUBMIT_SCORE":
                    body["competitor"] = NAMES[scored % len(NAMES)]
                    body["score"] = round(rng.uniform(0, 50), 1)
                    scored += 1
                elif kind == "REGISTER_TIME":
                    body["registeredTime"] = round(rng.uniform(30, 360), 1)
                started = time.perf_counter()
                try:
                    status, reply = await post(session, url, body)
                except Exception as exc:  # counted, never hidden
                    errors[f"{kind}:exception:{type(exc).__name__}"] += 1
                    await asyncio.sleep(0.01)
                    continue
                latencies[kind].append(time.perf_counter() - started)
                n += 1
                if status != 200:
                    errors[f"{kind}:http_{status}"] += 1
                elif not isinstance(reply, dict) or reply.get("status") != "ok":
                    reason = reply.get("reason") if isinstance(reply, dict) else "bad_body"
                    errors[f"{kind}:{reason}"] += 1

        await asyncio.gather(*(one_box(b, s) for b, (s, _v) in zip(cfg["boxes"], sessions)))
    return {"latencies": latencies, "errors": dict(errors)}

