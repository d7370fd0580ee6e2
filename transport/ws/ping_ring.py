"""Heartbeat slots: the subscribers of one ping interval, spread over one-second slots.

Each tick the hub pings one slot, so thousands of sockets that connected together (a venue's
screens after a power cut) never all wake at the same moment.
"""
from __future__ import annotations

from transport.ws.subscriber import Subscriber


class PingRing:
    def __init__(self, interval_s: float) -> None:
        self.interval_s = interval_s
        self._slots: list[set[Subscriber]] = [set() for _ in range(max(1, round(interval_s)))]
        self._slot_of: dict[Subscriber, int] = {}
        self._joined = 0
        self._tick = 0

    @property
    def tick_s(self) -> float:
        """How often `next_slot` is due: every slot once per interval."""
        return self.interval_s / len(self._slots)

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
