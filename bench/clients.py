"""Client process entry points. Each runs in its own (spawned) process, pinned to the client core.

Protocol with the orchestrator, over one multiprocessing queue: ("ready", idx, info) once set up,
then wait for the shared `go` event, then ("result", idx, data) or ("error", idx, traceback).
Every result carries the process's own CPU seconds and wall time over the measured part.
"""
from __future__ import annotations

import asyncio
import os
import random
import resource
import time
import traceback
from array import array
from collections import Counter
from typing import Any, Awaitable, Callable

import orjson
from aiohttp import ClientSession, ClientTimeout, TCPConnector

from bench.credentials import admin_headers
from bench.server import prepare_process

JSON = {"Content-Type": "application/json"}
FIRST = ["Ana", "Bogdan", "Cris", "Dana", "Ștefan", "Ioana", "Mihai", "Elena", "Radu", "Sofia"]
LAST = ["Pop", "Ionescu", "O'Connor", "Dropu"]
NAMES = [f"{FIRST[i % 10]} {LAST[i % 4]} {i + 1:02d}" for i in range(30)]
PRESET_S = 99 * 60


def init_route(box: int) -> dict[str, Any]:
    return {"boxId": box, "type": "INIT_ROUTE", "routeIndex": 1, "holdsCount": 50, "routesCount": 1,
            "holdsCounts": [50], "competitors": [{"nume": n} for n in NAMES], "timerPreset": "99:00",
            "categorie": "Bench Seniors"}


# ---------------------------------------------------------------- process wrapper

def _run(idx: int, cfg: dict[str, Any], queue: Any, go: Any,
         body: Callable[[Any, dict[str, Any], Callable[[Any], None], Callable[[], Awaitable[None]]],
                        Awaitable[dict[str, Any]]],
         extra: Any = None) -> None:
    """Common shell: pinning, uvloop, ready/go handshake, CPU accounting, errors back to the parent."""
    prepare_process(cfg.get("cores"))
    try:
        import uvloop
        runner: Callable[[Awaitable[Any]], Any] = uvloop.run
    except ImportError:  # the harness still works, just with a slower client loop
        runner = asyncio.run

    async def main() -> None:
        measured: dict[str, float] = {}

        async def wait_go() -> None:
            await asyncio.get_running_loop().run_in_executor(None, go.wait)
            measured.update(t0=time.monotonic(), cpu0=_cpu_seconds())

        data = await body(extra, cfg, lambda info: queue.put(("ready", idx, info)), wait_go)
        cpu = _cpu_seconds()
        data["wall_s"] = time.monotonic() - measured.get("t0", time.monotonic())
        data["cpu_s"] = cpu - measured.get("cpu0", cpu)
        data["pid"] = os.getpid()
        queue.put(("result", idx, data))

    try:
        runner(main())
    except BaseException:  # anything, so the orchestrator never waits for a dead process
        queue.put(("error", idx, traceback.format_exc()))


def _cpu_seconds() -> float:
    """This process's user+system CPU; getrusage has µs resolution where os.times has 10 ms ticks."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


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
    _run(idx, cfg, queue, go, _closed_loop)


async def _closed_loop(_extra: Any, cfg: dict[str, Any], ready: Callable[[Any], None],
                       wait_go: Callable[[], Awaitable[None]]) -> dict[str, Any]:
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
                except Exception as exc:  # noqa: BLE001 - counted, never hidden
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


# ---------------------------------------------------------------- ws_fanout: driver and subscribers
