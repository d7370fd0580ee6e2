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
from aiohttp import ClientSession, ClientTimeout, TCPConnector, WSMsgType

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

def driver_proc(idx: int, cfg: dict[str, Any], queue: Any, go: Any) -> None:
    """Open loop: PROGRESS_UPDATE at cfg["rate"] per box for cfg["duration_s"]; send times by (box, version)."""
    _run(idx, cfg, queue, go, _driver)


async def _driver(_extra: Any, cfg: dict[str, Any], ready: Callable[[Any], None],
                  wait_go: Callable[[], Awaitable[None]]) -> dict[str, Any]:
    url, boxes = cfg["url"], cfg["boxes"]
    interval = 1.0 / cfg["rate"]
    per_box = max(1, round(cfg["duration_s"] * cfg["rate"]))
    sends: dict[tuple[int, int], float] = {}
    latencies = array("d")
    errors: Counter[str] = Counter()
    async with _session(limit=len(boxes) + 2) as session:
        setup = {box: await setup_box(session, url, box, start_timer=True) for box in boxes}
        ready({"start_versions": {box: v for box, (_s, v) in setup.items()}})
        await wait_go()
        t0 = time.monotonic()

        async def one_box(i: int, box: int) -> None:
            session_id, version = setup[box]
            due = t0 + interval * i / len(boxes)  # phases spread so the boxes do not fire together
            for k in range(per_box):
                await asyncio.sleep(max(0.0, due - time.monotonic()))
                due += interval
                body = {"boxId": box, "type": "PROGRESS_UPDATE", "sessionId": session_id,
                        "delta": 1 if k % 2 == 0 else -1}
                sent = time.monotonic()  # CLOCK_MONOTONIC: the same clock in every process
                try:
                    status, reply = await post(session, url, body)
                except Exception as exc:  # noqa: BLE001
                    errors[f"exception:{type(exc).__name__}"] += 1
                    continue
                latencies.append(time.monotonic() - sent)
                if status == 200 and isinstance(reply, dict) and reply.get("status") == "ok":
                    version += 1  # the only writer of this box: the k-th ok is version start+k
                    sends[(box, version)] = sent
                else:
                    errors[f"http_{status}:{reply.get('reason') if isinstance(reply, dict) else reply}"] += 1

        await asyncio.gather(*(one_box(i, b) for i, b in enumerate(boxes)))
        finals = {box: (await get_state(session, url, box))["boxVersion"] for box in boxes}
    return {"sends": sends, "latencies": latencies, "errors": dict(errors), "final_versions": finals}


def subscriber_proc(idx: int, cfg: dict[str, Any], queue: Any, go: Any, finals: Any) -> None:
    """Many sockets on /api/ws/{box}: receive times of every echo; stops once `finals` says where to."""
    _run(idx, cfg, queue, go, _subscribers, finals)


class _Socket:
    __slots__ = ("box", "start", "last", "versions", "times", "ooo", "echoes", "snapshots", "other", "closed")

    def __init__(self, box: int) -> None:
        self.box = box
        self.start = -1
        self.last = -1
        self.versions = array("i")
        self.times = array("d")
        self.ooo = 0
        self.echoes = self.snapshots = self.other = 0
        self.closed: str | None = None


async def _subscribers(finals_queue: Any, cfg: dict[str, Any], ready: Callable[[Any], None],
                       wait_go: Callable[[], Awaitable[None]]) -> dict[str, Any]:
    url = cfg["url"].replace("http://", "ws://")
    sockets = [_Socket(box) for box in cfg["socket_boxes"]]
    gate = asyncio.Semaphore(64)  # bounded connect burst: the server's accept queue is finite
    tasks: list[asyncio.Task[None]] = []
    async with _session(limit=0) as session:
        connected = asyncio.Event()
        pending = [len(sockets)]

        async def watch(sock: _Socket) -> None:
            async with gate:
                ws = await session.ws_connect(f"{url}/api/ws/{sock.box}", max_msg_size=0, autoping=True)
            try:
                first = await ws.receive()
                sock.start = sock.last = orjson.loads(first.data)["boxVersion"]
                pending[0] -= 1
                if pending[0] == 0:
                    connected.set()
                async for msg in ws:
                    now = time.monotonic()  # first thing: the receive time of this frame
                    if msg.type != WSMsgType.TEXT:
                        sock.other += 1
                        continue
                    data: str = msg.data
                    if data.startswith('{"type":"STATE_SNAPSHOT"'):
                        sock.snapshots += 1  # big frame: counted, not parsed (keeps the client cheap)
                        continue
                    frame = orjson.loads(data)
                    if frame.get("type") != "PROGRESS_UPDATE":
                        sock.other += 1
                        continue
                    version = frame["boxVersion"]
                    sock.echoes += 1
                    if version < sock.last:
                        sock.ooo += 1
                    sock.last = max(sock.last, version)
                    sock.versions.append(version)
                    sock.times.append(now)
                sock.closed = f"closed:{ws.close_code}"
            finally:
                await ws.close()

        tasks = [asyncio.create_task(watch(s)) for s in sockets]
        waiter = asyncio.create_task(connected.wait())
        done, _ = await asyncio.wait([waiter, *tasks], timeout=cfg.get("connect_timeout_s", 120),
                                     return_when=asyncio.FIRST_COMPLETED)
        if waiter not in done:
            failed = [t for t in done if t is not waiter and t.exception()]
            raise RuntimeError(f"sockets did not connect: {failed[0].exception() if failed else 'timeout'}")
        ready({"sockets": len(sockets)})
        await wait_go()
        loop = asyncio.get_running_loop()
        final: dict[int, int] = await loop.run_in_executor(None, finals_queue.get)
        drain_until = time.monotonic() + cfg.get("drain_s", 10.0)
        while time.monotonic() < drain_until and any(s.last < final[s.box] and s.closed is None for s in sockets):
            await asyncio.sleep(0.05)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return {"sockets": [(s.box, s.start, s.versions, s.times, s.ooo, s.echoes, s.snapshots, s.other, s.closed)
                        for s in sockets]}


# ---------------------------------------------------------------- audit reads

def audit_reader_proc(idx: int, cfg: dict[str, Any], queue: Any, go: Any) -> None:
    """cfg["reads"] sequential GET /api/admin/audit/events?limit=..&includePayload=.."""
    _run(idx, cfg, queue, go, _audit_reader)


async def _audit_reader(_extra: Any, cfg: dict[str, Any], ready: Callable[[Any], None],
                        wait_go: Callable[[], Awaitable[None]]) -> dict[str, Any]:
    query = f"limit={cfg['limit']}" + ("&includePayload=1" if cfg["payload"] else "")
    target = f"{cfg['url']}/api/admin/audit/events?{query}"
    latencies = array("d")
    errors: Counter[str] = Counter()
    sizes: list[int] = []
    async with _session(limit=2) as session:
        ready({})
        await wait_go()
        for _ in range(cfg["reads"]):
            started = time.perf_counter()
            async with session.get(target) as response:
                raw = await response.read()
            latencies.append(time.perf_counter() - started)
            sizes.append(len(raw))
            if response.status != 200:
                errors[f"http_{response.status}"] += 1
            elif len(orjson.loads(raw)) != cfg["limit"]:
                errors["short_answer"] += 1
    return {"latencies": latencies, "errors": dict(errors), "bytes_mean": sum(sizes) // max(1, len(sizes))}
