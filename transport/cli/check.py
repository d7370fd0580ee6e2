"""`python run.py check [--repair] [--json]`: verify a storage directory, and repair it offline.

This module is the command: it runs the repair (with --repair) and the check of actors.recovery.check,
then prints the report as text or as one JSON object. The check only reads, so it works beside a
running server; the repair needs the server stopped, and then the directory is checked again.
"""
from __future__ import annotations

import argparse
import asyncio

from actors.recovery.check import Report, check_storage, repair
from transport.cli.common import FAILED, OK, existing_reader, existing_storage, print_json


async def _check(args: argparse.Namespace) -> tuple[list[str] | None, Report]:
    repaired: list[str] | None = None
    if args.repair:
        storage, reader = await existing_storage(args)
        repaired = await repair(storage, reader)
    return repaired, await check_storage(await existing_reader(args))


def run_check(args: argparse.Namespace) -> int:
    repaired, report = asyncio.run(_check(args))
    healthy = report.problems == 0
    if args.json:
        print_json({
            "storageDir": report.location,
            "healthy": healthy,
            "lock": {"held": report.lock_pid is not None, "pid": report.lock_pid},
            "boxes": report.boxes,
            "logLines": report.log_lines,
            "problems": report.problems,
            "warnings": report.warnings,
            "findings": [{"level": level, "message": message} for level, message in report.findings],
            **({"repaired": repaired} if repaired is not None else {}),
        })
        return OK if healthy else FAILED
    print(f"checking {report.location}")
    for sentence in repaired or []:
        print(f"repaired: {sentence}")
    for level, message in report.findings:
        print(f"{level}: {message}")
    if healthy:
        extra = f", {report.warnings} warning(s)" if report.warnings else ""
        print(f"summary: healthy ({report.boxes} box(es), {report.log_lines} log line(s){extra})")
        return OK
    advice = ("" if args.repair else
              "; `python run.py check --repair` (server stopped) fixes what it can without deleting anything")
    print(f"summary: {report.problems} problem(s), {report.warnings} warning(s){advice}")
    return FAILED
