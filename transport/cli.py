"""Organiser commands: `python run.py check|backup|restore|audit|users ...`.

Each command works on a storage directory without a server (or read-only beside a running one)
and answers in plain sentences. Exit status: 0 = ok / healthy, 1 = problems found or the operation
failed, 2 = usage error or the directory is locked by a running server.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import Callable, Sequence

import orjson

from persistence.errors import StorageError, StorageLocked
from transport.config import ConfigError, load_config
from transport.request_numbers import whole_number

COMMANDS = ("check", "backup", "restore", "audit", "history", "rollback", "users")
OK, FAILED, USAGE = 0, 1, 2
AUDIT_DEFAULT_TAIL = 20
AUDIT_MAX_TAIL = 2000

EPILOG = """\
organiser commands (each has its own --help):
  check    verify a storage directory (read-only; --repair fixes it with the server stopped)
  backup   write a backup zip of a stopped server's storage directory
  restore  unpack a backup zip into a new, empty storage directory
  audit    show the newest events of the audit log (read-only)
  history  list a box's versions since the last reset (read-only)
  rollback put a box back to one of its versions (server stopped)
  users    list, add, disable, enable or remove accounts, or set a password (users.json)
"""


class CliError(Exception):
    """Ends a command with a message for the organiser and an exit status."""

    def __init__(self, message: str, status: int = FAILED) -> None:
        super().__init__(message)
        self.status = status


def locked_error(root: Path, advice: str) -> CliError:
    """The directory is locked by a running server: exit 2, saying by whom and what to do instead."""
    from persistence.storage_lock import locked_by_server

    return CliError(str(locked_by_server(root, advice)), USAGE)


# -- progress -------------------------------------------------------------------------------------

class Progress:
    """`\\r[####      ] 40% 12.3 MB` on stderr, only when stderr is a terminal."""

    WIDTH = 30

    def __init__(self, label: str, stream=None) -> None:  # type: ignore[no-untyped-def]
        self._stream = stream if stream is not None else sys.stderr
        self._label = label
        self.enabled = bool(getattr(self._stream, "isatty", lambda: False)())
        self._shown = False
        self._last = -1

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled:
            return
        fraction = 1.0 if total <= 0 else min(1.0, done / total)
        percent = int(fraction * 100)
        if percent == self._last and done < total:
            return
        self._last = percent
        filled = int(fraction * self.WIDTH)
        bar = "#" * filled + " " * (self.WIDTH - filled)
        self._stream.write(f"\r{self._label} [{bar}] {percent:3d}% {human_size(done)}")
        self._stream.flush()
        self._shown = True

    def finish(self) -> None:
        if self.enabled and self._shown:
            self._stream.write("\n")
            self._stream.flush()
            self._shown = False


def human_size(size: int) -> str:
    if size < 1000 * 1000:
        return f"{size / 1000:.1f} kB"
    if size < 1000 * 1000 * 1000:
        return f"{size / 1e6:.1f} MB"
    return f"{size / 1e9:.2f} GB"


# -- shared helpers --------------------------------------------------------------------------------

def storage_dir(args: argparse.Namespace, *, must_exist: bool = True) -> Path:
    """--storage-dir, else STORAGE_DIR, else ./data (the server's own rule)."""
    try:
        config = load_config(argparse.Namespace(storage_dir=args.storage_dir,
                                                backup_dir=getattr(args, "backup_dir", None)))
    except ConfigError as exc:
        raise CliError(str(exc), USAGE) from None
    args.resolved_backup_dir = config.backup_dir
    root = config.storage_dir
    if must_exist and not root.is_dir():
        raise CliError(f"there is no storage directory at {root} (check --storage-dir or STORAGE_DIR)", USAGE)
    return root


def print_json(value: object) -> None:
    sys.stdout.write(orjson.dumps(value).decode() + "\n")


def _add_storage_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--storage-dir", default=None, metavar="DIR",
                        help="the server's storage directory (default: STORAGE_DIR, else ./data)")


def _tail(text: str) -> int:
    value = whole_number(text, 1, AUDIT_MAX_TAIL)
    if value is None:
        raise argparse.ArgumentTypeError(f"{text[:20]!r} is not a number between 1 and {AUDIT_MAX_TAIL}")
    return value


def _bounded(lo: int, hi: int) -> Callable[[str], int]:
    """An argparse type: digits only (never int() of a huge string), from lo to hi."""
    def parse(text: str) -> int:
        value = whole_number(text, lo, hi)
        if value is None:
            raise argparse.ArgumentTypeError(f"{text[:20]!r} is not a number from {lo} to {hi}")
        return value
    return parse


def _actions(text: str) -> frozenset[str]:
    from actors.recovery.history import ACTIONS

    names = frozenset(part.strip() for part in text.split(",") if part.strip())
    if not names or not names <= ACTIONS:
        raise argparse.ArgumentTypeError("one or more (comma-separated) of " + ", ".join(sorted(ACTIONS)))
    return names


def _box_id(text: str) -> int:
    value = whole_number(text, 0, 9999)
    if value is None:
        raise argparse.ArgumentTypeError(f"{text[:20]!r} is not a box id (0..9999)")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="run.py", description="Belay organiser commands.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    check = commands.add_parser(
        "check", help="verify a storage directory",
        description="Verify a storage directory without changing it (safe while the server runs): the lock, "
                    "every box checkpoint, every log line, a torn log tail, stray temp files, and that "
                    "replaying the log gives exactly the saved box states. Exit 0 = healthy, 1 = problems.")
    _add_storage_dir(check)
    check.add_argument("--repair", action="store_true",
                       help="with the server stopped: cut a torn log tail, remove stray temp files, move corrupt "
                            "checkpoints to boxes/quarantine/, rebuild every box from the log and write fresh "
                            "checkpoints, then check again. Nothing is deleted.")
    check.add_argument("--json", action="store_true", help="print the report as one JSON object")

    backup = commands.add_parser(
        "backup", help="write an offline backup zip",
        description="Back up a storage directory while the server is stopped (with the server running, use "
                    "the control panel or POST /api/admin/ops/backup/now). Prints the zip's path and size.")
    _add_storage_dir(backup)
    backup.add_argument("--backup-dir", default=None, metavar="DIR",
                        help="where the zip goes (default: BACKUP_DIR, else ./backups)")

    restore = commands.add_parser(
        "restore", help="unpack a backup zip into a new storage directory",
        description="Verify a backup zip (names, sizes, checksums), unpack it into a storage directory that "
                    "does not exist yet or is empty, and prove that a server could start on it.")
    restore.add_argument("zip", metavar="BACKUP.zip", help="a zip written by Belay's backup")
    _add_storage_dir(restore)

    audit = commands.add_parser(
        "audit", help="show the newest audit-log events",
        description="The newest events of the audit log, newest first (read-only; safe while the server runs).")
    _add_storage_dir(audit)
    audit.add_argument("--tail", type=_tail, default=AUDIT_DEFAULT_TAIL, metavar="N",
                       help=f"how many events (1..{AUDIT_MAX_TAIL}, default {AUDIT_DEFAULT_TAIL})")
    audit.add_argument("--box", type=_box_id, default=None, metavar="ID", help="only this box")
    audit.add_argument("--json", action="store_true", help="one JSON object per line instead of a table")
    audit.add_argument("--payload", action="store_true", help="include each event's payload")

    from actors.recovery.history import DEFAULT_LIMIT, MAX_LIMIT
    from actors.rules.commands import MAX_BOX_VERSION

    history = commands.add_parser(
        "history", help="list a box's versions since the last reset",
        description="A box's versions since the last reset (RESET_BOXES_ON_START), newest first, rebuilt from the "
                    "audit log: version, time, action, who, and the category, route and number of scores it left. "
                    "Read-only; safe while the server runs. The same as GET /api/admin/boxes/ID/history.")
    _add_storage_dir(history)
    history.add_argument("--box", type=_box_id, required=True, metavar="ID", help="the box")
    history.add_argument("--limit", type=_bounded(1, MAX_LIMIT), default=DEFAULT_LIMIT, metavar="N",
                         help=f"how many versions (1..{MAX_LIMIT}, default {DEFAULT_LIMIT})")
    history.add_argument("--before", type=_bounded(0, MAX_BOX_VERSION), default=None, metavar="V",
                         help="only versions below V (the next page)")
    history.add_argument("--action", type=_actions, default=None, metavar="A",
                         help="only versions made by these actions, e.g. SUBMIT_SCORE or INIT_ROUTE,RESTORE")
    history.add_argument("--json", action="store_true", help="one JSON object per line instead of a table")

    rollback = commands.add_parser(
        "rollback", help="put a box back to one of its versions",
        description="Put a box back to the state it had at one version (see `history`), with the server "
                    "stopped: written to the audit log as RESTORE with a new session and a version above the "
                    "current one, exactly as POST /api/admin/boxes/ID/rollback does with the server running.")
    _add_storage_dir(rollback)
    rollback.add_argument("--box", type=_box_id, required=True, metavar="ID", help="the box")
    rollback.add_argument("--to", type=_bounded(0, MAX_BOX_VERSION), required=True, metavar="N",
                          help="the version to put back")

    users = commands.add_parser(
        "users", help="list or change accounts",
        description="Accounts in users.json. add and passwd need the server stopped; disable, enable and "
                    "remove also work while it runs (through the running server).")
    actions = users.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="username, role, boxes, active (never password hashes)",
                                 description="List the accounts: username, role, boxes, active.")
    _add_storage_dir(listing)
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    add = actions.add_parser("add", help="create an account",
                             description="Create an account. The password is asked twice, or read from stdin "
                                         "with --password-stdin.")
    add.add_argument("name", metavar="NAME")
    add.add_argument("--role", required=True, choices=("admin", "judge", "viewer"))
    add.add_argument("--boxes", default=None, metavar="1,2", help="boxes a judge (required) or a viewer may use")
    passwd = actions.add_parser("passwd", help="set an account's password",
                                description="Set a new password. For a judge, every alias of the judge "
                                            "(Box N, N, custom name) gets it.")
    passwd.add_argument("name", metavar="NAME")
    for sub in (add, passwd):
        _add_storage_dir(sub)
        sub.add_argument("--password-stdin", action="store_true",
                         help="read the password from the first line of stdin (for scripts)")
    ends = ("Its sessions end and its open live connections close. The last active admin cannot be disabled or "
            "removed.")
    for action, what, effect in (("disable", "Disable an account: it can no longer log in", ends),
                                 ("enable", "Enable a disabled account again", "Its old sessions stay ended."),
                                 ("remove", "Remove an account", ends)):
        sub = actions.add_parser(action, help=what.split(":")[0].lower(),
                                 description=f"{what}. A judge's other names (Box N, N, custom name) go with it. "
                                             f"{effect} Works with the server stopped or running.")
        sub.add_argument("name", metavar="NAME")
        _add_storage_dir(sub)
    return parser


def _run(args: argparse.Namespace) -> int:
    # Imported here so `run.py --help` and the server never pay for them.
    if args.command == "check":
        from transport.cli_check import run_check
        return run_check(args)
    if args.command in ("backup", "restore"):
        from transport.cli_backup import run_backup, run_restore
        return run_backup(args) if args.command == "backup" else run_restore(args)
    if args.command == "audit":
        return run_audit(args)
    if args.command in ("history", "rollback"):
        from transport.cli_history import run_history, run_rollback
        return run_history(args) if args.command == "history" else run_rollback(args)
    from transport.cli_users import run_users
    return run_users(args)


def main(argv: Sequence[str]) -> int:
    parser = build_parser()
    args = parser.parse_args(list(argv))
    logging.basicConfig(level=logging.ERROR, stream=sys.stderr, format="%(message)s")
    try:
        return _run(args)
    except CliError as exc:
        print(f"run.py {args.command}: {exc}", file=sys.stderr)
        return exc.status
    except StorageLocked as exc:
        print(f"run.py {args.command}: {exc}", file=sys.stderr)
        return USAGE
    except (StorageError, OSError) as exc:
        print(f"run.py {args.command}: {exc}", file=sys.stderr)
        return FAILED
    except KeyboardInterrupt:
        print(f"run.py {args.command}: interrupted", file=sys.stderr)
        return FAILED


# -- audit -----------------------------------------------------------------------------------------

def run_audit(args: argparse.Namespace) -> int:
    from persistence.audit_log import read_latest
    from persistence.wal import ARCHIVE_RE, LOG_NAME

    root = storage_dir(args)
    log_path = root / LOG_NAME
    # Archives first: if the server rotates meanwhile, the old log is then listed as well or the
    # new log is read; never is an event missed twice over.
    archives = sorted(((int(m.group(1)), root / name) for name in _files(root)
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


def _files(root: Path) -> list[str]:
    try:
        return sorted(entry.name for entry in os.scandir(root) if entry.is_file())
    except FileNotFoundError:
        return []


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


def print_table(header: list[str], rows: list[list[str]], write: Callable[[str], None] = print) -> None:
    widths = [max(len(header[i]), *(len(row[i]) for row in rows)) for i in range(len(header))]
    last = len(header) - 1
    for row in [header, *rows]:
        write("  ".join(cell if i == last else cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip())
