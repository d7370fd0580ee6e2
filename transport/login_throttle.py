"""Slows password guessing: too many failed logins for one name from one address lock that pair.

Keyed by (name, client address) on purpose: a brute-force run from one laptop is stopped, while the
real admin on another device still logs in, so an attacker cannot lock the organisers out.
"""
from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable

from actors.users import canonical_username


@dataclass(slots=True)
class _Entry:
    failures: int
    window_start: float
    locked_until: float | None = None


class LoginThrottle:
    def __init__(
        self,
        max_failures: int = 5,
        window_s: float = 300,
        lockout_s: float = 60,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 10000,
    ) -> None:
        self.max_failures = max_failures
        self.window_s = window_s
        self.lockout_s = lockout_s
        self.max_keys = max_keys
        self._clock = clock
        # Least recently touched first, so the oldest keys are the cheapest to find and drop.
        self._entries: OrderedDict[tuple[str, str], _Entry] = OrderedDict()

    def retry_after(self, username: str, ip: str) -> float | None:
        """Seconds until this pair may try again, or None when it may try now."""
        now = self._clock()
        entry = self._entries.get(_key(username, ip))
        if entry is None or entry.locked_until is None or entry.locked_until <= now:
            return None
        return entry.locked_until - now

    def failed(self, username: str, ip: str) -> None:
        now = self._clock()
        key = _key(username, ip)
        entry = self._entries.get(key)
        if entry is not None and entry.locked_until is not None:
            if entry.locked_until > now:
                return  # already locked; the caller should not even have checked the password
            entry = None  # a lockout served starts a fresh window
        if entry is None or now - entry.window_start >= self.window_s:
            entry = _Entry(failures=0, window_start=now)
        entry.failures += 1
        if entry.failures >= self.max_failures:
            entry.locked_until = now + self.lockout_s
        self._entries[key] = entry
        self._entries.move_to_end(key)
        self._evict(now)

    def succeeded(self, username: str, ip: str) -> None:
        self._entries.pop(_key(username, ip), None)

    def __len__(self) -> int:
        return len(self._entries)

    def _evict(self, now: float) -> None:
        """Lazily drop expired entries from the old end, then the oldest beyond max_keys."""
        while self._entries:
            entry = next(iter(self._entries.values()))
            if max(entry.window_start + self.window_s, entry.locked_until or now) > now:
                break
            self._entries.popitem(last=False)
        while len(self._entries) > self.max_keys:
            self._entries.popitem(last=False)


def _key(username: str, ip: str) -> tuple[str, str]:
    # The same folding as the login lookup, so "Admin", "admin " and "ADMIN" share one counter.
    return canonical_username(username).casefold(), ip
