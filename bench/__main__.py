"""`python -m bench [--scenario NAME ...] [--quick] [--out FILE]`: run scenarios, print JSON lines and a table.

Numbers only, never pass/fail. Run from the repository root (run.py is started from there).
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

from bench.scenarios import SCENARIOS, Settings, progress
from bench import server
from bench.server import filesystem_of, plan_affinity, prepare_process, raise_nofile


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--scenario", action="append", choices=list(SCENARIOS),
                        help="run only this scenario (repeatable; default: all)")
    parser.add_argument("--quick", action="store_true", help="smoke run: every count and duration shrunk")
    parser.add_argument("--out", help="append each JSON result line to this file too")
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
    started = time.monotonic()
    for name in args.scenario or list(SCENARIOS):
        progress(f"scenario {name} ...")
        t0 = time.monotonic()
        try:
            lines = SCENARIOS[name](settings)
        except Exception as exc:  # noqa: BLE001 - report and go on with the next scenario
            failures.append(f"{name}: {type(exc).__name__}: {exc}")
            progress(f"scenario {name} FAILED: {exc}")
            continue
        for line in lines:
            emit(line, args.out)
        results += lines
        progress(f"scenario {name} done in {time.monotonic() - t0:.1f} s")
    print_table(results, f"{affinity.note}; storage {settings.storage_fs}", time.monotonic() - started)
    for failure in failures:
        print(f"scenario failed: {failure}")
    return 1 if failures else 0


def emit(line: dict[str, Any], out: str | None) -> None:
    raw = orjson.dumps(line, option=orjson.OPT_NON_STR_KEYS).decode()
    print(raw, flush=True)
    if out:
        with open(out, "a", encoding="utf-8") as f:
            f.write(raw + "\n")


COLUMNS = ("scenario", "variant", "s", "ops/s", "p50", "p90", "p99", "p99.9", "max", "srv cpu%", "cli cpu%",
           "rss MB", "notes")


def _row(line: dict[str, Any]) -> list[str]:
    lat = line["latency_ms"]
    counts = line["counts"]
    notes = []
    if line["scenario"] == "mixed":
        notes.append(f"non_ok={counts['non_ok']}")
    elif line["scenario"] == "durable":
        notes.append(f"acks={counts['acks']} non_ok={counts['non_ok']}")
    elif line["scenario"] == "ws_fanout":
        reply = line["reply_latency_ms"]
        notes.append(f"sockets={counts['sockets']} frames={counts['frames_received']} lost={counts['lost']} "
                     f"ooo={counts['out_of_order']} missing={counts['missing_echoes']} "
                     f"reply p50/p99={_ms(reply['p50'])}/{_ms(reply['p99'])}")
    elif line["scenario"] == "audit":
        st = line["startup"]
        notes.append(f"{line['parameters']['log_mb']} MB, start {st['ready_s']}s (restart {st.get('restart_ready_s')}s)"
                     f", boxes {st['boxes_loaded']}/{st['boxes_expected']}, {counts['response_bytes_mean']} B/resp")
    real_warnings = [w for w in line["warnings"] if "tick noise" not in w]
    if real_warnings:
        notes.append(f"warnings={len(real_warnings)}")
    short = line.get("cpu_window_s", line["duration_s"]) < 1.0
    ops = line.get("throughput_per_s") or counts.get("commands_per_s") or counts.get("reads_per_s") or 0
    duration = line["duration_s"]
    return [line["scenario"], line["variant"], f"{duration:.1f}" if duration >= 1 else f"{duration:.2f}", f"{ops:.0f}",
            *(_ms(lat[k]) for k in ("p50", "p90", "p99", "p99.9", "max")),
            "n/a" if short else f"{line['server_cpu_pct']:.0f}", f"{line['client_cpu_pct_max']:.0f}", f"{line['server_max_rss_mb']:.0f}",
            "; ".join(notes)]


def _ms(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.2f}" if value < 10 else f"{value:.1f}" if value < 100 else f"{value:.0f}"


def print_table(results: list[dict[str, Any]], note: str, elapsed: float) -> None:
    rows = [list(COLUMNS)] + [_row(r) for r in results]
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS) - 1)]
    print()
    print(f"Belay bench: latencies in ms; cpu% = % of one core (n/a: window < 1 s); "
          f"cli cpu% = busiest client process; {note}")
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
