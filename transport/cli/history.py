"""`python run.py history` and `python run.py rollback`: a box's versions, and putting one back.

`history` only reads (it works beside a running server). `rollback` needs the server stopped: it
writes exactly the RESTORE event that `POST /api/admin/boxes/{id}/rollback` would (same state,
same line; actors/events.py `encode_restore`), then a fresh checkpoint of the box.
"""
from __future__ import annotations

import argparse
import asyncio
import getpass
import time
import uuid
from typing import Any

from actors.events import encode_restore
from actors.messages import Origin, RestoreBox
from actors.recovery.history import UnknownVersion, Version, page, rollback_source, state_at, versions
from actors.recovery.replay import ReplayError
from actors.recovery.restore import restore_boxes
from transport.cli.common import OK, CliError, existing_reader, existing_storage, opened, print_json, print_table


async def _box_events(args: argparse.Namespace) -> list[dict[str, Any]]:
    return await (await existing_reader(args)).read_box_events(args.box)


def run_history(args: argparse.Namespace) -> int:
    events = asyncio.run(_box_events(args))
    found, next_before = page(versions(events), limit=args.limit, before=args.before, actions=args.action)
    if args.json:
        for version in found:
            print_json(version.to_json())
        return OK
    if not found:
        print(f"box {args.box}: no versions" + (" (with these filters)" if args.before is not None or args.action else
                                               " since the last reset"))
        return OK
    print_table(["version", "time", "action", "user", "role", "category", "route", "scores"],
                [_row(version) for version in found])
    if next_before is not None:
        print(f"older versions: --before {next_before}")
    return OK


def _row(version: Version) -> list[str]:
    cells: list[object] = [version.box_version, version.created_at, version.action, version.actor_username,
                           version.actor_role, version.categorie, version.route_index, version.scores]
    row = ["-" if value is None else str(value) for value in cells]
    if version.problem is not None:
        row[-1] = f"- (cannot be rebuilt: {version.problem})"
    return row


def run_rollback(args: argparse.Namespace) -> int:
    after, message = asyncio.run(_rollback(args))
    print(f"box {args.box} rolled back to version {args.to}: it is now version {after['boxVersion']} with a new "
          f"session, written to the audit log as RESTORE ({message.source})")
    return OK


async def _rollback(args: argparse.Namespace) -> tuple[dict[str, Any], RestoreBox]:
    storage, _ = await existing_storage(args)
    advice = (f"stop it first, or roll back through it: POST /api/admin/boxes/{args.box}/rollback "
              f"with {{\"boxVersion\": {args.to}}}")
    async with opened(storage, advice) as recovered:
        recovery = restore_boxes(recovered)
        live = {box.box_id: (box.seq, box.state["boxVersion"]) for box in recovery.restored}
        live.update({box.box_id: (box.seq, box.box_version) for box in recovery.unavailable})
        try:
            state, as_of_ms = state_at(await storage.read_box_events(args.box), args.to)
        except UnknownVersion:
            raise CliError(f"box {args.box} has no version {args.to} since the last reset "
                           f"(`run.py history --box {args.box}` lists them)") from None
        except ReplayError as exc:
            raise CliError(f"version {args.to} of box {args.box} cannot be rebuilt: {exc}") from None
        seq, live_version = live.get(args.box, (0, 0))
        message = RestoreBox(state, rollback_source(args.to), _origin(), as_of_ms)
        after, line = encode_restore(box_id=args.box, seq=seq + 1, live_version=live_version, message=message,
                                     now_ms=time.time_ns() // 1_000_000, new_session_id=str(uuid.uuid4()))
        await storage.append([line])
        await storage.write_checkpoints([(args.box, seq + 1, after)])
    return after, message


def _origin() -> Origin:
    """Who rolled back from the command line: the operating system's user on the server's machine."""
    try:
        user = getpass.getuser()
    except Exception:  # no user name in this environment (a container without one)
        user = None
    return Origin(username=user, role="cli", ip=None, user_agent="run.py rollback")
