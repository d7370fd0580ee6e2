"""WebSocket scenarios: realistic (judge-to-scoreboard latency, with and without audit reads),
fanout_capacity (frames/s vs the bare broadcaster) and rss (memory with 3,000 subscribers, in rounds)."""
from __future__ import annotations

import time
from array import array
from typing import Any

from bench import clients_raw
from bench.common import (
    BOXES,
    READER_PROCS,
    ClientGroup,
    Settings,
    alternating_phases,
    client_cpu,
    line,
    pool_phases,
    post_json,
    progress,
    reply_p99_ms,
    spread,
    target,
)
from bench.schedstat import LoopSampler, Sample, loop_report
from bench.server import BelayServer, CpuWindow
from bench.stats import latency_summary, rate

AGGREGATE_SUBS = 200


def _socket_specs(url: str, subs: int, aggregate: int, admin: str) -> list[tuple[str, str, str | None]]:
    spectator = post_json(url + "/api/public/token")["access_token"]
    specs: list[tuple[str, str, str | None]] = []
    for _ in range(subs):
        for box in BOXES:
            specs.append(("box", f"/api/ws/{box}", admin))
            specs.append(("pub", f"/api/public/ws/{box}?token={spectator}", None))
    specs += [("count", "/api/public/ws", None)] * aggregate
    return specs


def realistic(settings: Settings) -> list[dict[str, Any]]:
    phase_s, gap_s = settings.pick(20.0, 5.0), 2.0  # seconds of each kind, without and with audit reads
    phases, windows = alternating_phases(phase_s, gap_s)
    lines = []
    for subs in settings.pick((10, 50, 200), (10,)):
        progress(f"realistic: {subs} subscribers/box on /api/ws and /api/public/ws (+{AGGREGATE_SUBS} aggregate)")
        with BelayServer(settings.affinity, count_fsyncs=True) as server:  # to tell disk stalls apart
            group = ClientGroup(settings)
            loop = LoopSampler(server.pid)  # and waits for the CPU
            try:
                driver = group.launch(clients_raw.judge_driver_proc, {
                    "url": server.url, "boxes": BOXES, "phases": phases, "gap_s": gap_s,
                    "progress_per_s": 0.3, "score_every_s": settings.pick(30.0, 6.0)})
                group.wait_ready([driver])
                specs = _socket_specs(server.url, subs, AGGREGATE_SUBS, clients_raw.admin_token())
                controls = [group.mp.Queue() for _ in range(READER_PROCS)]
                readers = [group.launch(clients_raw.ws_readers_proc, {"url": server.url, "sockets": part}, controls[i])
                           for i, part in enumerate(spread(specs, READER_PROCS))]
                group.wait_ready(readers)
                poller = group.launch(clients_raw.audit_poller_proc, {
                    "url": server.url, "limit": 200, "interval_s": settings.pick(3.0, 1.0), "windows": windows})
                group.wait_ready([poller])
                window = CpuWindow(server)
                loop.start()
                group.go()
                [drv] = group.collect([driver], timeout=sum(phases) + gap_s * len(phases) + 180)
                for q in controls:
                    q.put({"finals": drv["final_versions"], "drain_s": 15.0})
                got = group.collect(readers, timeout=240)
                [audit] = group.collect([poller], timeout=60)
                wall, server_cpu = window.close()
                memory = server.memory_mb()
                stalls = server.slow_fdatasyncs()
            finally:
                samples = loop.stop()
                group.close()
        lines += _realistic_lines(settings, subs, phase_s, drv, got, audit, server_cpu, wall, memory, stalls, samples)
    return lines


def _analyse(results: list[dict[str, Any]], sends: dict[tuple[int, int, float], float],
             finals: dict[int, int]) -> dict[str, Any]:
    scoreboard, spectator = array("d"), array("d")
    slowest: dict[tuple[int, int, float], float] = {}
    per_box_sends: dict[int, list[tuple[int, float]]] = {}
    for (box, kind, tag) in sends:
        per_box_sends.setdefault(box, []).append((kind, tag))
    lost = ooo = missing = closed = 0
    worst = (0.0, 0.0)  # (latency, sent) of the slowest scoreboard delivery
    examples: dict[tuple[int, int, float], float] = {}
    for r in results:
        frames: dict[int, list[tuple[int, float, float]]] = {}
        for s, k, tag, t in zip(r["socks"], r["kinds"], r["tags"], r["times"]):
            frames.setdefault(s, []).append((k, tag, t))
        for s, (mode, path) in enumerate(r["specs"]):
            if mode == "count":
                continue
            box = int(path.rsplit("/", 1)[1])
            closed += 1 if r["closed"][s] else 0
            last, seen = -1.0, set()
            for k, tag, t in frames.get(s, ()):
                if k != 1:
                    if tag < last:
                        ooo += 1
                    if mode == "pub":  # a spectator frame shows every version up to its own
                        for v in range(int(last) + 1, int(tag) + 1):
                            sent = sends.get((box, 2, float(v)))
                            if sent is not None:
                                spectator.append(t - sent)
                    last = max(last, tag)
                if mode == "box" and k in (1, 2):
                    key = (box, k, tag)
                    sent = sends.get(key)
                    if sent is not None and key not in seen:
                        seen.add(key)
                        scoreboard.append(t - sent)
                        slowest[key] = max(slowest.get(key, 0.0), t - sent)
                        worst = max(worst, (t - sent, sent))
            if last < finals.get(box, -1):
                lost += 1
            if mode == "box":
                gone = [(box, kind, tag) for kind, tag in per_box_sends.get(box, ()) if (box, kind, tag) not in seen]
                missing += len(gone)
                examples.update((k, sends[k]) for k in gone[:3])
    return {"scoreboard": scoreboard, "spectator": spectator, "slowest": array("d", slowest.values()), "worst": worst,
            "lost": lost, "out_of_order": ooo, "missing_echoes": missing, "sockets_closed": closed,
            "missing_examples": [[*k, round(v - min(sends.values(), default=0.0), 3)]
                                 for k, v in list(examples.items())[:5]]}


def _realistic_lines(settings: Settings, subs: int, phase_s: float, drv: dict[str, Any], got: list[dict[str, Any]],
                     audit: dict[str, Any], server_cpu: float, wall: float, memory: dict[str, float],
                     stalls: list[tuple[float, float]], samples: list[Sample]) -> list[dict[str, Any]]:
    everything = {k: v for phase in drv["phases"] for k, v in phase["sends"].items()}
    overall = _analyse(got, everything, drv["final_versions"])
    cpu, base_warnings = client_cpu([drv, *got, audit], ["driver", *(f"readers-{i}" for i in range(len(got))), "audit"])
    frames = sum(r["frames"] for r in got)
    out = []
    for p in (0, 1):  # the turns without audit reads, then those with
        turns = drv["phases"][p::2]
        phase = pool_phases(turns)
        result = _analyse(got, phase["sends"], {})
        replies = array("d", (x for v in phase["latencies"].values() for x in v))
        warnings = list(base_warnings)
        if phase["errors"]:
            warnings.append(f"non-ok replies: {phase['errors']}")
        if overall["lost"] or overall["out_of_order"]:
            warnings.append(f"lost={overall['lost']} out_of_order={overall['out_of_order']}")
        if drv["tracked_versions"] != drv["final_versions"]:
            warnings.append("tracked versions differ from the final state: echo tags may be off")
        sends = len(phase["sends"])
        counts = {"sockets_box": subs * 15, "sockets_public_box": subs * 15, "sockets_aggregate": AGGREGATE_SUBS,
                  "commands_ok": sends, "commands_per_s": rate(sends, phase["wall_s"]),
                  "echo_deliveries": len(result["scoreboard"]), "echo_deliveries_expected": sends * subs,
                  "missing_echoes": result["missing_echoes"], "missing_examples": result["missing_examples"],
                  "lost": overall["lost"],
                  "out_of_order": overall["out_of_order"], "sockets_closed": overall["sockets_closed"],
                  "frames_received_total": frames, "max_send_lag_ms": round(phase["max_send_lag_s"] * 1000, 1),
                  "audit_reads": len(audit["latencies"]) if p else 0}
        reply = latency_summary(replies)
        extra: dict[str, Any] = {
            "latency_basis": "command sent -> its echo at each /api/ws/{id} subscriber (TIMER_SYNC tagged by "
                             "remaining, others by boxVersion); one sample per (command, subscriber)",
            "reply_latency_ms": reply, "reply_p99_ms_per_turn": [reply_p99_ms(turn) for turn in turns],
            "reply_latency_ms_by_type": {k: latency_summary(v) for k, v in phase["latencies"].items()},
            "last_subscriber_latency_ms": latency_summary(result["slowest"]),
            "spectator_latency_ms": latency_summary(result["spectator"]),
            "memory_mb": memory, "throughput_per_s": rate(sends, phase["wall_s"])}
        if p:
            extra["audit_read_latency_ms"] = latency_summary(audit["latencies"])
        extra["disk_stalls"] = _disk_stalls(turns, stalls, result["worst"])
        extra["loop"] = loop_report(samples, _turn_spans(turns), result["worst"])
        out.append(line(settings, "realistic", f"{subs}/box {'WITH' if p else 'no'} audit reads",
                        {"boxes": 15, "subscribers_per_box": subs, "timer_sync_per_s_per_box": "1 or 2",
                         "progress_per_s_per_box": 0.3, "phase_s": phase_s, "turns": len(turns),
                         "audit": "limit=200 every few s" if p else None},
                        phase["wall_s"], counts, latency_summary(result["scoreboard"]), server_cpu, cpu,
                        memory["VmHWM"], warnings, cpu_window_s=wall, **extra))
    no_audit, with_audit = out
    if subs >= 200:
        for o in out:
            o["targets"] = [target("j2s p99 ms", o["latency_ms"]["p99"], "<=", 30),
                            target("j2s max ms", o["latency_ms"]["max"], "<=", 100),
                            target("cmd p99 ms", o["reply_latency_ms"]["p99"], "<=", 10)]
    base, loaded = no_audit["reply_latency_ms"]["p99"], with_audit["reply_latency_ms"]["p99"]
    ratio = round(loaded / base, 2) if base and loaded else None
    with_audit["audit_ratio"] = ratio
    with_audit.setdefault("targets", []).append(target("cmd p99 audit/no", ratio, "<=", 2))
    return out


def _disk_stalls(turns: list[dict[str, Any]], stalls: list[tuple[float, float]],
                 worst: tuple[float, float]) -> dict[str, Any]:
    """The server's slow fdatasyncs (bench/fsync_shim.py) inside these turns, and whether the slowest
    delivery was sent while one ran: its command then waited for the disk before it could be shown."""
    spans = _turn_spans(turns)
    inside = [(start, took) for start, took in stalls if any(a <= start <= b for a, b in spans)]
    latency, sent = worst
    return {"slow_fdatasync_ms": [round(took * 1000, 1) for _, took in inside],
            "slowest_delivery_waited_on_disk": any(start < sent + latency and start + took > sent
                                                    for start, took in inside)}

def _turn_spans(turns: list[dict[str, Any]]) -> list[tuple[float, float]]:
    """From each turn's first command to a second after its last (the last deliveries land then)."""
    return [(min(t["sends"].values()), max(t["sends"].values()) + 1.0) for t in turns if t["sends"]]


def _count_run(settings: Settings, server: BelayServer, specs: list[Any], duration: float, bare: bool,
               size: int = 0) -> dict[str, Any]:
    group = ClientGroup(settings)
    try:
        controls = [group.mp.Queue() for _ in range(READER_PROCS)]
        readers = [group.launch(clients_raw.ws_readers_proc, {"url": server.url, "sockets": part}, controls[i])
                   for i, part in enumerate(spread(specs, READER_PROCS))]
        group.wait_ready(readers)
        drivers = [] if bare else [group.launch(clients_raw.closed_loop_proc, {  # 4 clients per box
            "url": server.url, "boxes": BOXES * 4, "mix": [("PROGRESS_UPDATE", 1)], "duration_s": duration,
            "start_timer": True})]
        group.wait_ready(drivers)
        window = CpuWindow(server)
        group.go()
        time.sleep(0.3)
        blast = post_json(f"{server.url}/blast?seconds={duration}&size={size}") if bare else None
        drv = group.collect(drivers, timeout=duration + 60)
        if not bare:
            time.sleep(0.3)
        for q in controls:
            q.put({})
        got = group.collect(readers, timeout=120)
        wall, server_cpu = window.close()
        memory = server.memory_mb()
    finally:
        group.close()
    frames = sum(r["frames_at_stop"] for r in got)
    window_s = max(r["window_s"] for r in got)
    cpu, warnings = client_cpu([*drv, *got], [*(["driver"] if drv else []), *(f"readers-{i}" for i in range(len(got)))])
    errors = {k: v for d in drv for k, v in d["errors"].items()}
    if errors:
        warnings.append(f"driver non-ok replies: {dict(list(errors.items())[:4])}")
    return {"frames": frames, "bytes": sum(r["bytes"] for r in got), "window_s": window_s,
            "frames_per_s": rate(frames, duration if bare else window_s), "server_cpu": server_cpu, "cpu": cpu,
            "warnings": warnings, "memory": memory, "blast": blast, "wall": wall,
            "closed": sum(1 for r in got for c in r["closed"] if c),
            "commands": sum(len(v) for d in drv for v in d["latencies"].values())}


def fanout_capacity(settings: Settings) -> list[dict[str, Any]]:
    subs, duration = settings.pick(200, 40), settings.pick(8.0, 3.0)
    admin = clients_raw.admin_token()
    specs = [("count", f"/api/ws/{box}", admin) for _ in range(subs) for box in BOXES]
    progress(f"fanout_capacity: {len(specs)} sockets, closed-loop PROGRESS_UPDATE on 15 boxes, "
             "then the bare broadcaster")
    with BelayServer(settings.affinity) as server:
        belay = _count_run(settings, server, specs, duration, bare=False)
    size = belay["bytes"] // max(1, belay["frames"])
    with BelayServer(settings.affinity, bare=True) as bare_server:
        bare = _count_run(settings, bare_server, specs, duration, bare=True, size=size)
    ratio = round(belay["frames_per_s"] / bare["frames_per_s"], 3) if bare["frames_per_s"] else None
    out = []
    for name, r in (("Belay", belay), ("bare broadcaster (ceiling)", bare)):
        counts = {"sockets": len(specs), "frames": r["frames"], "frames_per_s": r["frames_per_s"],
                  "mean_frame_bytes": r["bytes"] // max(1, r["frames"]), "commands": r["commands"],
                  "sockets_closed": r["closed"]}
        out.append(line(settings, "fanout_capacity", f"{len(specs)} sockets, {name}",
                        {"sockets": len(specs), "duration_s": duration, "frame_bytes": size},
                        r["window_s"], counts, latency_summary([]), r["server_cpu"], r["cpu"], r["memory"]["VmHWM"],
                        r["warnings"], cpu_window_s=r["wall"], throughput_per_s=r["frames_per_s"], blast=r["blast"]))
    out[0]["ceiling"] = {"bare_frames_per_s": bare["frames_per_s"], "ratio": ratio}
    out[0]["targets"] = [target("% of bare", round(100 * ratio, 1) if ratio else None, ">=", 50)]
    return out


def rss(settings: Settings) -> list[dict[str, Any]]:
    """Memory with 3,000 subscribers, in rounds: each round's sockets leave without a closing frame
    (as phones and killed tabs do) and the next round connects anew, so memory a dropped socket
    keeps shows up as growth from round to round."""
    subs, rounds = settings.pick(200, 40), settings.pick(3, 2)
    admin = clients_raw.admin_token()
    specs = [("count", f"/api/ws/{box}", admin) for _ in range(subs) for box in BOXES]
    after: list[float] = []
    with BelayServer(settings.affinity) as server:
        idle = server.memory_mb()
        for _ in range(rounds):
            r = _count_run(settings, server, specs, settings.pick(3.0, 1.0), bare=False)
            time.sleep(0.5)
            after.append(server.memory_mb()["VmRSS"])
        memory = server.memory_mb()
    counts = {"sockets": len(specs), "rounds": rounds, "idle_VmRSS_mb": idle["VmRSS"], "VmRSS_mb": memory["VmRSS"],
              "VmRSS_after_each_round_mb": after, "VmHWM_mb": memory["VmHWM"], "frames": r["frames"]}
    out = line(settings, "rss", f"{len(specs)} subscribers on /api/ws, {rounds} rounds", {"sockets": len(specs)},
               r["window_s"], counts, latency_summary([]), r["server_cpu"], r["cpu"], memory["VmHWM"], r["warnings"],
               cpu_window_s=r["wall"], memory_mb=memory)
    out["targets"] = [target("VmHWM MB", memory["VmHWM"], "<=", 120)]
    return [out]

