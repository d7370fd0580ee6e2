"""`python run.py audit`: the newest events of the audit log, newest first (read-only)."""
from __future__ import annotations

import argparse
import os
from pathlib import Path

import orjson

from transport.cli.common import OK, print_json, print_table, storage_dir

AUDIT_DEFAULT_TAIL = 20


def run_audit(args: argparse.Namespace) -> int:
    from persistence.audit_log import read_latest
    from persistence.fs import FileSystem
    from persistence.wal import ARCHIVE_RE, LOG_NAME

    root = storage_dir(args)
    log_path = root / LOG_NAME
    # Archives first: if the server rotates meanwhile, the old log is then listed as well or the
    # new log is read; never is an event missed twice over.
    archives = sorted(((int(m.group(1)), root / name) for name in FileSystem().list_files(root)
                       if (m := ARCHIVE_RE.match(name))), reverse=True)
    end = _last_complete_line_end(log_path)
    events = read_latest(log_path, end, [path for _, path in archives], limit=args.tail, box_id=args.box,
                         include_payload=args.payload)
    if args.json:
        for event in events:
            print_json(event)
        return OK
    _print_audit_table(events, args.payload)
    return OK


def _last_complete_line_end(path: Path, block: int = 64 * 1024) -> int:
    """Offset just after the last "\\n": a batch still being written is never read."""
    try:
        with open(path, "rb") as source:
            pos = source.seek(0, os.SEEK_END)
            while pos > 0:
                start = max(0, pos - block)
                source.seek(start)
                chunk = source.read(pos - start)
                found = chunk.rfind(b"\n")
                if found >= 0:
                    return start + found + 1
                pos = start
    except FileNotFoundError:
        pass
    return 0


def _print_audit_table(events: list[dict], with_payload: bool) -> None:
    if not events:
        print("no events")
        return
    header = ["time", "box", "action", "version", "user", "role", "ip"] + (["payload"] if with_payload else [])
    rows = []
    for event in events:
        row = [event.get("createdAt"), event.get("boxId"), event.get("action"), event.get("boxVersion"),
               event.get("actorUsername"), event.get("actorRole"), event.get("actorIp")]
        row = ["-" if value is None else str(value) for value in row]
        if with_payload:
            payload = event.get("payload")
            row.append("-" if payload is None else orjson.dumps(payload).decode())
        rows.append(row)
    print_table(header, rows)
