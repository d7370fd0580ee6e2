"""`python run.py audit`: the newest events of the audit log, newest first (read-only)."""
from __future__ import annotations

import argparse
import asyncio
from typing import Any

import orjson

from transport.cli.common import OK, existing_reader, print_json, print_table

AUDIT_DEFAULT_TAIL = 20


async def _latest(args: argparse.Namespace) -> list[dict[str, Any]]:
    reader = await existing_reader(args)
    return await reader.read_audit(limit=args.tail, box_id=args.box, include_payload=args.payload)


def run_audit(args: argparse.Namespace) -> int:
    events = asyncio.run(_latest(args))
    if args.json:
        for event in events:
            print_json(event)
        return OK
    _print_audit_table(events, args.payload)
    return OK


def _print_audit_table(events: list[dict[str, Any]], with_payload: bool) -> None:
    if not events:
        print("no events")
        return
    header = ["time", "box", "action", "version", "user", "role", "ip"] + (["payload"] if with_payload else [])
    rows = []
    for event in events:
        cells = [event.get("createdAt"), event.get("boxId"), event.get("action"), event.get("boxVersion"),
                 event.get("actorUsername"), event.get("actorRole"), event.get("actorIp")]
        row = ["-" if value is None else str(value) for value in cells]
        if with_payload:
            payload = event.get("payload")
            row.append("-" if payload is None else orjson.dumps(payload).decode())
        rows.append(row)
    print_table(header, rows)
