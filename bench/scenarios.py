"""The scenarios: each starts Belay on a fresh temp dir, drives it from client processes, returns result lines."""
from __future__ import annotations

import multiprocessing
import queue as queue_module
import sys
import time
from array import array
from collections import Counter
from dataclasses import dataclass
from typing import Any, Callable

from bench import clients
from bench.logfile import build_log, verify_replayed
from bench.server import Affinity, BelayServer, CpuWindow
from bench.stats import latency_summary, pct_of_core, rate

BOXES = list(range(15))
CLIENT_PROCS = 3
SUBSCRIBER_PROCS = 4
SATURATED_PCT = 90.0
MIXED = [("TIMER_SYNC", 85), ("PROGRESS_UPDATE", 13), ("SUBMIT_SCORE", 2)]
DURABLE = [("SUBMIT_SCORE", 1)]
REAL_TRAFFIC = [("PROGRESS_UPDATE", 5), ("REGISTER_TIME", 3), ("SUBMIT_SCORE", 2)]


@dataclass(frozen=True, slots=True)
class Settings:
    quick: bool
    affinity: Affinity
    storage_fs: str

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
                    raise RuntimeError(f"client process {dead[0]} died (exit {self.procs[dead[0]].exitcode})")
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


def _client_cpu(results: list[dict[str, Any]], names: list[str]) -> tuple[dict[str, float], list[str]]:
    cpu = {name: pct_of_core(r["cpu_s"], r["wall_s"]) for name, r in zip(names, results)}
    warnings = [f"client process {name} used {pct:.0f}% of a core: it may be the bottleneck"
                for name, pct in cpu.items() if pct > SATURATED_PCT]
    return cpu, warnings


def _line(settings: Settings, scenario: str, variant: str, parameters: dict[str, Any], duration_s: float,
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


def _run_closed_loop(settings: Settings, server: BelayServer, procs: list[list[int]], mix: list[tuple[str, int]],
                     duration_s: float, start_timer: bool) -> tuple[list[dict[str, Any]], float, float]:
    """Closed-loop clients over `procs` (one box list per process): (results, server CPU %, window s)."""
    group = ClientGroup(settings)
    try:
        ids = [group.launch(clients.closed_loop_proc, {"url": server.url, "boxes": boxes, "mix": mix, "seed": i,
                                                       "duration_s": duration_s, "start_timer": start_timer})
               for i, boxes in enumerate(procs)]
        group.wait_ready(ids)
        window = CpuWindow(server)
        group.go()
        results = group.collect(ids, timeout=duration_s + 120)
        wall, server_cpu = window.close()
    finally:
        group.close()
    return results, server_cpu, wall


def _merge_closed_loop(results: list[dict[str, Any]]) -> tuple[dict[str, array], Counter[str]]:
    merged: dict[str, array] = {}
    errors: Counter[str] = Counter()
    for r in results:
        for kind, values in r["latencies"].items():
            merged.setdefault(kind, array("d")).extend(values)
        errors.update(r["errors"])
    return merged, errors


def _split(boxes: list[int], parts: int) -> list[list[int]]:
    return [boxes[i::parts] for i in range(parts) if boxes[i::parts]]


# ---------------------------------------------------------------- 1. mixed

def mixed(settings: Settings) -> list[dict[str, Any]]:
    duration = settings.pick(30.0, 5.0)
    with BelayServer(settings.affinity) as server:
        results, server_cpu, _wall = _run_closed_loop(settings, server, _split(BOXES, CLIENT_PROCS), MIXED,
                                                      duration, start_timer=True)
        rss = server.max_rss_mb()
    merged, errors = _merge_closed_loop(results)
    elapsed = max(r["wall_s"] for r in results)
    total = sum(len(v) for v in merged.values())
    cpu, warnings = _client_cpu(results, [f"clients-{i}" for i in range(len(results))])
    if errors:
        warnings.append(f"{sum(errors.values())} non-200/non-ok replies: {dict(errors)}")
    counts = {"commands": total, "commands_per_s": rate(total, elapsed), "non_ok": sum(errors.values()),
              "non_ok_by_kind": dict(errors), **{f"{k}": len(v) for k, v in merged.items()}}
    return [_line(settings, "mixed", "15 boxes, 15 closed-loop clients",
                  {"boxes": 15, "clients": 15, "client_processes": len(results), "mix_pct": dict(MIXED),
                   "duration_s": duration, "competitors": 30, "holdsCount": 50, "timerPreset": "99:00"},
                  elapsed, counts, latency_summary(x for v in merged.values() for x in v), server_cpu, cpu, rss,
                  warnings, latency_ms_by_type={k: latency_summary(v) for k, v in merged.items()},
                  throughput_per_s=rate(total, elapsed))]


# ---------------------------------------------------------------- 2. durable

def durable(settings: Settings) -> list[dict[str, Any]]:
    duration = settings.pick(15.0, 3.0)
    lines = []
    for n_clients in (1, 15):
        procs = [[0]] if n_clients == 1 else _split(BOXES, CLIENT_PROCS)
        with BelayServer(settings.affinity) as server:
            results, server_cpu, _wall = _run_closed_loop(settings, server, procs, DURABLE, duration,
                                                          start_timer=False)
            rss = server.max_rss_mb()
        merged, errors = _merge_closed_loop(results)
        acks = len(merged["SUBMIT_SCORE"])
        elapsed = max(r["wall_s"] for r in results)
        cpu, warnings = _client_cpu(results, [f"clients-{i}" for i in range(len(results))])
        if errors:
            warnings.append(f"{sum(errors.values())} non-200/non-ok replies: {dict(errors)}")
        lines.append(_line(settings, "durable", f"{n_clients} client{'s' if n_clients > 1 else ''}",
                           {"clients": n_clients, "boxes": n_clients, "client_processes": len(procs),
                            "command": "SUBMIT_SCORE (fdatasync before ok)", "duration_s": duration},
                           elapsed, {"acks": acks, "acks_per_s": rate(acks, elapsed), "non_ok": sum(errors.values()),
                                     "non_ok_by_kind": dict(errors)},
                           latency_summary(merged["SUBMIT_SCORE"]), server_cpu, cpu, rss, warnings,
                           throughput_per_s=rate(acks, elapsed)))
    return lines


# ---------------------------------------------------------------- 3. ws_fanout

def ws_fanout(settings: Settings) -> list[dict[str, Any]]:
    duration, rate_per_box = settings.pick(20.0, 5.0), 2.0
    lines = []
    for subs in (10, 50, 200):
        progress(f"ws_fanout: {subs} subscribers per box ({subs * len(BOXES)} sockets)")
        with BelayServer(settings.affinity) as server:
            group = ClientGroup(settings)
            try:
                driver = group.launch(clients.driver_proc, {"url": server.url, "boxes": BOXES,
                                                            "rate": rate_per_box, "duration_s": duration})
                group.wait_ready([driver])
                pairs = [box for box in BOXES for _ in range(subs)]
                finals_queues = [group.mp.Queue() for _ in range(SUBSCRIBER_PROCS)]
                sub_ids = [group.launch(clients.subscriber_proc, {"url": server.url, "socket_boxes": pairs[i::SUBSCRIBER_PROCS]},
                                        finals_queues[i]) for i in range(SUBSCRIBER_PROCS)]
                group.wait_ready(sub_ids)
                window = CpuWindow(server)
                group.go()
                [drv] = group.collect([driver], timeout=duration + 120)
                for q in finals_queues:
                    q.put(drv["final_versions"])
                subs_results = group.collect(sub_ids, timeout=120)
                wall, server_cpu = window.close()
                rss = server.max_rss_mb()
            finally:
                group.close()
        lines.append(_fanout_line(settings, subs, duration, rate_per_box, drv, subs_results, server_cpu, rss))
    return lines


def _fanout_line(settings: Settings, subs: int, duration: float, rate_per_box: float, drv: dict[str, Any],
                 subs_results: list[dict[str, Any]], server_cpu: float, rss: float) -> dict[str, Any]:
    sends: dict[tuple[int, int], float] = drv["sends"]
    finals: dict[int, int] = drv["final_versions"]
    latencies = array("d")
    lost = missing = ooo = frames = echoes = closed = unmatched = 0
    for result in subs_results:
        for box, start, versions, times, s_ooo, s_echoes, s_snaps, s_other, s_closed in result["sockets"]:
            seen = set(versions)
            for version, t in zip(versions, times):
                sent = sends.get((box, version))
                if sent is None:
                    unmatched += 1
                else:
                    latencies.append(t - sent)
            expected = [v for (b, v) in sends if b == box and v > start]
            missing += sum(1 for v in expected if v not in seen)
            lost += 1 if (max(versions) if versions else start) < finals[box] else 0
            ooo += s_ooo
            echoes += s_echoes
            frames += s_echoes + s_snaps + s_other
            closed += 1 if s_closed else 0
    names = ["driver"] + [f"subscribers-{i}" for i in range(len(subs_results))]
    cpu, warnings = _client_cpu([drv, *subs_results], names)
    if lost or ooo or missing:
        warnings.append(f"lost={lost} out_of_order={ooo} missing_echoes={missing}")
    if drv["errors"]:
        warnings.append(f"driver non-ok replies: {drv['errors']}")
    commands = len(sends)
    counts = {"sockets": subs * len(BOXES), "commands_ok": commands, "commands_per_s": rate(commands, drv["wall_s"]),
              "frames_received": frames, "echoes_received": echoes, "echo_pairs_expected": commands * subs,
              "lost": lost, "out_of_order": ooo, "missing_echoes": missing, "unmatched_echoes": unmatched,
              "sockets_closed_by_server": closed, "driver_non_ok": sum(drv["errors"].values())}
    return _line(settings, "ws_fanout", f"{subs} subscribers/box",
                 {"boxes": len(BOXES), "subscribers_per_box": subs, "subscriber_processes": len(subs_results),
                  "rate_per_box": rate_per_box, "duration_s": duration, "command": "PROGRESS_UPDATE"},
                 drv["wall_s"], counts, latency_summary(latencies), server_cpu, cpu, rss, warnings,
                 latency_basis="driver send (time.monotonic) -> subscriber receive of the echo",
                 reply_latency_ms=latency_summary(drv["latencies"]))


# ---------------------------------------------------------------- 4. audit

def audit(settings: Settings) -> list[dict[str, Any]]:
    sizes = settings.pick((10_000, 100_000), (2_000, 10_000))
    reads = settings.pick(30, 10)
    lines = []
    for size in sizes:
        progress(f"audit: building a log of {size} events")
        seed = BelayServer(settings.affinity).start()
        try:
            _real_traffic(settings, seed, settings.pick(40, 20))
            seed.stop()  # SIGTERM: Belay checkpoints boxes 0..14 on the way out
            built = build_log(seed.storage_dir, size, first_box=100, boxes=15)
            server = BelayServer(settings.affinity, storage_dir=seed.storage_dir).start(timeout=300)
            try:
                startup = {"listening_s": round(server.listening_s, 3), "ready_s": round(server.ready_s, 3),
                           **verify_replayed(server.url, built)}
                size_lines = [_audit_reads(settings, server, size, limit, payload, reads, built, startup)
                              for limit in (50, 200) for payload in (False, True)]
            finally:
                server.stop()  # checkpoints the replayed boxes too, so a restart replays nothing
            again = BelayServer(settings.affinity, storage_dir=seed.storage_dir).start(timeout=300)
            again.stop()
            for line in size_lines:
                line["startup"]["restart_ready_s"] = round(again.ready_s, 3)
            lines += size_lines
        finally:
            seed.cleanup()
    return lines


def _real_traffic(settings: Settings, server: BelayServer, per_box: int) -> list[dict[str, Any]]:
    """A bounded burst of real commands on boxes 0..14, so the log holds genuine lines to copy."""
    group = ClientGroup(settings)
    try:
        ids = [group.launch(clients.closed_loop_proc, {"url": server.url, "boxes": boxes, "mix": REAL_TRAFFIC,
                                                       "seed": i, "max_per_box": per_box, "start_timer": True})
               for i, boxes in enumerate(_split(BOXES, CLIENT_PROCS))]
        group.wait_ready(ids)
        group.go()
        return group.collect(ids, timeout=300)
    finally:
        group.close()


def _audit_reads(settings: Settings, server: BelayServer, size: int, limit: int, payload: bool, reads: int,
                 built: dict[str, Any], startup: dict[str, Any]) -> dict[str, Any]:
    group = ClientGroup(settings)
    try:
        [idx] = [group.launch(clients.audit_reader_proc, {"url": server.url, "limit": limit, "payload": payload,
                                                          "reads": reads})]
        group.wait_ready([idx])
        window = CpuWindow(server)
        group.go()
        [result] = group.collect([idx], timeout=300)
        wall, server_cpu = window.close()
    finally:
        group.close()
    cpu, warnings = _client_cpu([result], ["reader"])
    if result["errors"]:
        warnings.append(f"read errors: {result['errors']}")
    if not startup.get("replay_ok"):
        warnings.append(f"replayed boxes not as written: {startup}")
    return _line(settings, "audit", f"{size} events, limit={limit}, payload={int(payload)}",
                 {"events": built["events"], "synthetic_events": built["synthetic"], "real_events": built["real"],
                  "log_mb": built["log_mb"], "limit": limit, "includePayload": payload, "reads": reads},
                 result["wall_s"], {"reads": len(result["latencies"]), "errors": sum(result["errors"].values()),
                                    "response_bytes_mean": result["bytes_mean"],
                                    "reads_per_s": rate(len(result["latencies"]), result["wall_s"])},
                 latency_summary(result["latencies"]), server_cpu, cpu, server.max_rss_mb(), warnings,
                 cpu_window_s=wall, startup=dict(startup))


SCENARIOS: dict[str, Callable[[Settings], list[dict[str, Any]]]] = {
    "mixed": mixed, "durable": durable, "ws_fanout": ws_fanout, "audit": audit,
}
