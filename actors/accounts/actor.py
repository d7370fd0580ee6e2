"""The user accounts (users.json) and revoked sessions: one actor serializes every change and
writes it durably.

Reads use immutable mappings replaced on each change: `users` (login lookups), `sessions` (what a
valid token of each active account carries) and `revoked` (logged-out sessions). Every request
checks its token against the last two, so both are plain dict lookups.
"""
from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from actors.accounts.records import (
    SessionKey,
    Users,
    find_user,
    session_keys,
    with_active,
    with_judge_password,
    with_password_hash,
    without_user,
)
from actors.accounts.revocations import Revoked, revoked_document, with_revoked
from actors.codes import USER_NOT_FOUND
from actors.events import (
    JUDGE_NAME_MOVED,
    JUDGE_PASSWORD_SET,
    USER_DISABLED,
    USER_ENABLED,
    USER_REMOVED,
    encode_account_event,
    iso_from_ms,
)
from actors.messages import Origin
from actors.persister import Persister
from actors.runtime import Actor
from persistence.storage import StorageError

log = logging.getLogger("belay.accounts")

EPOCH_BYTES = 9


def new_epoch() -> str:
    return secrets.token_urlsafe(EPOCH_BYTES)


@dataclass(frozen=True, slots=True)
class SetJudgePassword:
    box_id: int
    username: str | None
    password_hash: str
    origin: Origin = field(default_factory=Origin)


@dataclass(frozen=True, slots=True)
class ReplaceHash:
    """Upgrade a verified password to the current hash format, unless it changed meanwhile."""

    key: str
    old_hash: str
    new_hash: str


@dataclass(frozen=True, slots=True)
class RevokeSession:
    """A logout: this session is refused from now on; the account's other sessions go on."""

    sid: str
    until: int  # no token of the session can be valid after this epoch second


@dataclass(frozen=True, slots=True)
class SetActive:
    username: str
    active: bool
    origin: Origin


@dataclass(frozen=True, slots=True)
class RemoveUser:
    username: str
    origin: Origin


class AccountsActor(Actor):
    # ValueError: a refused change, its code in the message (actors/accounts/records.py)
    answered_errors = (StorageError, ValueError)

    def __init__(self, users: Mapping[str, dict[str, Any]], persister: Persister, *,
                 revoked: Mapping[str, int] | None = None, clock: Callable[[], float] = time.time,
                 epochs: Callable[[], str] = new_epoch, on_change: Callable[[], None] = lambda: None) -> None:
        super().__init__("accounts")
        self._persister = persister
        self._clock = clock
        self._epochs = epochs
        self._on_change = on_change  # after a change that may end sessions (open sockets are checked)
        self.users: Mapping[str, dict[str, Any]] = MappingProxyType(dict(users))
        self.sessions: Mapping[str, SessionKey] = MappingProxyType(session_keys(dict(users)))
        self.revoked: Mapping[str, int] = MappingProxyType(dict(revoked or {}))

    async def handle(self, message: object) -> Any:
        if isinstance(message, SetJudgePassword):
            return await self._set_judge_password(message)
        if isinstance(message, ReplaceHash):
            record = self.users.get(message.key)
            if record is not None and record.get("password_hash") == message.old_hash:
                await self._save(with_password_hash(dict(self.users), message.key, message.new_hash,
                                                    self._now_iso()), notify=False)
            return None
        if isinstance(message, RevokeSession):
            return await self._revoke(message)
        if isinstance(message, SetActive):
            return await self._set_active(message)
        if isinstance(message, RemoveUser):
            return await self._remove(message)
        raise TypeError(f"unexpected message {message!r}")

    async def _set_judge_password(self, message: SetJudgePassword) -> dict[str, Any]:
        users, reply, moved = with_judge_password(dict(self.users), message.box_id, message.username,
                                                  message.password_hash, self._now_iso(), self._epochs())
        await self._save(users)
        box_id = message.box_id
        for key, boxes in moved.items():
            log.warning("judge name %r moved to box %d from box(es) %s by %s; its old sessions are ended",
                        key, box_id, boxes or "none", message.origin.username)
            await self._audit(JUDGE_NAME_MOVED, box_id, message.origin, {"username": key, "fromBoxes": boxes})
        await self._audit(JUDGE_PASSWORD_SET, box_id, message.origin,
                          {"username": reply["username"], "alias": reply["alias"], "id_alias": reply["id_alias"]})
        return reply

    async def _revoke(self, message: RevokeSession) -> None:
        now = self._clock()
        if message.until <= now or self.revoked.get(message.sid, 0) >= message.until:
            return  # nothing a token could still do, or revoked already
        revoked: Revoked = with_revoked(dict(self.revoked), message.sid, message.until, now)
        # Refused in memory at once, even if the disk fails: a logout never waits to take effect.
        self.revoked = MappingProxyType(revoked)
        await self._persister.write_document("revocations", revoked_document(revoked))

    async def _set_active(self, message: SetActive) -> dict[str, Any]:
        key = self._key(message.username)
        users = with_active(dict(self.users), key, message.active, self._now_iso(), self._epochs())
        changed = [k for k, user in users.items() if self.users.get(k) is not user]
        if changed:
            await self._save(users)
            log.info("%s %s by %s", "enabled" if message.active else "disabled", ", ".join(map(repr, changed)),
                     message.origin.username)
            await self._audit(USER_ENABLED if message.active else USER_DISABLED, None, message.origin,
                              {"usernames": changed})
        return {"status": "ok", "username": key, "active": message.active, "changed": changed}

    async def _remove(self, message: RemoveUser) -> dict[str, Any]:
        key = self._key(message.username)
        users, removed = without_user(dict(self.users), key)
        await self._save(users)
        log.info("removed %s by %s", ", ".join(map(repr, removed)), message.origin.username)
        await self._audit(USER_REMOVED, None, message.origin, {"usernames": removed})
        return {"status": "ok", "username": key, "removed": removed}

    def _key(self, username: str) -> str:
        found = find_user(dict(self.users), username)
        if found is None:
            raise ValueError(USER_NOT_FOUND)
        return found[0]

    async def _save(self, users: Users, notify: bool = True) -> None:
        await self._persister.write_document("users", users)  # StorageError reaches the caller
        self.users = MappingProxyType(users)
        self.sessions = MappingProxyType(session_keys(users))
        if notify:
            try:
                self._on_change()
            except Exception:  # the change is saved; a failure to close sockets must not hide that
                log.exception("closing the sockets of ended sessions failed")

    async def _audit(self, action: str, box_id: int | None, origin: Origin, payload: dict[str, Any]) -> None:
        """After the change is durable: a failed audit line is logged, the change stands."""
        line = encode_account_event(action=action, box_id=box_id, now_ms=self._now_ms(), origin=origin,
                                    payload=payload)
        try:
            await self._persister.append_audit(line)
        except StorageError as exc:
            log.error("the account change %s is saved, but its audit line could not be written: %s", action, exc)

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    def _now_iso(self) -> str:
        return iso_from_ms(self._now_ms())
