"""The user accounts (users.json): one actor serializes every change and writes it durably.

Reads (login lookups) use `users`, an immutable mapping replaced on each change.
"""
from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Callable, Mapping

from actors.persister import Persister
from actors.runtime import Actor
from actors.users import with_judge_password, with_password_hash
from persistence.storage import StorageError


@dataclass(frozen=True, slots=True)
class SetJudgePassword:
    box_id: int
    username: str | None
    password_hash: str


@dataclass(frozen=True, slots=True)
class ReplaceHash:
    """Upgrade a verified password to the current hash format, unless it changed meanwhile."""

    key: str
    old_hash: str
    new_hash: str


class AccountsActor(Actor):
    answered_errors = (StorageError, ValueError)  # ValueError: a name that belongs to someone else

    def __init__(self, users: Mapping[str, dict[str, Any]], persister: Persister,
                 now_iso: Callable[[], str]) -> None:
        super().__init__("accounts")
        self.users: Mapping[str, dict[str, Any]] = MappingProxyType(dict(users))
        self._persister = persister
        self._now_iso = now_iso

    async def handle(self, message: object) -> Any:
        if isinstance(message, SetJudgePassword):
            users, reply = with_judge_password(dict(self.users), message.box_id, message.username,
                                               message.password_hash, self._now_iso())
            await self._save(users)
            return reply
        if isinstance(message, ReplaceHash):
            record = self.users.get(message.key)
            if record is not None and record.get("password_hash") == message.old_hash:
                await self._save(with_password_hash(dict(self.users), message.key, message.new_hash,
                                                    self._now_iso()))
            return None
        raise TypeError(f"unexpected message {message!r}")

    async def _save(self, users: dict[str, dict[str, Any]]) -> None:
        await self._persister.write_document("users", users)  # StorageError reaches the caller
        self.users = MappingProxyType(users)
