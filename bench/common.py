"""What every scenario shares: settings, spawned client groups, result lines, targets."""
from __future__ import annotations

import multiprocessing
import queue as queue_module
import sys
import time
from array import array
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bench import clients_raw
from bench.server import Affinity, BelayServer, CpuWindow
from bench.stats import latency_summary, pct_of_core

BOXES = list(range(15))
CLIENT_PROCS = 3
READER_PROCS = 4  # WebSocket reader processes
SATURATED_PCT = 90.0
MIXED = [("TIMER_SYNC", 85), ("PROGRESS_UPDATE", 13), ("SUBMIT_SCORE", 2)]
DURABLE = [("SUBMIT_SCORE", 1)]
REAL_TRAFFIC = [("PROGRESS_UPDATE", 5), ("REGISTER_TIME", 3), ("SUBMIT_SCORE", 2)]
TURNS = 3  # commands without, then with audit reads, this many times each
WINDOW_MARGIN_S = 0.2  # audit reads keep this far from a phase's edges (the phases drift by ms)


@dataclass(frozen=True, slots=True)
class Settings:
    quick: bool
    affinity: Affinity
    storage_fs: str
    mode: str = "json"  # STORAGE_MODE of the servers the scenario starts
    database_url: str = ""  # STORAGE_MODE=postgres: where (bench/postgres.py)

    def storage(self) -> dict[str, Any]:
        """BelayServer's arguments for this mode."""
        return {"mode": self.mode, "database_url": self.database_url}

    def pick(self, full: Any, quick: Any) -> Any:
        return quick if self.quick else full


def progress(text: str) -> None:
    print(f"[bench] {text}", file=sys.stderr, flush=True)


class ClientGroup:
    """Spawned client processes sharing one result queue and one `go` event."""

    def __init__(self, settings: Settings) -> None:
        self.mp = multiprocessing.get_context("spawn")  # no inherited event loop or sockets
        self.queue = self.mp.Queue()
        self.go_event = self.mp.Event()
        self.cores = settings.affinity.clients
        self.procs: list[Any] = []
        self.ready: dict[int, Any] = {}
        self.results: dict[int, Any] = {}

    def launch(self, target: Callable[..., None], cfg: dict[str, Any], *extra: Any) -> int:
        idx = len(self.procs)
        proc = self.mp.Process(target=target, args=(idx, {**cfg, "cores": self.cores}, self.queue,
                                                    self.go_event, *extra), daemon=True)
        proc.start()
        self.procs.append(proc)
        return idx

    def _pump(self, done: Callable[[], bool], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not done():
            if time.monotonic() > deadline:
                raise TimeoutError("client processes did not report in time")
            try:
                kind, idx, data = self.queue.get(timeout=0.5)
            except queue_module.Empty:
                dead = [i for i, p in enumerate(self.procs) if p.exitcode not in (None, 0) and i not in self.results]
                if dead:
                    raise RuntimeError(f"client process {dead[0]} died (exit {self.procs[dead[0]].exitcode})") from None
                continue
            if kind == "error":
                raise RuntimeError(f"client process {idx} failed:\n{data}")
            (self.ready if kind == "ready" else self.results)[idx] = data

    def wait_ready(self, indices: list[int], timeout: float = 180.0) -> list[Any]:
        self._pump(lambda: all(i in self.ready for i in indices), timeout)
        return [self.ready[i] for i in indices]

    def go(self) -> None:
        self.go_event.set()

    def collect(self, indices: list[int], timeout: float) -> list[Any]:
        self._pump(lambda: all(i in self.results for i in indices), timeout)
        return [self.results[i] for i in indices]

    def close(self) -> None:
        for proc in self.procs:
            proc.join(timeout=10)
            if proc.is_alive():  # only our own children, by handle
                proc.terminate()
                proc.join(timeout=5)


def client_cpu(results: list[dict[str, Any]], names: list[str]) -> tuple[dict[str, float], list[str]]:
    cpu = {name: pct_of_core(r["cpu_s"], r["wall_s"]) for name, r in zip(names, results)}
    warnings = [f"client process {name} used {pct:.0f}% of a core: it may be the bottleneck"
                for name, pct in cpu.items() if pct > SATURATED_PCT]
    return cpu, warnings


def line(settings: Settings, scenario: str, variant: str, parameters: dict[str, Any], duration_s: float,
          counts: dict[str, Any], latency: dict[str, Any], server_cpu: float, client_cpu: dict[str, float],
          rss_mb: float, warnings: list[str], cpu_window_s: float | None = None, **extra: Any) -> dict[str, Any]:
    window = duration_s if cpu_window_s is None else cpu_window_s
    if window < 1.0:  # /proc/<pid>/stat counts 10 ms ticks: a shorter window gives noise, not a number
        warnings.append(f"server CPU window only {window * 1000:.0f} ms: server_cpu_pct is tick noise")
    for w in warnings:
        progress(f"WARNING {scenario} {variant}: {w}")
    return {"scenario": scenario, "variant": variant, "quick": settings.quick, "parameters": parameters,
            "duration_s": round(duration_s, 2), "counts": counts, "latency_ms": latency, **extra,
            "server_cpu_pct": server_cpu, "client_cpu_pct": client_cpu,
            "client_cpu_pct_max": max(client_cpu.values(), default=0.0), "server_max_rss_mb": rss_mb,
            "cpu_window_s": round(window, 3), "affinity": settings.affinity.note,
            "storage_fs": settings.storage_fs, "warnings": warnings}


def run_closed_loop(settings: Settings, server: BelayServer, procs: list[list[int]], mix: list[tuple[str, int]],
                    duration_s: float, start_timer: bool, probe: Callable[[], Any] | None = None
                    ) -> tuple[list[dict[str, Any]], float, float, tuple[Any, Any]]:
    """Raw closed-loop clients over `procs` (one box list per process):
    (results, server CPU %, window s, (probe() at go, probe() after))."""
    group = ClientGroup(settings)
    try:
        # with clock syncs in the mix, scores restart the clock
        restart_clock = start_timer and any(t == "TIMER_SYNC" for t, _ in mix)
        ids = [group.launch(clients_raw.closed_loop_proc, {"url": server.url, "boxes": boxes, "mix": mix, "seed": i,
                                                           "duration_s": duration_s, "start_timer": start_timer,
                                                           "restart_clock": restart_clock})
               for i, boxes in enumerate(procs)]
        group.wait_ready(ids)
        before = probe() if probe else None
        window = CpuWindow(server)
        group.go()
        results = group.collect(ids, timeout=duration_s + 120)
        wall, server_cpu = window.close()
        after = probe() if probe else None
    finally:
        group.close()
    return results, server_cpu, wall, (before, after)


def alternating_phases(total_s: float, gap_s: float, turns: int = TURNS) -> tuple[list[float], list[list[float]]]:
    """The judge driver's phases, without and with audit reads in turn (`turns` of each, `total_s`
    per kind), and the audit poller's windows [start after go, length] inside the "with" phases.
    Taking turns makes a slow spell of the machine fall on both kinds, not on one."""
    turn = total_s / turns
    windows = [[(2 * i + 1) * (turn + gap_s) + WINDOW_MARGIN_S, turn - 2 * WINDOW_MARGIN_S] for i in range(turns)]
    return [turn] * (2 * turns), windows


def pool_phases(phases: list[dict[str, Any]]) -> dict[str, Any]:
    """Several of the judge driver's phases as one: sends, latencies and errors together, walls summed."""
    latencies, errors = merge_closed_loop(phases)  # the same "latencies" and "errors" keys
    return {"sends": {key: sent for phase in phases for key, sent in phase["sends"].items()},
            "latencies": latencies, "errors": dict(errors),
            "max_send_lag_s": max(phase["max_send_lag_s"] for phase in phases),
            "wall_s": sum(phase["wall_s"] for phase in phases)}


def reply_p99_ms(phase: dict[str, Any]) -> float | None:
    """Command p99 (sent -> reply) of one of the judge driver's phases."""
    return latency_summary(x for values in phase["latencies"].values() for x in values)["p99"]


def merge_closed_loop(results: list[dict[str, Any]]) -> tuple[dict[str, array], Counter[str]]:
    merged: dict[str, array] = {}
    errors: Counter[str] = Counter()
    for r in results:
        for kind, values in r["latencies"].items():
            merged.setdefault(kind, array("d")).extend(values)
        errors.update(r["errors"])
    return merged, errors


def split(boxes: list[int], parts: int) -> list[list[int]]:
    return [boxes[i::parts] for i in range(parts) if boxes[i::parts]]



def target(what: str, value: float | None, op: str, limit: float) -> dict[str, Any]:
    """A target printed next to its figure: never a failure, just met / MISSED."""
    met = None if value is None else (value <= limit if op == "<=" else value >= limit)
    return {"what": what, "value": value, "op": op, "target": limit, "met": met}


def post_json(url: str, body: dict[str, Any] | None = None) -> Any:
    """A blocking POST for the orchestrator (spectator token, broadcaster trigger)."""
    import json
    import urllib.request
    request = urllib.request.Request(url, data=json.dumps(body or {}).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(request, timeout=300) as response:
        return json.loads(response.read())


def spread(items: list[Any], parts: int) -> list[list[Any]]:
    return [items[i::parts] for i in range(parts) if items[i::parts]]

