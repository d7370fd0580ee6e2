"""The account records of users.json, as pure functions: no I/O, no clock, inputs never mutated.

A record (reference §6.3): {"username", "password_hash", "role", "assigned_boxes": [int],
"is_active", "created_at", "updated_at"}; the users are a dict keyed by login name. Every change
returns a new dict, so the caller can write it to disk first and swap it in only once it is saved.
"""
from __future__ import annotations

import hashlib
import unicodedata
from typing import Any

ROLES = ("admin", "judge", "viewer")
DEFAULT_ROLE = "viewer"
ADMIN_NAME = "admin"  # the account made at the first start
MAX_BOX_ID = 9999

User = dict[str, Any]
Users = dict[str, User]


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


def find_user(users: Users, raw_username: str) -> tuple[str, User] | None:
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


def login_identity(found: tuple[str, User] | None, raw_username: str) -> str:
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


def with_admin(users: Users, password_hash: str, now_iso: str) -> Users | None:
    """Users plus a bootstrap "admin" account, or None when one exists already."""
    if ADMIN_NAME in users:
        return None
    return {**users, ADMIN_NAME: _record(ADMIN_NAME, password_hash, "admin", [], now_iso, now_iso)}


def with_judge_password(
    users: Users, box_id: int, username: str | None, password_hash: str, now_iso: str
) -> tuple[Users, dict[str, Any]]:
    """The judge of a box, reachable as the custom name (default "Box {id}"), "Box {id}" and
    "{id}": three identical records except for `username`, which is each record's own key (the
    reference's /api/auth/me shows sub "3" for a login as "3"). Raises ValueError("username_taken") rather than
    overwrite, or shadow by case, an admin or viewer account, or take another box's "Box n" or "n"."""
    if not _is_box_id(box_id):
        raise ValueError("invalid_box")
    alias, id_alias = f"Box {box_id}", str(box_id)
    name = canonical_username(username) if isinstance(username, str) else ""
    name = name or alias
    if _box_alias_of(name) not in (None, box_id):
        raise ValueError("username_taken")  # box 5's judge typing "5" must not reach box 3's account
    keys = list(dict.fromkeys((name, alias, id_alias)))  # the custom name may be "Box 3" itself
    folded = {canonical_username(key).casefold() for key in keys}
    for key, user in users.items():
        if user.get("role") != "judge" and canonical_username(key).casefold() in folded:
            raise ValueError("username_taken")
    existing = [users[key]["created_at"] for key in keys if isinstance(users.get(key, {}).get("created_at"), str)]
    created_at = min(existing, default=now_iso)  # ISO-8601 strings in one format sort by time
    updated = dict(users)
    for key in keys:
        updated[key] = _record(key, password_hash, "judge", [box_id], created_at, now_iso)
    reply = {"status": "ok", "boxId": box_id, "username": name, "alias": alias, "id_alias": id_alias}
    return updated, reply


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


def public_boxes(record: User) -> list[int]:
    """The boxes a token may carry: valid box ids only, whatever the record holds."""
    boxes = record.get("assigned_boxes")
    return [b for b in boxes if _is_box_id(b)] if isinstance(boxes, list) else []


def _normalized(key: str, record: dict[str, Any]) -> User | None:
    username = record.get("username")
    password_hash = record.get("password_hash")
    role = record.get("role")
    role = DEFAULT_ROLE if role is None else role
    if not isinstance(password_hash, str) or not password_hash or role not in ROLES:
        return None
    active = record.get("is_active")
    return _record(
        username if isinstance(username, str) and username.strip() else key,
        password_hash,
        role,
        list(dict.fromkeys(public_boxes(record))),
        _text_or_none(record.get("created_at")),
        _text_or_none(record.get("updated_at")),
        # Absent or null means active (reference default); anything but a real boolean fails closed.
        is_active=True if active is None else active is True,
    )


def _record(
    username: str,
    password_hash: str,
    role: str,
    boxes: list[int],
    created_at: str | None,
    updated_at: str | None,
    is_active: bool = True,
) -> User:
    return {
        "username": username,
        "password_hash": password_hash,
        "role": role,
        "assigned_boxes": boxes,
        "is_active": is_active,
        "created_at": created_at,
        "updated_at": updated_at,
    }


def _text_or_none(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _box_alias_of(name: str) -> int | None:
    """The box whose "Box n" or "n" this canonical name is, in any case, or None."""
    folded = name.casefold()
    number = folded[len("box "):] if folded.startswith("box ") else folded
    return int(number) if _is_plain_box_number(number, number) else None


def _is_plain_box_number(raw: str, name: str) -> bool:
    """`name` (the canonical form of `raw`) is a box id typed in ASCII digits without a leading zero."""
    typed_digits = [ch for ch in raw if ch.isdigit()]
    return (all(ch.isascii() for ch in typed_digits) and name.isascii() and name.isdigit()
            and (name == "0" or not name.startswith("0")) and len(name) <= len(str(MAX_BOX_ID)))


def _is_box_id(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_BOX_ID
