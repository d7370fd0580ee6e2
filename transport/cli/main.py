"""Organiser commands: `python run.py check|backup|restore|audit|history|rollback|users ...`.

Each command works on a storage directory without a server (or read-only beside a running one)
and answers in plain sentences. Exit status: 0 = ok / healthy, 1 = problems found or the operation
failed, 2 = usage error or the directory is locked by a running server.

This module is the parser and the dispatch; each command lives in its own module beside it.
"""
from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence

from persistence.errors import StorageError, StorageLocked
from transport.cli.audit import AUDIT_DEFAULT_TAIL, run_audit
from transport.cli.common import FAILED, USAGE, CliError
from transport.request_numbers import AUDIT_MAX_EVENTS, whole_number

COMMANDS = ("check", "backup", "restore", "audit", "history", "rollback", "users", "migrate")

EPILOG = """\
organiser commands (each has its own --help):
  check    verify a storage directory (read-only; --repair fixes it with the server stopped)
  backup   write a backup zip of a stopped server's storage directory
  restore  unpack a backup zip into a new, empty storage directory
  audit    show the newest events of the audit log (read-only)
  history  list a box's versions since the last reset (read-only)
  rollback put a box back to one of its versions (server stopped)
  users    list, add, disable, enable or remove accounts, or set a password (users.json)
  migrate  move a competition between a storage directory and PostgreSQL (both stopped)
"""


def _add_storage_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--storage-dir", default=None, metavar="DIR",
                        help="the server's storage directory (default: STORAGE_DIR, else ./data)")


def _tail(text: str) -> int:
    value = whole_number(text, 1, AUDIT_MAX_EVENTS)
    if value is None:
        raise argparse.ArgumentTypeError(f"{text[:20]!r} is not a number between 1 and {AUDIT_MAX_EVENTS}")
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
    from actors.rules.limits import BOX_ID_RANGE, parse_box_id

    value = parse_box_id(text, leading_zeros=True)
    if value is None:
        raise argparse.ArgumentTypeError(f"{text[:20]!r} is not a box id ({BOX_ID_RANGE})")
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
                       help=f"how many events (1..{AUDIT_MAX_EVENTS}, default {AUDIT_DEFAULT_TAIL})")
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

    migrate = commands.add_parser(
        "migrate", help="move a competition between a storage directory and PostgreSQL",
        description="Copy a whole competition from a storage directory into a PostgreSQL schema, or from a schema "
                    "into a new or empty directory, with the servers of both stopped. All or nothing: the target is "
                    "written in one transaction (or a folder renamed into place) only once every box's lines match "
                    "byte for byte (SHA-256) and every box replays to its checkpoint.")
    migrate.add_argument("--from", dest="source", required=True, metavar="DIR|URL",
                         help="a storage directory, or postgresql://user@host:port/database")
    migrate.add_argument("--to", dest="target", required=True, metavar="DIR|URL",
                         help="a new or empty storage directory, or postgresql://user@host:port/database")
    migrate.add_argument("--schema", default=None, metavar="S",
                         help="the competition's schema in PostgreSQL (default: DATABASE_SCHEMA, else belay)")
    migrate.add_argument("--dry-run", action="store_true",
                         help="read and prove the source, check that the target is free and empty; write nothing")
    return parser


def _run(args: argparse.Namespace) -> int:
    # Imported here so `run.py --help` and the server never pay for them.
    if args.command == "check":
        from transport.cli.check import run_check
        return run_check(args)
    if args.command in ("backup", "restore"):
        from transport.cli.backup import run_backup, run_restore
        return run_backup(args) if args.command == "backup" else run_restore(args)
    if args.command == "audit":
        return run_audit(args)
    if args.command in ("history", "rollback"):
        from transport.cli.history import run_history, run_rollback
        return run_history(args) if args.command == "history" else run_rollback(args)
    if args.command == "migrate":
        from transport.cli.migrate import run_migrate
        return run_migrate(args)
    from transport.cli.users import run_users
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


