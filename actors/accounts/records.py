"""The account records of users.json, as pure functions: no I/O, no clock, inputs never mutated.

A record (reference §6.3): {"username", "password_hash", "role", "assigned_boxes": [int],
"is_active", "created_at", "updated_at"}, plus Belay's "token_epoch"; the users are a dict keyed by
login name. Every change returns a new dict, so the caller can write it to disk first and swap it in
only once it is saved.

A login token carries the epoch its account had at login; a change that must end the account's
sessions (a new password, deactivation, another role or other boxes) gives the record a new one, so
every older token no longer matches. Epochs are random, never counted up: a removed name created
again can never match a token of its predecessor. A record without one (an escalada file, a file
written before epochs) has the epoch "". The caller passes new epochs in, as it passes the time.
"""
from __future__ import annotations

import hashlib
import unicodedata
from collections.abc import Mapping
from typing import Any

from actors.codes import INVALID_BOX, LAST_ADMIN, USER_NOT_FOUND, USERNAME_TAKEN
from actors.rules.limits import is_box_id, parse_box_id

ROLES = ("admin", "judge", "viewer")
DEFAULT_ROLE = "viewer"
ADMIN_NAME = "admin"  # the account made at the first start
EPOCH = "token_epoch"

User = dict[str, Any]
Users = dict[str, User]
SessionKey = tuple[str, tuple[int, ...], str]  # (role, boxes, epoch) that a valid token of the account carries


def canonical_username(raw: str) -> str:
    """NFKC, format characters (zero-width spaces…) removed, any whitespace (NBSP…) as one space,
    trimmed. "Box\u00a03", "Box 3\u200b" and " Box  3 " all become "Box 3"."""
    text = unicodedata.normalize("NFKC", raw)
    text = "".join(ch for ch in text if unicodedata.category(ch) != "Cf")
    return " ".join(text.split())  # str.split() splits on exactly the str.isspace() characters


def load_users(obj: object) -> Users:
    """users.json as read: the dict form, or the legacy list of records. Records that cannot log
    anyone in (no name, no hash, unknown role) are skipped rather than guessed. Never raises."""
    if isinstance(obj, dict):
        pairs = [(key, record) for key, record in obj.items() if isinstance(record, dict)]
    elif isinstance(obj, list):
        pairs = [(record.get("username"), record) for record in obj if isinstance(record, dict)]
    else:
        return {}
    users: Users = {}
    for key, record in pairs:
        if isinstance(key, str) and key.strip() and (user := _normalized(key, record)) is not None:
            users[key] = user  # in the list form a later duplicate wins, as a dict literal would
    return users


def find_user(users: Mapping[str, User], raw_username: object) -> tuple[str, User] | None:
    """(key, record) for a typed login name, in the reference's order (§6.2): the exact key; the
    canonical key; for a box number n, "n" then "Box n" (the control panel promises both aliases);
    finally any case of the canonical form. A box number counts only in its plain spelling, ASCII
    digits without a leading zero: "02", "0002", "٢" or "²" name nothing, rather than being five
    more ways into box 2."""
    if not isinstance(raw_username, str):
        return None
    if raw_username in users:
        return raw_username, users[raw_username]
    name = canonical_username(raw_username)
    if not name:
        return None
    if name.isdigit():  # a bare number; checked on the typed text too, as NFKC turns "２" and "²" into "2"
        if not _is_plain_box_number(raw_username, name):
            return None
        candidates = [name, f"Box {name}"]
    else:
        candidates = [name]
    for key in candidates:
        if key in users:
            return key, users[key]
    folded = name.casefold()
    for key, user in users.items():
        if canonical_username(key).casefold() == folded:
            return key, user
    return None


def login_identity(found: tuple[str, User] | None, raw_username: object) -> str:
    """What a login attempt is guessing at, so that failures are counted once however the name is
    spelled. A known account is identified by its password hash: the aliases of a judge ("Box 3",
    "3", the category name) share one hash string, written and upgraded together, so they are one
    secret with one count of tries. A name that matches nothing is its folded form, "n" as "box n",
    so it is counted just as a real account would be and the count tells nobody which names exist."""
    if found is not None:
        secret = found[1]["password_hash"].encode("utf-8", "surrogatepass")
        return "account:" + hashlib.blake2b(secret, digest_size=16).hexdigest()
    name = canonical_username(raw_username).casefold() if isinstance(raw_username, str) else ""
    if name.isascii() and name.isdigit():
        name = f"box {name}"
    return "name:" + name


def with_admin(users: Users, password_hash: str, now_iso: str, epoch: str) -> Users | None:
    """Users plus a bootstrap "admin" account, or None when an active admin exists already (an
    organiser who removed "admin" in favour of another admin does not get it back at the next
    start) or the name "admin" is taken."""
    if not needs_admin(users):
        return None
    return {**users, ADMIN_NAME: _record(ADMIN_NAME, password_hash, "admin", [], now_iso, now_iso, token_epoch=epoch)}


def needs_admin(users: Users) -> bool:
    return ADMIN_NAME not in users and not _has_active_admin(users)


def with_judge_password(
    users: Users, box_id: int, username: str | None, password_hash: str, now_iso: str, epoch: str
) -> tuple[Users, dict[str, Any], dict[str, list[int]]]:
    """The judge of a box, reachable as the custom name (default "Box {id}"), "Box {id}" and
    "{id}": three identical records except for `username`, which is each record's own key (the
    reference's /api/auth/me shows sub "3" for a login as "3").

    A box's judge is every judge record assigned to that box, so all of them get the new epoch
    (their sessions end); those that shared the box's old password (its earlier names) also get the
    new password. A name held by a judge of another box moves here: the records under it are
    replaced or, if spelled with another case, removed. A name held by an admin or viewer is
    refused with ValueError(USERNAME_TAKEN), also when only the case differs.

    Returns (users, reply, moved): `moved` maps each key taken from another box to its old boxes.
    """
    if not is_box_id(box_id):
        raise ValueError(INVALID_BOX)
    alias, id_alias = f"Box {box_id}", str(box_id)
    name = canonical_username(username) if isinstance(username, str) else ""
    name = name or alias
    keys = list(dict.fromkeys((name, alias, id_alias)))  # the custom name may be "Box 3" itself
    folded = {canonical_username(key).casefold() for key in keys}
    held = {key: user for key, user in users.items() if canonical_username(key).casefold() in folded}
    if any(user.get("role") != "judge" for user in held.values()):
        raise ValueError(USERNAME_TAKEN)
    mine = [box_id]
    moved = {key: list(user["assigned_boxes"]) for key, user in held.items() if user["assigned_boxes"] != mine}
    old_password = _box_password(users, box_id)
    existing = [users[key]["created_at"] for key in keys
                if key not in moved and isinstance(users.get(key, {}).get("created_at"), str)]
    created_at = min(existing, default=now_iso)  # ISO-8601 strings in one format sort by time
    updated: Users = {}
    for key, user in users.items():
        if key in held:
            continue  # rewritten below, or removed: a case variant would shadow the new record
        if user.get("role") == "judge" and box_id in user["assigned_boxes"]:
            user = {**user, EPOCH: epoch, "updated_at": now_iso}
            if user["assigned_boxes"] == mine and old_password is not None and user["password_hash"] == old_password:
                user["password_hash"] = password_hash
        updated[key] = user
    for key in keys:
        updated[key] = _record(key, password_hash, "judge", mine, created_at, now_iso, token_epoch=epoch)
    reply: dict[str, Any] = {"status": "ok", "boxId": box_id, "username": name, "alias": alias, "id_alias": id_alias}
    from_boxes = sorted({box for boxes in moved.values() for box in boxes} - {box_id})
    if from_boxes:
        reply["movedFrom"] = from_boxes[0]
    return updated, reply, moved


def _box_password(users: Users, box_id: int) -> str | None:
    """The hash the box's judge names share today (read from "Box N", else "N"), if this box owns them."""
    for key in (f"Box {box_id}", str(box_id)):
        user = users.get(key)
        if user is not None and user.get("role") == "judge" and user["assigned_boxes"] == [box_id]:
            return str(user["password_hash"])
    return None


def with_password_hash(users: Users, key: str, new_hash: str, now_iso: str) -> Users:
    """After a login that asked for a rehash. The aliases of a judge share one hash string (random
    salts make that impossible otherwise), so they are upgraded together and stay identical.
    A key deleted in the meantime leaves the users as they are."""
    if key not in users:
        return users
    old_hash = users[key]["password_hash"]
    return {
        k: {**user, "password_hash": new_hash, "updated_at": now_iso} if user.get("password_hash") == old_hash else user
        for k, user in users.items()
    }


def with_new_password(users: Users, key: str, new_hash: str, now_iso: str, epoch: str) -> Users:
    """A password set by the organiser: the account and its aliases get it and a new epoch, which
    ends their sessions (unlike a rehash at login, which keeps them)."""
    group = set(aliases_of(users, key))
    return {k: {**user, "password_hash": new_hash, EPOCH: epoch, "updated_at": now_iso} if k in group else user
            for k, user in users.items()}


def with_active(users: Users, key: str, active: bool, now_iso: str, epoch: str) -> Users:
    """The account and its aliases enabled or disabled; disabling ends their sessions. Raises
    ValueError(USER_NOT_FOUND) or ValueError(LAST_ADMIN)."""
    group = set(aliases_of(users, key))
    updated = {k: {**user, "is_active": active, EPOCH: epoch, "updated_at": now_iso}
               if k in group and user["is_active"] != active else user for k, user in users.items()}
    _refuse_losing_the_last_admin(users, updated)
    return updated


def without_user(users: Users, key: str) -> tuple[Users, list[str]]:
    """The account and its aliases removed; returns the removed keys. Raises ValueError(USER_NOT_FOUND)
    or ValueError(LAST_ADMIN)."""
    group = aliases_of(users, key)
    updated = {k: user for k, user in users.items() if k not in group}
    _refuse_losing_the_last_admin(users, updated)
    return updated, group


def aliases_of(users: Users, key: str) -> list[str]:
    """The keys that are one account: a judge's names share one hash string (set together, random
    salts make a coincidence impossible) and the same boxes; anyone else is only its own key."""
    user = users.get(key)
    if user is None:
        raise ValueError(USER_NOT_FOUND)
    if user.get("role") != "judge":
        return [key]
    return [k for k, other in users.items() if other.get("role") == "judge"
            and other["password_hash"] == user["password_hash"] and other["assigned_boxes"] == user["assigned_boxes"]]


def session_keys(users: Users) -> dict[str, SessionKey]:
    """What a valid token of each active account carries; an inactive account has none."""
    return {key: (user["role"], tuple(user["assigned_boxes"]), user.get(EPOCH) or "")
            for key, user in users.items() if user["is_active"]}


def _refuse_losing_the_last_admin(before: Users, after: Users) -> None:
    if _has_active_admin(before) and not _has_active_admin(after):
        raise ValueError(LAST_ADMIN)


def _has_active_admin(users: Users) -> bool:
    return any(user.get("role") == "admin" and user.get("is_active") for user in users.values())


def public_boxes(record: User) -> list[int]:
    """The boxes a token may carry: valid box ids only, whatever the record holds."""
    boxes = record.get("assigned_boxes")
    return [b for b in boxes if is_box_id(b)] if isinstance(boxes, list) else []


def _normalized(key: str, record: dict[str, Any]) -> User | None:
    username = record.get("username")
    password_hash = record.get("password_hash")
    role = record.get("role")
    role = DEFAULT_ROLE if role is None else role
    if not isinstance(password_hash, str) or not password_hash or role not in ROLES:
        return None
    active = record.get("is_active")
    epoch = record.get(EPOCH)
    return _record(
        username if isinstance(username, str) and username.strip() else key,
        password_hash,
        role,
        list(dict.fromkeys(public_boxes(record))),
        _text_or_none(record.get("created_at")),
        _text_or_none(record.get("updated_at")),
        # Absent or null means active (reference default); anything but a real boolean fails closed.
        is_active=True if active is None else active is True,
        token_epoch=epoch if isinstance(epoch, str) else "",
    )


def _record(
    username: str,
    password_hash: str,
    role: str,
    boxes: list[int],
    created_at: str | None,
    updated_at: str | None,
    is_active: bool = True,
    token_epoch: str = "",
) -> User:
    return {
        "username": username,
        "password_hash": password_hash,
        "role": role,
        "assigned_boxes": boxes,
        "is_active": is_active,
        "created_at": created_at,
        "updated_at": updated_at,
        EPOCH: token_epoch,
    }


def _text_or_none(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _is_plain_box_number(raw: str, name: str) -> bool:
    """`name` (the canonical form of `raw`) is a box id typed in ASCII digits without a leading zero."""
    typed_digits = [ch for ch in raw if ch.isdigit()]
    return all(ch.isascii() for ch in typed_digits) and parse_box_id(name) is not None
