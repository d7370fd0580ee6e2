"""The edges scenario (issue 19): spectators on two edges fed through Redis against the same
spectators on the single process, under the realistic command load.

Variants, in one run: "single process" (every spectator on the core), "core + 2 edges" (Redis,
the core publishing, half the spectators on each edge), and "core alone" (no spectators, no
Redis: the core's CPU with 0 edges). Judge-to-spectator latency is split in two: a version sent
at least one throttle window after the box's previous one is the first of its burst (the hub
sends it at once); the others may be merged into the window's trailing update.
"""
from __future__ import annotations

import shutil
import tempfile
from array import array
from pathlib import Path
from typing import Any

from bench import clients_raw
from bench.common import (
    BOXES,
    READER_PROCS,
    ClientGroup,
    Settings,
    client_cpu,
    line,
    post_json,
    progress,
    spread,
    target,
)
from bench.server import BelayServer, CpuWindow
from bench.stats import latency_summary, rate

SPECTATOR_WINDOW_S = 0.25  # transport/ws/hub.py's spectator_window_s
BENCH_SPECTATOR_SECRET = "belay-bench-spectator-secret-0123456789abcdef"
EDGES = 2


def edges(settings: Settings) -> list[dict[str, Any]]:
    from tests.redis_server import RedisServer, free_port  # the tests' redis-server (loads pytest: only here)

    spectators = settings.pick(6000, 300)
    phase_s = settings.pick(20.0, 5.0)
    if shutil.which("redis-server") is None:
        raise RuntimeError("redis-server is not installed")
    directory = Path(tempfile.mkdtemp(prefix="belay-bench-redis-"))
    port = free_port()
    redis = RedisServer(f"redis://127.0.0.1:{port}/0", directory, port)
    redis.start()
    lines = []
    try:
        for variant in ("core alone", "single process", "core + 2 edges"):
            progress(f"edges: {variant}" + ("" if variant == "core alone" else f", {spectators} spectators"))
            lines.append(_run(settings, variant, redis.url if variant.endswith("edges") else None,
                              0 if variant == "core alone" else spectators, phase_s))
    finally:
        redis.kill()
        shutil.rmtree(directory, ignore_errors=True)
    alone, single, edged = lines
    base, with_edges = alone["server_cpu_pct"], edged["server_cpu_pct"]
    ratio = round(with_edges / base, 2) if base else None
    edged["core_cpu_ratio_vs_alone"] = ratio
    edged["targets"] = [target("first p99 ms", edged["first_of_burst_ms"]["p99"], "<=", 50),
                        target("merged p99 ms", edged["merged_ms"]["p99"], "<=", SPECTATOR_WINDOW_S * 1000 + 50),
                        target("core cpu edges/alone", ratio, "<=", 1.2)]
    single["targets"] = [target("first p99 ms", single["first_of_burst_ms"]["p99"], "<=", 50)]
    return lines


def _run(settings: Settings, variant: str, redis_url: str | None, spectators: int, phase_s: float) -> dict[str, Any]:
    env = {"SPECTATOR_JWT_SECRET": BENCH_SPECTATOR_SECRET, "REDIS_PREFIX": "bench"}
    servers: list[BelayServer] = []
    try:
        core = BelayServer(settings.affinity, env={**env, **({"REDIS_URL": redis_url} if redis_url else {})}).start()
        servers.append(core)
        targets = [core]
        if redis_url:
            targets = [BelayServer(settings.affinity, env=env, edge_of=redis_url).start() for _ in range(EDGES)]
            servers += targets
        group = ClientGroup(settings)
        try:
            driver = group.launch(clients_raw.judge_driver_proc, {
                "url": core.url, "boxes": BOXES, "phases": [phase_s], "gap_s": 0.0,
                "progress_per_s": 0.3, "score_every_s": settings.pick(30.0, 6.0)})
            group.wait_ready([driver])
            readers, controls = [], []
            per_target = max(1, READER_PROCS // len(targets))
            for i, server in enumerate(targets):
                token = post_json(server.url + "/api/public/token")["access_token"]
                share = spectators // len(targets) + (1 if i < spectators % len(targets) else 0)
                specs = [("pub", f"/api/public/ws/{BOXES[n % len(BOXES)]}?token={token}", None) for n in range(share)]
                for part in spread(specs, per_target):
                    controls.append(group.mp.Queue())
                    readers.append(group.launch(clients_raw.ws_readers_proc, {"url": server.url, "sockets": part},
                                                controls[-1]))
            group.wait_ready(readers)
            windows = [CpuWindow(server) for server in servers]
            group.go()
            [drv] = group.collect([driver], timeout=phase_s + 180)
            for control in controls:
                control.put({"finals": drv["final_versions"], "drain_s": 15.0})
            got = group.collect(readers, timeout=240)
            cpu = [window.close() for window in windows]
        finally:
            group.close()
        memory = core.memory_mb()
    finally:
        for server in servers:
            server.cleanup()
    return _line(settings, variant, spectators, phase_s, drv, got, cpu, memory)


def _line(settings: Settings, variant: str, spectators: int, phase_s: float, drv: dict[str, Any],
          got: list[dict[str, Any]], cpu: list[tuple[float, float]], memory: dict[str, float]) -> dict[str, Any]:
    [phase] = drv["phases"]
    sends: dict[tuple[int, int, float], float] = phase["sends"]
    first, merged, lost, behind = _split(got, sends, drv["final_versions"])
    frames = sum(r["frames"] for r in got)
    payload = sum(r["bytes"] for r in got)
    window_s = max((r["window_s"] for r in got), default=0.0)
    everything = array("d", [*first, *merged])
    clients, warnings = client_cpu([drv, *got], ["driver", *(f"readers-{i}" for i in range(len(got)))])
    if lost:
        warnings.append(f"{lost} spectator socket(s) never reached their box's final version")
    (wall, core_cpu), edge_cpu = cpu[0], [pct for _wall, pct in cpu[1:]]
    counts = {"spectators": spectators, "commands_ok": len(sends), "commands_per_s": rate(len(sends), phase["wall_s"]),
              "spectator_frames": frames, "spectator_frames_per_s": rate(frames, window_s),
              "bytes_per_spectator_frame": round(payload / frames) if frames else None, "lost": lost,
              "versions_behind_at_end": behind}
    return line(settings, "edges", variant,
                {"boxes": len(BOXES), "spectators": spectators, "phase_s": phase_s, "edges": len(edge_cpu),
                 "progress_per_s_per_box": 0.3},
                phase["wall_s"], counts, latency_summary(everything), core_cpu, clients, memory["VmHWM"], warnings,
                cpu_window_s=wall, first_of_burst_ms=latency_summary(first), merged_ms=latency_summary(merged),
                edge_cpu_pct=edge_cpu, latency_basis="versioned command sent -> the spectator frame showing it; "
                "first of burst: sent >= 250 ms after the box's previous version")


def _split(results: list[dict[str, Any]], sends: dict[tuple[int, int, float], float],
           finals: dict[int, int]) -> tuple[array, array, int, int]:
    """(first-of-burst latencies, merged latencies, sockets short of the final version, versions
    they missed), latencies in s; a frame showing version v also delivers every version before it."""
    first, merged = array("d"), array("d")
    lost = behind = 0
    for r in results:
        frames: dict[int, list[tuple[float, float]]] = {}
        for s, k, tag, t in zip(r["socks"], r["kinds"], r["tags"], r["times"]):
            if k != 1:
                frames.setdefault(s, []).append((tag, t))
        for s, (_mode, path) in enumerate(r["specs"]):
            box = int(path.rsplit("/", 1)[1])
            last = -1
            for tag, t in frames.get(s, ()):
                for version in range(last + 1, int(tag) + 1):
                    sent = sends.get((box, 2, float(version)))
                    if sent is None:
                        continue
                    before = sends.get((box, 2, float(version - 1)))
                    alone = before is None or sent - before >= SPECTATOR_WINDOW_S
                    (first if alone else merged).append(t - sent)
                last = max(last, int(tag))
            final = finals.get(box, -1)
            if last < final:
                lost += 1
                behind += final - last
    return first, merged, lost, behind
