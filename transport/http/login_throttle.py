"""Slows password guessing: failed logins lock an (account, address) pair, and many failures lock
an address for every name.

Keyed by address on purpose: a brute-force run from one laptop is stopped, while the real user on
another device still logs in, so nobody can lock the organisers or a judge out from elsewhere.
The account is the caller's `login_identity`: every spelling of a judge counts against one judge,
and names that match nothing are counted like real ones. The per-address total stops a run of
ever-new names; it counts every name alike, so it tells nobody which names exist either.
"""
from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

MAX_FAILURES: Final = 5  # per account and address
MAX_ADDRESS_FAILURES: Final = 20  # per address, all names together
WINDOW_S: Final = 300
LOCKOUT_S: Final = 60
MAX_KEYS: Final = 10000

_EVERY_NAME: Final = "\x00every name"  # the per-address key; no login_identity starts with NUL


@dataclass(slots=True)
class _Entry:
    failures: int
    window_start: float
    locked_until: float | None = None


class LoginThrottle:
    def __init__(
        self,
        max_failures: int = MAX_FAILURES,
        window_s: float = WINDOW_S,
        lockout_s: float = LOCKOUT_S,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = MAX_KEYS,
        max_address_failures: int = MAX_ADDRESS_FAILURES,
    ) -> None:
        self.max_failures = max_failures
        self.max_address_failures = max_address_failures
        self.window_s = window_s
        self.lockout_s = lockout_s
        self.max_keys = max_keys
        self._clock = clock
        # Least recently touched first, so the oldest keys are the cheapest to find and drop.
        self._entries: OrderedDict[tuple[str, str], _Entry] = OrderedDict()

    def retry_after(self, account: str, ip: str) -> float | None:
        """Seconds until this account may be tried from this address, or None when it may now."""
        now = self._clock()
        waits = [entry.locked_until - now for key in ((account, ip), (_EVERY_NAME, ip))
                 if (entry := self._entries.get(key)) is not None
                 and entry.locked_until is not None and entry.locked_until > now]
        return max(waits, default=None)

    def failed(self, account: str, ip: str) -> None:
        now = self._clock()
        self._count((account, ip), self.max_failures, now)
        self._count((_EVERY_NAME, ip), self.max_address_failures, now)
        self._evict(now)

    def succeeded(self, account: str, ip: str) -> None:
        """Clears this account's count only: a login to one's own account must not buy more guesses
        at the others."""
        self._entries.pop((account, ip), None)

    def __len__(self) -> int:
        return len(self._entries)

    def _count(self, key: tuple[str, str], limit: int, now: float) -> None:
        entry = self._entries.get(key)
        if entry is not None and entry.locked_until is not None:
            if entry.locked_until > now:
                return  # already locked; a request checked before the lock began is finishing
            entry = None  # a lockout served starts a fresh window
        if entry is None or now - entry.window_start >= self.window_s:
            entry = _Entry(failures=0, window_start=now)
        entry.failures += 1
        if entry.failures >= limit:
            entry.locked_until = now + self.lockout_s
        self._entries[key] = entry
        self._entries.move_to_end(key)

    def _evict(self, now: float) -> None:
        """Lazily drop expired entries from the old end, then the oldest beyond max_keys."""
        while self._entries:
            entry = next(iter(self._entries.values()))
            if max(entry.window_start + self.window_s, entry.locked_until or now) > now:
                break
            self._entries.popitem(last=False)
        while len(self._entries) > self.max_keys:
            self._entries.popitem(last=False)
