"""Judge-tablet liveness: which boxes have a judge's socket connected, and when one was last heard.

A judge tablet is a box socket whose token has the judge role for that box; admins and the
control panel open the same socket and do not count. A box is offline when no judge socket is
connected or none has been heard from for `silent_after_s` (the hub pings tablets every few
seconds, and every browser answers a protocol ping, so a live tablet is never that quiet).

Nothing is counted per frame: each subscriber already keeps `last_heard`, and a box's last word
is the newest of its tablets' (and of those that left), worked out only when someone asks.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from transport.ws.subscriber import Subscriber


@dataclass(frozen=True, slots=True)
class TabletStatus:
    connected: int  # judge sockets open on the box
    heard_ago_s: float | None  # None: no tablet heard from since the server started
    online: bool


class TabletWatch:
    def __init__(self, silent_after_s: float, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.silent_after_s = silent_after_s
        self._monotonic = monotonic
        self._tablets: dict[int, set[Subscriber]] = {}
        self._gone_heard: dict[int, float] = {}  # box -> last word of a tablet that has left

    def connected(self, box_id: int, subscriber: Subscriber) -> None:
        self._tablets.setdefault(box_id, set()).add(subscriber)

    def disconnected(self, box_id: int, subscriber: Subscriber) -> None:
        tablets = self._tablets.get(box_id)
        if tablets is None or subscriber not in tablets:
            return
        tablets.discard(subscriber)
        if not tablets:
            del self._tablets[box_id]
        self._gone_heard[box_id] = max(self._gone_heard.get(box_id, subscriber.last_heard), subscriber.last_heard)

    def boxes(self) -> set[int]:
        """Boxes a tablet was ever seen on (with the registry's, the boxes the ops page shows)."""
        return set(self._tablets) | set(self._gone_heard)

    def status(self, box_id: int) -> TabletStatus:
        tablets = self._tablets.get(box_id, ())
        now = self._monotonic()
        live_heard = max((t.last_heard for t in tablets), default=None)
        online = live_heard is not None and now - live_heard < self.silent_after_s
        heard = max((h for h in (live_heard, self._gone_heard.get(box_id)) if h is not None), default=None)
        return TabletStatus(len(tablets), None if heard is None else max(0.0, now - heard), online)

    def offline_boxes(self, box_ids: Iterable[int]) -> list[int]:
        """Of `box_ids` (with every box a tablet is on), those whose tablet is missing or silent."""
        return sorted(box for box in set(box_ids) | set(self._tablets) if not self.status(box).online)
