"""Command-side scenarios: saturation (vs the bare server ceiling) and durable (vs the disk ceiling)."""
from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from bench import clients_raw, postgres
from bench.ceilings import disk_rates
from bench.common import (
    CLIENT_PROCS,
    DURABLE,
    MIXED,
    ClientGroup,
    Settings,
    client_cpu,
    line,
    merge_closed_loop,
    progress,
    run_closed_loop,
    split,
    target,
)
from bench.server import BelayServer, CpuWindow, http_json
from bench.stats import latency_summary, rate

ROUNDS = 5  # saturation: turns each for Belay and the bare server


def closed_line(settings: Settings, scenario: str, variant: str, server: BelayServer, n: int, mix: list[Any],
                duration: float, start_timer: bool, probe: Any = None, **params: Any) -> tuple[dict[str, Any], Any]:
    procs = split(list(range(n)), min(CLIENT_PROCS, n))
    results, server_cpu, wall, probed = run_closed_loop(settings, server, procs, mix, duration, start_timer, probe)
    return _closed_summary(settings, scenario, variant, server, n, len(procs), mix, duration, [results],
                           server_cpu, wall, params), probed


def _closed_summary(settings: Settings, scenario: str, variant: str, server: BelayServer, n: int, n_procs: int,
                    mix: list[Any], duration: float, rounds: list[list[dict[str, Any]]], server_cpu: float,
                    wall: float, params: dict[str, Any]) -> dict[str, Any]:
    """One line from one or more runs of the same clients (rounds), their samples pooled."""
    results = [r for round_results in rounds for r in round_results]
    merged, errors = merge_closed_loop(results)
    total = sum(len(v) for v in merged.values())
    elapsed = sum(max(r["wall_s"] for r in round_results) for round_results in rounds)
    cpu, warnings = client_cpu(results, [f"clients-{i}" for i in range(len(results))])
    if errors:
        warnings.append(f"{sum(errors.values())} non-ok replies: {dict(list(errors.items())[:5])}")
    counts = {"commands": total, "commands_per_s": rate(total, elapsed), "non_ok": sum(errors.values()),
              **{k: len(v) for k, v in merged.items()}}
    return line(settings, scenario, variant, {"clients": n, "boxes": n, "client_processes": n_procs,
                                              "mix_pct": dict(mix), "duration_s": duration, **params},
                elapsed, counts, latency_summary(x for v in merged.values() for x in v), server_cpu, cpu,
                server.max_rss_mb(), warnings, cpu_window_s=wall, throughput_per_s=rate(total, elapsed),
                latency_ms_by_type={k: latency_summary(v) for k, v in merged.items()})


def saturation(settings: Settings) -> list[dict[str, Any]]:
    """Belay and the bare server take turns (ROUNDS each), so a slow spell of this machine falls on
    both and the ratio compares like with like; each round's own ratio shows the spread."""
    duration = settings.pick(10.0, 3.0)
    lines = []
    for n in (15, 60):
        progress(f"saturation: {n} closed-loop clients, Belay and the bare server in turns")
        procs = split(list(range(n)), min(CLIENT_PROCS, n))
        turns: dict[bool, list[tuple[list[dict[str, Any]], float, float]]] = {False: [], True: []}
        with BelayServer(settings.affinity, **settings.storage()) as server, \
                BelayServer(settings.affinity, bare=True) as bare_server:
            for _ in range(ROUNDS):
                for bare, target_server in ((False, server), (True, bare_server)):
                    results, cpu, wall, _ = run_closed_loop(settings, target_server, procs, MIXED, duration / ROUNDS,
                                                            True)
                    turns[bare].append((results, cpu, wall))
            belay = _closed_summary(settings, "saturation", f"{n} clients, Belay", server, n, len(procs), MIXED,
                                    duration, *_pooled(turns[False]), {"rounds": ROUNDS})
            bare = _closed_summary(settings, "saturation", f"{n} clients, bare aiohttp (ceiling)", bare_server, n,
                                   len(procs), MIXED, duration, *_pooled(turns[True]),
                                   {"rounds": ROUNDS,
                                    "bare_server": "bench.ceilings: {\"status\":\"ok\"} to every POST"})
        pairs = [(_throughput(b), _throughput(c)) for (b, _, _), (c, _, _) in zip(turns[False], turns[True])]
        per_round = [mine / ceiling for mine, ceiling in pairs if ceiling]
        ratio = belay["throughput_per_s"] / bare["throughput_per_s"] if bare["throughput_per_s"] else None
        belay["ceiling"] = {"bare_commands_per_s": bare["throughput_per_s"],
                            "ratio": round(ratio, 3) if ratio else None,
                            "ratio_per_round": [round(r, 3) for r in per_round]}
        belay["targets"] = [target("commands/s", belay["throughput_per_s"], ">=", 4000),
                            target("% of bare", round(100 * ratio, 1) if ratio else None, ">=", 40)]
        lines += [belay, bare]
    return lines


def _throughput(results: list[dict[str, Any]]) -> float:
    merged, _ = merge_closed_loop(results)
    return rate(sum(len(v) for v in merged.values()), max(r["wall_s"] for r in results))


def _pooled(turns: list[tuple[list[dict[str, Any]], float, float]]
            ) -> tuple[list[list[dict[str, Any]]], float, float]:
    """(each turn's results, server CPU % over all turns weighted by their length, total window s)."""
    total_wall = sum(wall for _, _, wall in turns)
    cpu = sum(pct * wall for _, pct, wall in turns) / total_wall if total_wall else 0.0
    return [results for results, _, _ in turns], cpu, total_wall


FIXED_RATE_PER_S = 3000
FIXED_RATE_BOXES = 15


def _fixed_rate(settings: Settings, duration: float, disk: dict[str, Any]) -> dict[str, Any]:
    """SUBMIT_SCORE at 3,000/s open loop over 15 boxes (issue 18: p99 <= 5 ms)."""
    rate_per_s = settings.pick(FIXED_RATE_PER_S, FIXED_RATE_PER_S // 3)
    with BelayServer(settings.affinity, **settings.storage()) as server:
        group = ClientGroup(settings)
        try:
            idx = group.launch(clients_raw.fixed_rate_proc, {
                "url": server.url, "boxes": list(range(FIXED_RATE_BOXES)), "rate_per_s": rate_per_s,
                "duration_s": duration, "conns_per_box": 8})
            group.wait_ready([idx])
            window = CpuWindow(server)
            group.go()
            [result] = group.collect([idx], timeout=duration + 120)
            wall, server_cpu = window.close()
        finally:
            group.close()
        rss = server.max_rss_mb()
    cpu, warnings = client_cpu([result], ["sender"])
    acks = len(result["latencies"]["SUBMIT_SCORE"])
    if result["errors"]:
        warnings.append(f"non-ok replies: {dict(list(result['errors'].items())[:5])}")
    if result["max_send_lag_s"] > 0.05:
        warnings.append(f"the sender fell {result['max_send_lag_s'] * 1000:.0f} ms behind its schedule")
    out = line(settings, "durable", f"open loop {rate_per_s}/s", {"rate_per_s": rate_per_s, "boxes": FIXED_RATE_BOXES,
                                                                  "duration_s": duration, "connections_per_box": 8},
               result["wall_s"], {"acks": acks, "acks_per_s": rate(acks, result["wall_s"]),
                                  "non_ok": sum(result["errors"].values())},
               latency_summary(result["latencies"]["SUBMIT_SCORE"]), server_cpu, cpu, rss, warnings,
               cpu_window_s=wall, throughput_per_s=rate(acks, result["wall_s"]),
               latency_basis="from when each command was due (open loop)")
    out["ceiling"] = {**disk, "ratio_to_append_fdatasync": None}
    # Part of each latency spent before the request left: the sender's lag and the box's
    # connections all busy (the server's doing); a large p99 here with a small server CPU would
    # mean the sender, not the server, is the bottleneck.
    out["client_wait_ms"] = latency_summary(result["waits"])
    out["targets"] = [target(f"p99 ms @{rate_per_s}/s", out["latency_ms"]["p99"], "<=", 5)]
    return out


def durable(settings: Settings) -> list[dict[str, Any]]:
    duration = settings.pick(8.0, 2.0)
    with tempfile.TemporaryDirectory(prefix="belay-bench-disk-") as tmp:
        disk = disk_rates(Path(tmp), settings.pick(2.0, 0.5))
    progress(f"durable: disk ceiling {disk}")
    lines = []
    on_postgres = settings.mode == "postgres"
    for n in (1, 15, 60):
        with BelayServer(settings.affinity, count_fsyncs=not on_postgres, **settings.storage()) as server:
            def probe() -> tuple[tuple[int, int], Any, float]:
                syncs = (postgres.commits(settings.database_url), 0) if on_postgres else server.fsync_counts()
                return syncs, http_json(server.url + "/status/summary")[1].get("events"), time.monotonic()

            out, ((s0, e0, t0), (s1, e1, t1)) = closed_line(settings, "durable", f"{n} client{'s' if n > 1 else ''}",
                                                            server, n, DURABLE, duration, False, probe,
                                                            command="SUBMIT_SCORE (fdatasync before ok)")
            stalls = [took for start, took in server.slow_fdatasyncs() if t0 <= start <= t1]  # the measured window
        acks = out["counts"].get("SUBMIT_SCORE", 0)
        datasyncs = s1[0] - s0[0]
        out["counts"].update(acks=acks, acks_per_s=out["throughput_per_s"], events_logged=(e1 or 0) - (e0 or 0),
                             fdatasyncs=datasyncs, fsyncs_checkpoint=s1[1] - s0[1],
                             fdatasyncs_per_ack=round(datasyncs / acks, 3) if acks else None,
                             acks_per_batch=round(acks / datasyncs, 2) if datasyncs else None,
                             slow_fdatasyncs=len(stalls),
                             slowest_fdatasync_ms=round(max(stalls, default=0.0) * 1000, 1))
        out["fsync_basis"] = ("os.fdatasync / os.fsync calls counted in the server process by bench/fsync_shim.py "
                              "(run.py unchanged); fdatasync = one log batch, fsync = checkpoint files and dirs")
        if on_postgres:
            out["counts"]["commits_per_ack"] = out["counts"]["fdatasyncs_per_ack"]
            out["fsync_basis"] = ("PostgreSQL: 'fdatasyncs' are the database's committed transactions "
                                  "(pg_stat_database.xact_commit, checkpoint upserts and reads included)")
        out["ceiling"] = {**disk, "ratio_to_append_fdatasync":
                          round(out["throughput_per_s"] / disk["append_fdatasync_per_s"], 2)}
        lines.append(out)
    one, fifteen, sixty = lines
    fifteen["targets"] = [target("p99 ms @15", fifteen["latency_ms"]["p99"], "<=", 5)]
    scale = sixty["throughput_per_s"] / one["throughput_per_s"] if one["throughput_per_s"] else None
    sixty["targets"] = [target("acks/s @60 / @1", round(scale, 1) if scale else None, ">=", 10)]
    lines.append(_fixed_rate(settings, duration, disk))
    if on_postgres:  # issue 18's targets for the database
        fifteen["targets"].append(target("acks/s @15", fifteen["throughput_per_s"], ">=", 4000))
        sixty["targets"].append(target("commits/ack @60", sixty["counts"]["commits_per_ack"], "<=", 0.1))
    return lines
