"""Client processes built on bench.rawio: closed-loop commanders, the realistic open-loop judge
driver, raw WebSocket readers and a periodic audit reader. Each runs in bench.client_process's shell.
"""
from __future__ import annotations

import asyncio
import random
import time
from array import array
from collections import Counter
from typing import Any

import orjson

from bench.client_process import NAMES, PRESET_S, Ready, WaitGo, init_route, run_client
from bench.credentials import admin_token
from bench.rawio import HttpConn, http_connect, ws_open


async def cmd(conn: HttpConn, body: dict[str, Any]) -> tuple[int, bytes]:
    return await conn.request("POST", "/api/cmd", orjson.dumps(body))


async def setup_box(conn: HttpConn, box: int, start_timer: bool) -> tuple[str, int]:
    status, reply = await cmd(conn, init_route(box))
    if status != 200:
        raise RuntimeError(f"INIT_ROUTE box {box}: {status} {reply[:200]!r}")
    if start_timer:
        _s, raw = await conn.request("GET", f"/api/state/{box}")
        status, reply = await cmd(conn, {"boxId": box, "type": "START_TIMER",
                                         "sessionId": orjson.loads(raw)["sessionId"]})
        if status != 200:
            raise RuntimeError(f"START_TIMER box {box}: {status} {reply[:200]!r}")
    _s, raw = await conn.request("GET", f"/api/state/{box}")
    state = orjson.loads(raw)
    return state["sessionId"], state["boxVersion"]


def body_for(kind: str, box: int, session_id: str, rng: random.Random, n: int, t0: float) -> dict[str, Any]:
    body: dict[str, Any] = {"boxId": box, "type": kind, "sessionId": session_id}
    if kind == "TIMER_SYNC":  # unique per send: it is the tag matched in the echo
        body["remaining"] = round(max(0.0, PRESET_S - (time.monotonic() - t0)), 3)
    elif kind == "PROGRESS_UPDATE":  # +1 then -1: holdCount never reaches holdsCount
        body["delta"] = 1 if n % 2 == 0 else -1
    elif kind == "SUBMIT_SCORE":
        body["competitor"] = NAMES[n % len(NAMES)]
        body["score"] = round(rng.uniform(0, 50), 1)
    return body


# ---------------------------------------------------------------- closed loop (saturation, durable, fan-out)

def closed_loop_proc(idx: int, cfg: dict[str, Any], queue: Any, go: Any) -> None:
    """One keep-alive connection per box in cfg["boxes"]; send, await the reply, send the next."""
    run_client(idx, cfg, queue, go, _closed_loop)


async def _closed_loop(_x: Any, cfg: dict[str, Any], ready: Ready, wait_go: WaitGo) -> dict[str, Any]:
    types = [t for t, _ in cfg["mix"]]
    weights = [w for _, w in cfg["mix"]]
    latencies = {t: array("d") for t in [*types, "START_TIMER"]}
    errors: Counter[str] = Counter()
    token = admin_token()
    conns = [await http_connect(cfg["url"], token) for _ in cfg["boxes"]]
    by_box: dict[int, tuple[str, int]] = {}
    for c, b in zip(conns, cfg["boxes"]):  # a box listed twice gets two clients sharing one session
        if b not in by_box:
            by_box[b] = await setup_box(c, b, cfg.get("start_timer", True))
    sessions = [by_box[b] for b in cfg["boxes"]]
    ready({})
    await wait_go()
    t0 = time.monotonic()
    deadline = t0 + cfg["duration_s"]

    async def one(conn: HttpConn, box: int, session_id: str) -> None:
        rng = random.Random(cfg.get("seed", 0) * 10007 + box)
        counters: Counter[str] = Counter()
        while time.monotonic() < deadline:
            kind = rng.choices(types, weights)[0]
            body = orjson.dumps(body_for(kind, box, session_id, rng, counters[kind], t0))
            counters[kind] += 1
            started = time.perf_counter()
            try:
                status, reply = await conn.request("POST", "/api/cmd", body)
            except ConnectionError as exc:
                errors[f"{kind}:{exc}"] += 1
                return
            latencies[kind].append(time.perf_counter() - started)
            if status != 200 or not reply.startswith(b'{"status":"ok"'):
                errors[f"{kind}:{status}:{reply[:60].decode(errors='replace')}"] += 1
            if kind == "SUBMIT_SCORE" and cfg.get("restart_clock"):
                # As at a real wall: the score stops the clock, the next climber starts it again, so
                # most TIMER_SYNCs meet a running clock (and only relay), as they do in competition.
                started = time.perf_counter()
                status, reply = await conn.request("POST", "/api/cmd", orjson.dumps(
                    {"boxId": box, "type": "START_TIMER", "sessionId": session_id}))
                latencies["START_TIMER"].append(time.perf_counter() - started)
                if status != 200:
                    errors[f"START_TIMER:{status}"] += 1

    await asyncio.gather(*(one(c, b, s) for c, b, (s, _v) in zip(conns, cfg["boxes"], sessions)))
    for c in conns:
        if c.transport:
            c.transport.close()
    return {"latencies": latencies, "errors": dict(errors)}


# ---------------------------------------------------------------- open loop at a fixed rate (durable)

def fixed_rate_proc(idx: int, cfg: dict[str, Any], queue: Any, go: Any) -> None:
    """SUBMIT_SCORE at cfg["rate_per_s"] over cfg["boxes"] whatever the replies do, on
    cfg["conns_per_box"] keep-alive connections per box. Latency counts from when a command was due,
    so a server that falls behind shows it (no coordinated omission)."""
    run_client(idx, cfg, queue, go, _fixed_rate)


async def _fixed_rate(_x: Any, cfg: dict[str, Any], ready: Ready, wait_go: WaitGo) -> dict[str, Any]:
    token = admin_token()
    boxes = cfg["boxes"]
    sessions = {}
    free: dict[int, asyncio.Queue[HttpConn]] = {box: asyncio.Queue() for box in boxes}
    for box in boxes:
        conns = [await http_connect(cfg["url"], token) for _ in range(cfg["conns_per_box"])]
        sessions[box] = (await setup_box(conns[0], box, False))[0]
        for conn in conns:
            free[box].put_nowait(conn)
    latencies, errors, rng = array("d"), Counter[str](), random.Random(cfg.get("seed", 0))
    waits = array("d")  # due -> written: the sender's own lag plus waiting for a free connection
    ready({})
    await wait_go()
    t0 = time.perf_counter()
    total = int(cfg["rate_per_s"] * cfg["duration_s"])

    async def one(n: int, due: float) -> None:
        box = boxes[n % len(boxes)]
        conn = await free[box].get()
        waits.append(time.perf_counter() - due)
        try:
            status, reply = await cmd(conn, body_for("SUBMIT_SCORE", box, sessions[box], rng, n, t0))
        except ConnectionError as exc:
            errors[str(exc)] += 1
            return
        latencies.append(time.perf_counter() - due)
        free[box].put_nowait(conn)
        if status != 200 or not reply.startswith(b'{"status":"ok"'):
            errors[f"{status}:{reply[:60].decode(errors='replace')}"] += 1

    tasks: set[asyncio.Task[None]] = set()
    max_lag = 0.0
    for n in range(total):
        due = t0 + n / cfg["rate_per_s"]
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        max_lag = max(max_lag, time.perf_counter() - due)
        task = asyncio.create_task(one(n, due))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    await asyncio.gather(*tasks)  # those still out: finished ones left the set, so none is kept alive
    return {"latencies": {"SUBMIT_SCORE": latencies}, "waits": waits, "errors": dict(errors),
            "max_send_lag_s": max_lag, "wall_s": time.perf_counter() - t0}


# ---------------------------------------------------------------- realistic open-loop judge driver

def judge_driver_proc(idx: int, cfg: dict[str, Any], queue: Any, go: Any) -> None:
    """Per box: TIMER_SYNC at 1 or 2/s on a running clock, PROGRESS_UPDATE ~cfg["progress_per_s"],
    SUBMIT_SCORE every cfg["score_every_s"] (then START_TIMER, as a judge would). Two connections per
    box (clock tablet, scoring tablet). Runs cfg["phases"] durations back to back, gap_s apart."""
    run_client(idx, cfg, queue, go, _judge_driver)


async def _judge_driver(_x: Any, cfg: dict[str, Any], ready: Ready, wait_go: WaitGo) -> dict[str, Any]:
    token = admin_token()
    boxes = cfg["boxes"]
    clock_conns = {b: await http_connect(cfg["url"], token) for b in boxes}
    score_conns = {b: await http_connect(cfg["url"], token) for b in boxes}
    setup = {b: await setup_box(score_conns[b], b, True) for b in boxes}
    version = {b: v for b, (_s, v) in setup.items()}
    ready({"start_versions": dict(version)})
    await wait_go()
    out: list[dict[str, Any]] = []
    t_all = time.monotonic()
    for p, duration in enumerate(cfg["phases"]):
        if p:
            await asyncio.sleep(cfg["gap_s"])
        sends: dict[tuple[int, int, float], float] = {}  # (box, 1=TIMER_SYNC/2=versioned, tag) -> sent
        lat: dict[str, array] = {}
        errors: Counter[str] = Counter()
        lag = array("d")
        t0 = time.monotonic()
        end = t0 + duration

        async def send(conn: HttpConn, box: int, body: dict[str, Any], due: float) -> bool:
            kind = body["type"]
            sent = time.monotonic()
            lag.append(sent - due)
            try:
                status, reply = await cmd(conn, body)
            except ConnectionError as exc:
                errors[f"{kind}:{exc}"] += 1
                return False
            lat.setdefault(kind, array("d")).append(time.monotonic() - sent)
            if status != 200 or not reply.startswith(b'{"status":"ok"'):
                errors[f"{kind}:{status}:{reply[:60].decode(errors='replace')}"] += 1
                return False
            if kind == "TIMER_SYNC":
                sends[(box, 1, body["remaining"])] = sent
            else:
                version[box] += 1  # the only writer of the box: each ok changes it by one version
                sends[(box, 2, float(version[box]))] = sent
            return True

        async def clock(i: int, box: int) -> None:
            interval = 1.0 / (1 + i % 2)
            due = t0 + interval * i / len(boxes)
            n = 0
            while due < end:
                await asyncio.sleep(max(0.0, due - time.monotonic()))
                body = {"boxId": box, "type": "TIMER_SYNC", "sessionId": setup[box][0],
                        "remaining": round(PRESET_S - (time.monotonic() - t_all) + box * 1e-4 + n * 1e-7, 7)}
                await send(clock_conns[box], box, body, due)
                due += interval
                n += 1

        async def scoring(i: int, box: int) -> None:
            rng = random.Random(i * 7919 + p)
            due = t0 + rng.uniform(0.0, 3.0)
            next_score = t0 + cfg["score_every_s"] * (i + 1) / len(boxes)
            n = 0
            while due < end:
                await asyncio.sleep(max(0.0, due - time.monotonic()))
                sid = setup[box][0]
                if time.monotonic() >= next_score:
                    next_score += cfg["score_every_s"]
                    await send(score_conns[box], box, {"boxId": box, "type": "SUBMIT_SCORE", "sessionId": sid,
                                                       "competitor": NAMES[n % len(NAMES)],
                                                       "score": round(rng.uniform(0, 50), 1)}, due)
                    await send(score_conns[box], box, {"boxId": box, "type": "START_TIMER", "sessionId": sid}, due)
                else:
                    await send(score_conns[box], box, {"boxId": box, "type": "PROGRESS_UPDATE", "sessionId": sid,
                                                       "delta": 1 if n % 2 == 0 else -1}, due)
                n += 1
                due += rng.expovariate(cfg["progress_per_s"])

        await asyncio.gather(*(clock(i, b) for i, b in enumerate(boxes)), *(scoring(i, b) for i, b in enumerate(boxes)))
        out.append({"sends": sends, "latencies": lat, "errors": dict(errors), "tracked_versions": dict(version),
                    "max_send_lag_s": max(lag, default=0.0), "wall_s": time.monotonic() - t0})
    finals = {}
    for b in boxes:
        _s, raw = await score_conns[b].request("GET", f"/api/state/{b}")
        finals[b] = orjson.loads(raw)["boxVersion"]
    return {"phases": out, "final_versions": finals, "tracked_versions": dict(version)}


# ---------------------------------------------------------------- raw WebSocket readers

class Sink:
    __slots__ = ("bytes", "frames", "kinds", "socks", "tags", "times")

    def __init__(self) -> None:
        self.frames = self.bytes = 0
        self.socks, self.kinds, self.tags, self.times = array("i"), array("b"), array("d"), array("d")

    def reset(self) -> None:
        self.__init__()  # type: ignore[misc]


def ws_readers_proc(idx: int, cfg: dict[str, Any], queue: Any, go: Any, control: Any) -> None:
    """cfg["sockets"]: [(mode, path, auth)], mode "box"/"pub" (tagged) or "count". One message on
    `control` ({"finals": {box: version}, "drain_s"}) ends the run: the reader returns what it saw since
    go once every tagged socket reached its box's final version (or drain_s passed)."""
    run_client(idx, cfg, queue, go, _ws_readers, control)


async def _ws_readers(control: Any, cfg: dict[str, Any], ready: Ready, wait_go: WaitGo) -> dict[str, Any]:
    sink = Sink()
    gate = asyncio.Semaphore(32)
    specs = cfg["sockets"]

    async def open_one(i: int, spec: tuple[str, str, str | None]) -> Any:
        async with gate:
            return await ws_open(cfg["url"], i, spec[0], spec[1], spec[2], sink)

    readers = await asyncio.gather(*(open_one(i, s) for i, s in enumerate(specs)))
    ready({"sockets": len(readers)})
    await wait_go()
    sink.frames = sink.bytes = 0  # counts restart at go; tagged frames are kept (an echo may beat this line)
    t0 = time.monotonic()
    message = await asyncio.get_running_loop().run_in_executor(None, control.get)
    stopped = time.monotonic()
    frames_at_stop = sink.frames
    finals: dict[int, int] = message.get("finals") or {}
    boxes = [int(s[1].split("?")[0].rsplit("/", 1)[1]) if s[0] != "count" else -1 for s in specs]
    drain_until = time.monotonic() + message.get("drain_s", 0.0)
    while finals and time.monotonic() < drain_until:
        last = [-1] * len(specs)
        for s, k, t in zip(sink.socks, sink.kinds, sink.tags):
            if k != 1 and t > last[s]:
                last[s] = int(t)
        if all(specs[i][0] == "count" or readers[i].closed or last[i] >= finals.get(b, -1)
               for i, b in enumerate(boxes)):
            break
        await asyncio.sleep(0.1)
    for r in readers:
        if r.transport:
            r.transport.close()
    return {"frames": sink.frames, "frames_at_stop": frames_at_stop, "bytes": sink.bytes, "window_s": stopped - t0,
            "socks": sink.socks, "kinds": sink.kinds, "tags": sink.tags, "times": sink.times,
            "closed": [r.closed for r in readers], "specs": [(s[0], s[1].split("?")[0]) for s in specs]}


# ---------------------------------------------------------------- periodic admin audit reads

def audit_poller_proc(idx: int, cfg: dict[str, Any], queue: Any, go: Any) -> None:
    """GET /api/admin/audit/events?limit=..[&includePayload=1] every cfg["interval_s"] (0 = back to back)
    within each of cfg["windows"] ([start s after go, length s]), or for cfg["duration_s"] after
    cfg["delay_s"]."""
    run_client(idx, cfg, queue, go, _audit_poller)


async def _audit_poller(_x: Any, cfg: dict[str, Any], ready: Ready, wait_go: WaitGo) -> dict[str, Any]:
    conn = await http_connect(cfg["url"], admin_token())
    path = (f"/api/admin/audit/events?limit={cfg['limit']}" + ("&includePayload=1" if cfg.get("payload") else "")
            + (f"&boxId={cfg['box']}" if cfg.get("box") is not None else ""))
    latencies = array("d")
    errors: Counter[str] = Counter()
    sizes = 0
    ready({})
    await wait_go()
    go = time.monotonic()
    for start, length in cfg.get("windows") or [(cfg.get("delay_s", 0.0), cfg["duration_s"])]:
        await asyncio.sleep(max(0.0, go + start - time.monotonic()))
        end = go + start + length
        due = time.monotonic()
        while max(due, time.monotonic()) < end and len(latencies) < cfg.get("max_reads", 1 << 30):
            await asyncio.sleep(max(0.0, due - time.monotonic()))  # never into the time after the window
            started = time.perf_counter()
            status, raw = await conn.request("GET", path)
            latencies.append(time.perf_counter() - started)
            sizes += len(raw)
            if status != 200:
                errors[f"http_{status}"] += 1
            elif not raw.startswith(b"[{"):
                errors["empty_answer"] += 1
            due += cfg.get("interval_s", 0.0)
    return {"latencies": latencies, "errors": dict(errors), "bytes_mean": sizes // max(1, len(latencies))}
