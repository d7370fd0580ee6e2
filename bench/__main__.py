"""`python -m bench [--scenario NAME ...] [--mode json|postgres ...] [--quick] [--out FILE]`: run scenarios,
print JSON lines and a table. The storage scenarios run in both modes unless --mode says otherwise;
PostgreSQL is BENCH_DATABASE_URL (default: the local server), pinned to the clients' core meanwhile.

Numbers only, never pass/fail. Run from the repository root (run.py is started from there).
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson

from bench import fsync_shim, postgres, server
from bench.scenarios import MODES, SCENARIOS, Settings, progress
from bench.server import filesystem_of, plan_affinity, prepare_process, raise_nofile


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--scenario", action="append", choices=list(SCENARIOS),
                        help="run only this scenario (repeatable; default: all)")
    parser.add_argument("--quick", action="store_true", help="smoke run: every count and duration shrunk")
    parser.add_argument("--out", help="append each JSON result line to this file too")
    parser.add_argument("--mode", action="append", choices=("json", "postgres"),
                        help="run the storage scenarios in this STORAGE_MODE only (repeatable; default: both)")
    parser.add_argument("--server-dir", help="directory holding the run.py to bench (default: this repository)")
    args = parser.parse_args(argv)
    if args.server_dir:
        server.SERVER_DIR[0] = Path(args.server_dir).resolve()

    affinity = plan_affinity()
    cores = len(os.sched_getaffinity(0))
    prepare_process(affinity.clients)  # the orchestrator stays off the server's core as well
    nofile = raise_nofile()
    settings = Settings(quick=args.quick, affinity=affinity, storage_fs=filesystem_of(tempfile.gettempdir()))
    progress(f"server code: {server.SERVER_DIR[0]}")
    progress(f"{affinity.note}; RLIMIT_NOFILE={nofile}; usable cores={cores}; storage on {settings.storage_fs}"
             f"{'; QUICK run' if args.quick else ''}")
    results: list[dict[str, Any]] = []
    failures: list[str] = []
    database_url = postgres.database_url()
    modes = _modes(args.mode, database_url, failures)
    started = time.monotonic()
    for name in args.scenario or list(SCENARIOS):
        for mode in (m for m in MODES[name] if m in modes):
            progress(f"scenario {name} ({mode}) ...")
            os.sync()  # the last scenario's writes (the audit one leaves 600 MB) must not be flushed during this one
            t0 = time.monotonic()
            pinned = mode == "postgres" and name != "migration"  # a migration has the machine to itself
            undo = postgres.pin_postgres(database_url, affinity.clients) if pinned else (lambda: None)
            try:
                lines = SCENARIOS[name](replace(settings, mode=mode, database_url=database_url))
            except Exception as exc:  # report and go on with the next scenario
                failures.append(f"{name} ({mode}): {type(exc).__name__}: {exc}")
                progress(f"scenario {name} ({mode}) FAILED: {exc}")
                continue
            finally:
                undo()
            for line in lines:
                line["storage_mode"] = mode
                if mode != "json":
                    line["variant"] = f"{mode}: {line['variant']}"
                emit(line, args.out)
            results += lines
            progress(f"scenario {name} ({mode}) done in {time.monotonic() - t0:.1f} s")
    print_table(results, f"{affinity.note}; storage {settings.storage_fs}", time.monotonic() - started)
    for failure in failures:
        print(f"scenario failed: {failure}")
    return 1 if failures else 0


def _modes(asked: list[str] | None, database_url: str, failures: list[str]) -> list[str]:
    """The modes to run; PostgreSQL is left out (a failure if it was asked for) when unreachable."""
    modes = asked or ["json", "postgres"]
    if "postgres" in modes:
        problem = postgres.problem(database_url)
        if problem is not None:
            modes = [m for m in modes if m != "postgres"]
            progress(f"PostgreSQL scenarios skipped: {database_url} is unreachable ({problem}); "
                     f"set BENCH_DATABASE_URL")
            if asked:
                failures.append(f"postgres: {problem}")
    return modes


def emit(line: dict[str, Any], out: str | None) -> None:
    raw = orjson.dumps(line, option=orjson.OPT_NON_STR_KEYS).decode()
    print(raw, flush=True)
    if out:
        with open(out, "a", encoding="utf-8") as f:
            f.write(raw + "\n")


COLUMNS = ("scenario", "variant", "s", "ops/s", "p50", "p90", "p99", "p99.9", "max", "srv cpu%", "cli cpu%",
           "rss MB", "notes")


def _turns(line: dict[str, Any]) -> str:
    return "/".join(_ms(p99) for p99 in line["reply_p99_ms_per_turn"])


def _notes(line: dict[str, Any]) -> list[str]:
    c, name = line["counts"], line["scenario"]
    notes = []
    if name == "realistic":
        r, sp = line["reply_latency_ms"], line["spectator_latency_ms"]
        notes.append(f"cmd p50/p99/max={_ms(r['p50'])}/{_ms(r['p99'])}/{_ms(r['max'])}; "
                     f"last-sub p99={_ms(line['last_subscriber_latency_ms']['p99'])}; "
                     f"spectator p50/p99={_ms(sp['p50'])}/{_ms(sp['p99'])}; lost={c['lost']} ooo={c['out_of_order']} "
                     f"missing={c['missing_echoes']}/{c['echo_deliveries_expected']}; "
                     f"RSS={line['memory_mb']['VmRSS']:.0f}; "
                     f"cmd p99 per turn={_turns(line)}")
        if "audit_read_latency_ms" in line:
            notes.append(f"{c['audit_reads']} audit reads p99={_ms(line['audit_read_latency_ms']['p99'])}")
        disk = line.get("disk_stalls") or {}
        if disk.get("slow_fdatasync_ms"):
            notes.append(f"fdatasyncs >= {fsync_shim.SLOW_S * 1000:.0f} ms: {len(disk['slow_fdatasync_ms'])}, slowest "
                         f"{max(disk['slow_fdatasync_ms']):.0f}"
                         + ("; the slowest delivery waited on one" if disk["slowest_delivery_waited_on_disk"] else ""))
        loop = line.get("loop") or {}
        slowest = loop.get("slowest_delivery")
        if slowest:
            notes.append(f"loop during the slowest delivery: {slowest['on_cpu_ms']:.0f} ms on the CPU, "
                         f"{slowest['waiting_for_cpu_ms']:.0f} ms waiting for it (of {slowest['span_ms']:.0f}), "
                         f"the server's other threads {slowest['other_threads_on_cpu_ms']:.0f} ms on the CPU")
        if loop.get("waiting_for_cpu_pct_of_turns") is not None:
            notes.append(f"loop waited for the CPU {loop['waiting_for_cpu_pct_of_turns']}% of the turns")
    elif name == "saturation" and "ceiling" in line:
        notes.append(f"bare={line['ceiling']['bare_commands_per_s']:.0f}/s ratio={line['ceiling']['ratio']} "
                     f"(per turn {line['ceiling']['ratio_per_round']})")
    elif name == "durable":
        d = line["ceiling"]
        per_ack = "commits" if line.get("storage_mode") == "postgres" else "fdatasync"
        notes.append(f"acks={c['acks']} {per_ack}/ack={c.get('fdatasyncs_per_ack', '-')} "
                     f"acks/batch={c.get('acks_per_batch', '-')}; disk: append+fdatasync "
                     f"{d['append_fdatasync_per_s']:.0f}/s, atomic replace {d['atomic_replace_per_s']:.0f}/s")
        if c.get("slow_fdatasyncs"):
            notes.append(f"fdatasyncs >= {fsync_shim.SLOW_S * 1000:.0f} ms: {c['slow_fdatasyncs']}, "
                         f"slowest {c['slowest_fdatasync_ms']:.0f}")
    elif name == "fanout_capacity":
        notes.append(f"{c['sockets']} sockets, {c['mean_frame_bytes']} B/frame, closed={c['sockets_closed']}"
                     + (f", ratio={line['ceiling']['ratio']}" if "ceiling" in line else ""))
    elif name == "audit":
        if "startup" in line:
            st = line["startup"]
            notes.append(f"{line['parameters']['log_mb']} MB, start {st['ready_s']}s, replay_ok={st['replay_ok']}, "
                         f"{c['response_bytes_mean']} B/resp")
        if "reply_p99_ms_per_turn" in line:
            notes.append(f"cmd p99 per turn={_turns(line)}")
        if "audit_read_latency_ms" in line:
            notes.append(f"{c['audit_reads']} reads, read p99={_ms(line['audit_read_latency_ms']['p99'])}")
    elif name == "migration":
        parts = c["seconds"]
        notes.append(f"{c['events']} ev, {c['mb']} MB: " + ", ".join(f"{k} {v:.1f} s" for k, v in parts.items()))
    elif name == "restart":
        notes.append(f"ready s={c['ready_s']} (bare aiohttp {c['bare_ready_s']}) boxes={c['boxes_restored']}")
    elif name == "edges":
        f, m = line["first_of_burst_ms"], line["merged_ms"]
        notes.append(f"{c['spectators']} spectators; first-of-burst p50/p99/max={_ms(f['p50'])}/{_ms(f['p99'])}/"
                     f"{_ms(f['max'])}; merged p50/p99/max={_ms(m['p50'])}/{_ms(m['p99'])}/{_ms(m['max'])}; "
                     f"spectator frames/s={c['spectator_frames_per_s']:.0f}; {c['bytes_per_spectator_frame']} B/frame; "
                     f"edges cpu%={line['edge_cpu_pct']}; lost={c['lost']}")
        if "core_cpu_ratio_vs_alone" in line:
            notes.append(f"core cpu vs core alone={line['core_cpu_ratio_vs_alone']}")
    elif name == "rss":
        rounds = ", ".join(f"{mb:.0f}" for mb in c["VmRSS_after_each_round_mb"])
        notes.append(f"VmRSS idle {c['idle_VmRSS_mb']:.0f} MB, after each round {rounds} MB, "
                     f"VmHWM {c['VmHWM_mb']:.0f} MB")
    for t in line.get("targets", ()):
        mark = "n/a" if t["met"] is None else "ok" if t["met"] else "MISSED"
        notes.append(f"[{t['what']} {t['value']} {t['op']} {t['target']}: {mark}]")
    real_warnings = [w for w in line["warnings"] if "tick noise" not in w]
    if real_warnings:
        notes.append(f"warnings={len(real_warnings)}")
    return notes


def _row(line: dict[str, Any]) -> list[str]:
    lat = line["latency_ms"]
    counts = line["counts"]
    short = line.get("cpu_window_s", line["duration_s"]) < 1.0 or line["scenario"] == "restart"
    ops = line.get("throughput_per_s") or counts.get("commands_per_s") or counts.get("reads_per_s") or 0
    duration = line["duration_s"]
    return [line["scenario"], line["variant"], f"{duration:.1f}" if duration >= 1 else f"{duration:.2f}", f"{ops:.0f}",
            *(_ms(lat[k]) for k in ("p50", "p90", "p99", "p99.9", "max")),
            "n/a" if short else f"{line['server_cpu_pct']:.0f}", f"{line['client_cpu_pct_max']:.0f}",
            f"{line['server_max_rss_mb']:.0f}",
            "; ".join(_notes(line))]


def _ms(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.2f}" if value < 10 else f"{value:.1f}" if value < 100 else f"{value:.0f}"


def print_table(results: list[dict[str, Any]], note: str, elapsed: float) -> None:
    rows = [list(COLUMNS)] + [_row(r) for r in results]
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS) - 1)]
    print()
    print(f"Belay bench: latencies in ms (realistic: judge-to-scoreboard; fanout/saturation ops/s = frames or "
          f"commands per s; restart: seconds->ms of ready); cpu% = % of one core (n/a: window < 1 s); "
          f"cli cpu% = busiest client process; targets in [brackets], shown, never enforced; {note}")
    for i, row in enumerate(rows):
        print("  ".join(cell.ljust(w) if j < 2 else cell.rjust(w) for j, (cell, w) in enumerate(zip(row, widths)))
              + "  " + row[-1])
        if i == 0:
            print("  ".join("-" * w for w in widths) + "  -----")
    for r in results:
        for w in r["warnings"]:
            if "tick noise" in w:
                continue
            print(f"WARNING {r['scenario']} [{r['variant']}]: {w}")
    print(f"total {elapsed:.0f} s")
    sys.stdout.flush()


if __name__ == "__main__":
    sys.exit(main())
