"""`python -m bench.instructions [--mix sync|mixed|durable] [--clients N] [--seconds S] [--bare]
[--server-dir DIR]`: CPU instructions the server spends per command, counted by callgrind.

This machine's speed moves by ±30% between runs, so a 5% change cannot be seen in commands/s.
Instruction counts do not move with the machine: the same code gives the same count within
about 1%. The server runs under `valgrind --tool=callgrind` (about 50 times slower, so its rate
means nothing), is warmed up, has its counters zeroed, serves closed-loop clients for the given
time, and dumps. With one client (the default) each command is served alone and the same code
gives the same count within about 0.5%; with more, the count also depends on how many commands
share a loop turn and moves by a few %. Only user-space instructions are counted: the kernel's
share (socket calls, fdatasync) is not. Use it to compare two versions (`--server-dir`), never
as a speed figure.
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import postgres
from bench import server as server_module
from bench.common import DURABLE, MIXED
from bench.scenarios import Settings
from bench.scenarios_load import closed_line
from bench.server import BelayServer, filesystem_of, plan_affinity, prepare_process, raise_nofile

MIXES = {"sync": [("TIMER_SYNC", 1)], "mixed": MIXED, "durable": DURABLE}
WARM_UP_S = 3.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.instructions", description=__doc__)
    parser.add_argument("--mix", choices=list(MIXES), default="sync",
                        help="sync: clock syncs of running clocks only; mixed: the saturation mix; durable: scores")
    parser.add_argument("--clients", type=int, default=1,
                        help="closed-loop clients (default 1: each command alone, the steadiest count)")
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--bare", action="store_true", help="count the bare aiohttp server instead")
    parser.add_argument("--server-dir", help="directory holding the run.py to count (default: this repository)")
    parser.add_argument("--mode", choices=["json", "postgres"], default="json",
                        help="STORAGE_MODE of the server (postgres: BENCH_DATABASE_URL, else the local server)")
    args = parser.parse_args(argv)
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        print("valgrind (with callgrind_control) is not installed", file=sys.stderr)
        return 2
    if args.server_dir:
        server_module.SERVER_DIR[0] = Path(args.server_dir).resolve()
    raise_nofile()
    affinity = plan_affinity()
    prepare_process(affinity.clients)
    settings = Settings(quick=False, affinity=affinity, storage_fs=filesystem_of(tempfile.gettempdir()),
                        mode=args.mode, database_url=postgres.database_url() if args.mode == "postgres" else "")
    mix = MIXES[args.mix]
    start_timer = mix is not DURABLE  # as the saturation and durable scenarios run them
    with tempfile.TemporaryDirectory(prefix="belay-callgrind-") as tmp:
        out = Path(tmp) / "callgrind.out"
        wrapper = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", "--dump-instr=no",
                   "--dump-line=no", "--separate-threads=no"]
        with BelayServer(affinity, bare=args.bare, wrapper=wrapper, **settings.storage()) as server:
            closed_line(settings, "instructions", "warm-up", server, args.clients, mix, WARM_UP_S, start_timer)
            _control("-z", server.pid)
            line, _ = closed_line(settings, "instructions", args.mix, server, args.clients, mix, args.seconds,
                                  start_timer)
            _control("-d", server.pid)
            total = _wait_for_dump(out)
    commands = line["counts"]["commands"]
    print(f"{'bare' if args.bare else server_module.SERVER_DIR[0]} ({args.mode}): {args.mix}, {args.clients} clients: "
          f"{commands} commands, {total / max(commands, 1) / 1000:.1f}k instructions per command")
    return 0


def _control(flag: str, pid: int) -> None:
    subprocess.run(["callgrind_control", flag, str(pid)], check=True, capture_output=True)


def _wait_for_dump(out: Path, timeout_s: float = 30.0) -> int:
    """Instructions in the dump `callgrind_control -d` asked for (written as `<out>.1`)."""
    deadline = time.monotonic() + timeout_s
    dump = out.with_name(out.name + ".1")
    while time.monotonic() < deadline:
        if dump.exists():
            for text in dump.read_text(errors="replace").splitlines():
                if text.startswith(("summary:", "totals:")):
                    return int(text.split()[1])
        time.sleep(0.2)
    raise RuntimeError(f"callgrind wrote no dump to {dump}")


if __name__ == "__main__":
    sys.exit(main())
