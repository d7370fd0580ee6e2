"""Heartbeat slots: the subscribers of one ping interval, spread over slots of one tick each.

Each tick the hub pings one slot of every ring, so thousands of sockets that connected together
(a venue's screens after a power cut) never all wake at the same moment, and one wake-up serves
every ring.
"""
from __future__ import annotations

from transport.ws.subscriber import Subscriber


class PingRing:
    def __init__(self, interval_s: float, tick_s: float) -> None:
        """Each subscriber is due every `interval_s`, rounded to whole ticks (at least one)."""
        self._slots: list[set[Subscriber]] = [set() for _ in range(max(1, round(interval_s / tick_s)))]
        self._slot_of: dict[Subscriber, int] = {}
        self._joined = 0
        self._tick = 0

    def add(self, subscriber: Subscriber) -> None:
        slot = self._joined % len(self._slots)
        self._joined += 1
        self._slots[slot].add(subscriber)
        self._slot_of[subscriber] = slot

    def discard(self, subscriber: Subscriber) -> None:
        slot = self._slot_of.pop(subscriber, None)
        if slot is not None:
            self._slots[slot].discard(subscriber)

    def next_slot(self) -> tuple[Subscriber, ...]:
        slot = self._slots[self._tick % len(self._slots)]
        self._tick += 1
        return tuple(slot)
