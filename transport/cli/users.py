"""`python run.py users list|add|passwd|disable|enable|remove`: the accounts in users.json.

Listing only reads. Changing takes the directory's lock (the server keeps the accounts in memory
and would overwrite the file) and replaces users.json atomically. While a server holds the lock,
disable, enable and remove go through it instead (transport/local_admin.py), so they take effect
at once; add and passwd ask for the server to be stopped.

A new password, deactivation and removal give the account a new token epoch or remove it, which
ends every session of the account (actors/accounts/records.py).
"""
from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from actors.accounts.actor import new_epoch
from actors.accounts.passwords import hash_password, password_problem
from actors.accounts.records import (
    EPOCH,
    Users,
    canonical_username,
    find_user,
    load_users,
    with_active,
    with_new_password,
    without_user,
)
from actors.codes import LAST_ADMIN, USER_NOT_FOUND
from actors.rules.limits import BOX_ID_RANGE, parse_box_id
from persistence.errors import DocumentUnreadable, StorageLocked
from persistence.factory import StorageSettings, reader_for, storage_for
from transport.cli.common import (
    FAILED,
    OK,
    USAGE,
    CliError,
    existing_reader,
    locked_error,
    print_json,
    print_table,
    storage_settings,
)
from transport.local_admin import LocalCallFailed, call, read_server_file

Change = Callable[[Users], Users]


def run_users(args: argparse.Namespace) -> int:
    asyncio.run(existing_reader(args))  # no storage there: a usage error, before anything else
    settings = storage_settings(args)
    if args.action == "list":
        return _list(settings, args.json)
    if args.action == "add":
        return _add(settings, args)
    if args.action == "passwd":
        return _passwd(settings, args)
    return _switch(settings, args.action, args.name)


class _ServerRunning(Exception):
    """The storage is held by a server: the change must go through it."""


def _read_users(settings: StorageSettings) -> Users:
    """The accounts, read-only; a document that does not parse stops the command before anything changes."""
    return load_users(asyncio.run(_users_document(settings)))


async def _users_document(settings: StorageSettings) -> Any:
    try:
        return await reader_for(settings).read_document("users")
    except DocumentUnreadable as exc:
        raise CliError(f"{exc}; fix it or move it aside (the server moves it aside at start and creates a "
                       f"fresh admin)") from None


def _list(settings: StorageSettings, as_json: bool) -> int:
    users = _read_users(settings)
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
            print(f"no accounts in {settings.directory} (the server creates 'admin' at its first start)")
    return OK


def _add(settings: StorageSettings, args: argparse.Namespace) -> int:
    name = canonical_username(args.name)
    if not name:
        raise CliError("the user name is empty", USAGE)
    boxes = _parse_boxes(args.boxes)
    users = _read_users(settings)
    _refuse_taken(users, name)
    if args.role == "judge" and not boxes:
        raise CliError("a judge needs --boxes (e.g. --boxes 1,2): without boxes it could score nothing", USAGE)
    password = _new_password(args, args.role, (name,))
    password_hash = hash_password(password)

    def change(current: Users) -> Users:
        _refuse_taken(current, name)
        now = _now_iso()
        record = {"username": name, "password_hash": password_hash, "role": args.role,
                  "assigned_boxes": boxes, "is_active": True, "created_at": now, "updated_at": now,
                  EPOCH: new_epoch()}
        return {**current, name: record}

    _write(settings, change)
    boxes_text = f" for box(es) {','.join(map(str, boxes))}" if boxes else ""
    print(f"added {args.role} '{name}'{boxes_text}")
    return OK


def _passwd(settings: StorageSettings, args: argparse.Namespace) -> int:
    found = find_user(_read_users(settings), args.name)
    if found is None:
        raise CliError(f"there is no account '{args.name}' (see `python run.py users list`)")
    key, record = found
    password_hash = hash_password(_new_password(args, record["role"], (key, record["username"])))

    def change(current: Users) -> Users:
        if key not in current:
            raise CliError(f"the account '{key}' disappeared meanwhile; nothing was changed")
        return with_new_password(current, key, password_hash, _now_iso(), new_epoch())

    _write(settings, change)
    print(f"password of '{key}' changed; its sessions are ended")
    return OK


def _switch(settings: StorageSettings, action: str, name: str) -> int:
    """disable, enable or remove: here under the lock, or through the running server."""
    outcome: list[str] = []

    def change(current: Users) -> Users:
        found = find_user(current, name)
        if found is None:
            raise CliError(_refusal(USER_NOT_FOUND, name))
        key = found[0]
        try:
            if action == "remove":
                updated, removed = without_user(current, key)
                outcome.extend(removed)
                return updated
            updated = with_active(current, key, action == "enable", _now_iso(), new_epoch())
        except ValueError as exc:
            raise CliError(_refusal(str(exc), name)) from None
        outcome.extend(k for k, user in updated.items() if current.get(k) is not user)
        return updated

    try:
        _write(settings, change, server_may_run=True)
        running = ""
    except _ServerRunning:
        outcome[:] = _through_server(settings, action, name)
        running = " (by the running server)"
    done = {"remove": "removed", "enable": "enabled", "disable": "disabled"}[action]
    if not outcome:
        print(f"'{name}' was {done} already; nothing was changed")
    else:
        ends = "" if action == "enable" else "; their sessions are ended and their live connections closed"
        print(f"{done} {', '.join(repr(key) for key in outcome)}{running}{ends}")
    return OK


def _through_server(settings: StorageSettings, action: str, name: str) -> list[str]:
    root = settings.directory
    server = read_server_file(root)
    reader = reader_for(settings)
    holder = asyncio.run(reader.holder())
    if server is None or holder is None or holder.pid != str(server.pid):
        raise locked_error(StorageLocked("", holder, reader.location),
                           f"its {root / 'server.json'} is missing or not its own; stop the server, or "
                           f"try again once it has finished starting")
    try:
        status, reply = call(server, f"/api/admin/users/{action}", {"username": name})
    except LocalCallFailed as exc:
        raise CliError(str(exc)) from None
    if status != 200:
        raise CliError(_refusal(str(reply.get("detail")), name))
    keys = reply.get("removed") if action == "remove" else reply.get("changed")
    return [str(key) for key in keys] if isinstance(keys, list) else []


def _refusal(code: str, name: str) -> str:
    if code == USER_NOT_FOUND:
        return f"there is no account '{name}' (see `python run.py users list`)"
    if code == LAST_ADMIN:
        return (f"'{name}' is the last active admin; nobody could log in to the control panel. Add or enable "
                f"another admin first. Nothing was changed.")
    return f"refused: {code}; nothing was changed"


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
        box = parse_box_id(part, leading_zeros=True)
        if box is None:
            raise CliError(f"--boxes: {part[:20]!r} is not a box id ({BOX_ID_RANGE})", USAGE)
        if box not in boxes:
            boxes.append(box)
    return boxes


def _new_password(args: argparse.Namespace, role: str, names: tuple[str, ...]) -> str:
    if args.password_stdin:
        line = sys.stdin.readline()
        password = line.removesuffix("\n")
        password = password.removesuffix("\r")
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


def _write(settings: StorageSettings, change: Change, *, server_may_run: bool = False) -> None:
    asyncio.run(_write_as_the_writer(settings, change, server_may_run))


async def _write_as_the_writer(settings: StorageSettings, change: Change, server_may_run: bool) -> None:
    """As the storage's one writer: read the accounts again, apply the change, replace the document."""
    storage = storage_for(settings)
    try:
        await storage.open(False)
    except BaseException as exc:
        await storage.close()
        if not isinstance(exc, StorageLocked):
            raise
        if server_may_run:
            raise _ServerRunning() from None
        raise locked_error(exc, "accounts can be changed only with the server stopped (it keeps them in memory "
                                "and would overwrite users.json); judges' passwords can also be set from the "
                                "control panel") from None
    try:
        raw = await _users_document(settings)
        current = load_users(raw)
        updated = change(current)
        if load_users(updated).keys() != updated.keys():
            raise CliError("the changed accounts would not load; nothing was changed", FAILED)
        # Untouched records stay exactly as they are in the file (also ones the server skips);
        # a legacy list-form file becomes the dict form the server writes.
        result = dict(raw) if isinstance(raw, dict) else {}
        for key, record in updated.items():
            if key not in result or current.get(key) != record:
                result[key] = record
        for key in current.keys() - updated.keys():  # removed
            result.pop(key, None)
        await storage.write_document("users", result)
    finally:
        await storage.close()


def _now_iso() -> str:
    return datetime.now(UTC).isoformat()
