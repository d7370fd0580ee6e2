"""`python run.py users list|add|passwd`: the accounts in users.json.

Listing only reads. Changing takes the directory's lock (so the server must be stopped: it keeps
the accounts in memory and would overwrite the file) and replaces users.json atomically.
"""
from __future__ import annotations

import argparse
import getpass
import sys
from datetime import datetime, timezone
from pathlib import Path

import orjson

from actors.users import Users, canonical_username, find_user, load_users, with_password_hash
from persistence.errors import StorageLocked
from persistence.json_store import JsonStore
from transport.cli import FAILED, OK, USAGE, CliError, locked_error, print_json, print_table, storage_dir
from transport.passwords import hash_password, password_problem

USERS_FILE = "users.json"


def run_users(args: argparse.Namespace) -> int:
    root = storage_dir(args)
    if args.action == "list":
        return _list(root, args.json)
    if args.action == "add":
        return _add(root, args)
    return _passwd(root, args)


def _read_users(root: Path) -> Users:
    """users.json read-only; a file that does not parse stops the command before anything changes."""
    path = root / USERS_FILE
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return {}
    try:
        return load_users(orjson.loads(raw))
    except orjson.JSONDecodeError:
        raise CliError(f"{path} is not valid JSON; fix it or move it aside (the server moves it aside "
                       f"at start and creates a fresh admin)") from None


def _list(root: Path, as_json: bool) -> int:
    users = _read_users(root)
    rows = []
    for key, user in sorted(users.items(), key=lambda item: item[0].casefold()):
        boxes = user.get("assigned_boxes") or []
        if as_json:
            print_json({"username": key, "role": user["role"], "boxes": boxes, "active": user["is_active"]})
        else:
            rows.append([key, user["role"], ",".join(map(str, boxes)) or "-", "yes" if user["is_active"] else "no"])
    if not as_json:
        if rows:
            print_table(["username", "role", "boxes", "active"], rows)
        else:
            print(f"no accounts in {root / USERS_FILE} (the server creates 'admin' at its first start)")
    return OK


def _add(root: Path, args: argparse.Namespace) -> int:
    name = canonical_username(args.name)
    if not name:
        raise CliError("the user name is empty", USAGE)
    boxes = _parse_boxes(args.boxes)
    users = _read_users(root)
    _refuse_taken(users, name)
    if args.role == "judge" and not boxes:
        print("note: a judge without --boxes can score no box", file=sys.stderr)
    password = _new_password(args, args.role, (name,))
    password_hash = hash_password(password)

    def change(current: Users) -> Users:
        _refuse_taken(current, name)
        now = _now_iso()
        record = {"username": name, "password_hash": password_hash, "role": args.role,
                  "assigned_boxes": boxes, "is_active": True, "created_at": now, "updated_at": now}
        return {**current, name: record}

    _write(root, change)
    boxes_text = f" for box(es) {','.join(map(str, boxes))}" if boxes else ""
    print(f"added {args.role} '{name}'{boxes_text}")
    return OK


def _passwd(root: Path, args: argparse.Namespace) -> int:
    found = find_user(_read_users(root), args.name)
    if found is None:
        raise CliError(f"there is no account '{args.name}' (see `python run.py users list`)")
    key, record = found
    password_hash = hash_password(_new_password(args, record["role"], (key, record["username"])))

    def change(current: Users) -> Users:
        if key not in current:
            raise CliError(f"the account '{key}' disappeared meanwhile; nothing was changed")
        return with_password_hash(current, key, password_hash, _now_iso())

    _write(root, change)
    print(f"password of '{key}' changed")
    return OK


def _refuse_taken(users: Users, name: str) -> None:
    folded = name.casefold()
    for key in users:
        if canonical_username(key).casefold() == folded:
            raise CliError(f"an account '{key}' exists already; use `users passwd` to change its password")


def _parse_boxes(text: str | None) -> list[int]:
    if not text:
        return []
    boxes: list[int] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        if not part.isascii() or not part.isdigit() or int(part) > 9999:
            raise CliError(f"--boxes: {part!r} is not a box id (0..9999)", USAGE)
        if int(part) not in boxes:
            boxes.append(int(part))
    return boxes


def _new_password(args: argparse.Namespace, role: str, names: tuple[str, ...]) -> str:
    if args.password_stdin:
        line = sys.stdin.readline()
        password = line[:-1] if line.endswith("\n") else line
        password = password[:-1] if password.endswith("\r") else password
    else:
        if not sys.stdin.isatty():
            raise CliError("no terminal to ask for the password; pipe it in with --password-stdin", USAGE)
        password = getpass.getpass("new password: ")
        if getpass.getpass("again: ") != password:
            raise CliError("the two passwords differ; nothing was changed")
    if not password:
        raise CliError("the password is empty; nothing was changed")
    if (problem := password_problem(password, role, names)) is not None:
        raise CliError(f"that password is weak: {problem}. Nothing was changed.")
    return password


def _write(root: Path, change) -> None:  # type: ignore[no-untyped-def]
    """Under the directory lock: read users.json again, apply the change, replace the file atomically."""
    store = JsonStore(root)
    try:
        store.open()
    except StorageLocked:
        raise locked_error(root, "accounts can be changed only with the server stopped (it keeps them in memory "
                                 "and would overwrite users.json); judges' passwords can also be set from the "
                                 "control panel") from None
    try:
        current = _read_users(root)
        updated = change(current)
        if load_users(updated).keys() != updated.keys():
            raise CliError("the changed accounts would not load; nothing was changed", FAILED)
        # Untouched records stay exactly as they are in the file (also ones the server skips);
        # a legacy list-form file becomes the dict form the server writes.
        raw = store.read_document("users")
        result = dict(raw) if isinstance(raw, dict) else {}
        for key, record in updated.items():
            if key not in result or current.get(key) != record:
                result[key] = record
        store.write_document("users", result)
    finally:
        store.close()


def _now_iso() -> str:
    return datetime.now(timezone.utc).isoformat()
