"""WebSocket fan-out: every message is encoded once, as a whole frame, and the same bytes go to
every subscriber of its channel (see subscriber.py for what happens per socket).

When the writes happen is fanout_queue.py's job: after the replies, in short slices, and out of
the way of the commands being served. Joins and REQUEST_STATE answers go through the same queue,
so each socket still receives every box's frames in version order.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Hashable
from contextlib import AbstractContextManager
from functools import partial
from typing import Any, Protocol

import orjson
from aiohttp import web

from actors.messages import View
from transport.ws.fanout_queue import FanoutQueue
from transport.ws.frames import PING_FRAME, deflated_text_frame, text_frame
from transport.ws.ping_ring import PingRing
from transport.ws.subscriber import FrameCounts, Subscriber

log = logging.getLogger("belay.ws")

SNAPSHOT = "snapshot"  # coalescing key of a box's STATE_SNAPSHOT frames
PUBLIC = ("public",)
OPS = ("ops",)  # admins' ops pages (transport/ops/)


class PublicSink(Protocol):
    """Something beyond this process's sockets that follows the spectators' view of each box (the
    Redis publisher of transport/broker/). Called at once, in the publishing actor's turn: it
    must only take note."""

    def public_changed(self, box_id: int, kind: str) -> None: ...


def box_channel(box_id: int) -> tuple[str, int]:
    return ("box", box_id)


def public_box_channel(box_id: int) -> tuple[str, int]:
    return ("public-box", box_id)


def deflating(channel: tuple[Hashable, ...]) -> tuple[Hashable, ...]:
    """The sockets of a spectator channel that negotiated permessage-deflate: they get each
    message deflated once for all of them (frames.py), the channel's other sockets plain frames."""
    return (*channel, "deflate")


class Hub:
    """Channels of subscribers: ("box", id), ("public-box", id), ("public",) and ("ops",), and the
    two spectator channels' `deflating` halves.

    Spectator channels are throttled per box with a leading edge: the first update goes at once,
    later ones within `spectator_window_s` merge into one trailing update.

    Heartbeats come from the hub, not from a timer per socket: subscribers are spread over
    one-second slots, and each second one slot gets its pings. Thousands of sockets that connected
    together (a venue's screens after a power cut) never all wake at the same moment. Judge
    tablets have their own, shorter interval: a quiet but healthy tablet must be heard from often
    enough for the ops page to tell it from a dead one (transport/ws/tablets.py).
    """

    def __init__(self, spectator_window_s: float = 0.25, ping_interval_s: float = 30.0,
                 tablet_ping_interval_s: float = 5.0) -> None:
        self._channels: dict[Hashable, set[Subscriber]] = {}
        self._spectator_window_s = spectator_window_s
        self._windows: dict[int, asyncio.TimerHandle] = {}
        self._pending: dict[int, tuple[bytes | None, bytes | None]] = {}
        self.ping_interval_s = ping_interval_s
        self._ping_tick_s = ping_interval_s / max(1, round(ping_interval_s))  # one-second slots
        self._pings = PingRing(ping_interval_s, self._ping_tick_s)
        self._tablet_pings = PingRing(tablet_ping_interval_s, self._ping_tick_s)
        self._queue = FanoutQueue()
        self.frame_counts = FrameCounts()  # every subscriber of this hub counts its frames here
        self._sinks: tuple[PublicSink, ...] = ()

    def add_sink(self, sink: PublicSink) -> None:
        self._sinks = (*self._sinks, sink)

    def serving_command(self) -> AbstractContextManager[None]:
        """Wrap the serving of a command: socket writes wait for it (briefly, see fanout_queue.py)."""
        return self._queue.serving_command()

    def commands_being_served(self) -> int:
        return self._queue.commands_in_flight

    def commands_started(self) -> int:
        """Commands served since start-up (the collector waits for a quiet spell)."""
        return self._queue.commands_started

    def join(self, channel: Hashable, subscriber: Subscriber, first_frame: bytes | None, *,
             tablet: bool = False) -> None:
        """Send the first snapshot (built now; None: nothing to show yet) and add to the channel, in
        queue order: frames published before this call are older than the snapshot and never reach
        the socket. A `tablet` (a judge's socket) is pinged at the tablets' interval."""
        self._queue.step(partial(self._join_now, channel, subscriber, first_frame, tablet))

    def send_to(self, subscriber: Subscriber, frame: bytes, *, key: Hashable = None) -> None:
        """A frame for one socket (a REQUEST_STATE answer), in order with the broadcasts."""
        self._queue.step(partial(self._queue.deliver, (subscriber,), frame, key))

    def _join_now(self, channel: Hashable, subscriber: Subscriber, first_frame: bytes | None, tablet: bool) -> None:
        if subscriber.closed:  # left before its turn came
            return
        if first_frame is not None:
            self._queue.deliver((subscriber,), first_frame, SNAPSHOT)
        self._channels.setdefault(channel, set()).add(subscriber)
        (self._tablet_pings if tablet else self._pings).add(subscriber)

    def leave(self, channel: Hashable, subscriber: Subscriber) -> None:
        members = self._channels.get(channel)
        if members is not None:
            members.discard(subscriber)
            if not members:
                del self._channels[channel]
        self._pings.discard(subscriber)
        self._tablet_pings.discard(subscriber)

    def count(self, channel: tuple[Hashable, ...] | None = None) -> int:
        """A spectator channel's count includes its deflating half."""
        if channel is not None:
            return len(self._channels.get(channel, ())) + len(self._channels.get(deflating(channel), ()))
        return sum(len(m) for m in self._channels.values())

    def clients_by_kind(self) -> dict[tuple[str, str], int]:
        """Sockets by (channel kind, role): ("box", "judge"), ("public-box", "spectator"),
        ("public", "anonymous")... A walk over every socket: for a scrape, not for a command."""
        found: dict[tuple[str, str], int] = {}
        for channel, members in self._channels.items():
            kind = channel[0] if isinstance(channel, tuple) else str(channel)
            for subscriber in members:
                key = (kind, subscriber.role)
                found[key] = found.get(key, 0) + 1
        return found

    def sockets(self) -> list[web.WebSocketResponse]:
        return [sub.ws for members in self._channels.values() for sub in members]

    def broadcast(self, channel: Hashable, frame: bytes, *, key: Hashable = None) -> None:
        """`frame` is a whole WebSocket frame (text_frame): the same bytes for every socket."""
        self._queue.deliver(tuple(self._channels.get(channel, ())), frame, key)

    def abort_all(self) -> None:
        for members in self._channels.values():
            for subscriber in members:
                subscriber.abort()

    async def shut_down(self, timeout_s: float) -> None:
        """No more frames; every socket gets a 1001 close, and one that cannot take it within
        `timeout_s` (it stopped reading) is dropped."""
        self.close()
        closing = [asyncio.ensure_future(ws.close(code=1001, message=b"server shutdown")) for ws in self.sockets()]
        if closing:
            _done, stuck = await asyncio.wait(closing, timeout=timeout_s)
            if stuck:
                self.abort_all()
                await asyncio.gather(*stuck, return_exceptions=True)

    def close(self) -> None:
        for handle in self._windows.values():
            handle.cancel()
        self._windows.clear()
        self._pending.clear()
        self._queue.clear()

    # -- the actors' Fanout ------------------------------------------------------------------

    def box_changed(self, box_id: int, *, echo: dict[str, Any] | None, snapshot: View, snapshot_to_box: bool,
                    public_kind: str | None, public_box: View | None) -> None:
        """The views are bound to the state that was published, so building them later is exact."""
        if public_kind is not None:
            for sink in self._sinks:
                sink.public_changed(box_id, public_kind)
        if not self._channels and not self._queue.has_steps():
            return  # no socket at all, and no join waiting in the queue that would need this
        self._queue.step(partial(self._box_changed_now, box_id, echo, snapshot, snapshot_to_box, public_kind,
                                 public_box))

    def _box_changed_now(self, box_id: int, echo: dict[str, Any] | None, snapshot: View, snapshot_to_box: bool,
                         public_kind: str | None, public_box: View | None) -> None:
        private = box_channel(box_id)
        to_box = private in self._channels
        to_spectators = public_kind is not None and self._has_members(public_box_channel(box_id))
        snapshot_frame = None
        if (to_box and snapshot_to_box) or to_spectators:
            snapshot_frame = text_frame(orjson.dumps(snapshot()))
        if to_box:
            echo_frame = text_frame(orjson.dumps(echo)) if echo is not None else None
            box_snapshot = snapshot_frame if snapshot_to_box else None
            if echo_frame is not None and box_snapshot is not None:
                # One write per socket for both frames: the write, not the encoding, is what costs.
                self._queue.deliver(tuple(self._channels.get(private, ())), echo_frame + box_snapshot, SNAPSHOT,
                                    (echo_frame, box_snapshot))
            elif echo_frame is not None:
                self.broadcast(private, echo_frame)
            elif box_snapshot is not None:
                self.broadcast(private, box_snapshot, key=SNAPSHOT)
        if public_kind is None:
            return
        aggregate_frame = None
        if public_box is not None and self._has_members(PUBLIC):
            aggregate_frame = text_frame(orjson.dumps({"type": public_kind, "box": public_box()}))
        if not to_spectators:
            snapshot_frame = None
        if snapshot_frame is not None or aggregate_frame is not None:
            self._to_spectators(box_id, snapshot_frame, aggregate_frame)

    def _to_spectators(self, box_id: int, snapshot_frame: bytes | None, aggregate_frame: bytes | None) -> None:
        if box_id in self._windows:
            old_snapshot, old_aggregate = self._pending.get(box_id, (None, None))
            self._pending[box_id] = (snapshot_frame or old_snapshot, aggregate_frame or old_aggregate)
            return
        if snapshot_frame is not None:
            self._to_spectator_channel(public_box_channel(box_id), snapshot_frame, SNAPSHOT)
        if aggregate_frame is not None:
            self._to_spectator_channel(PUBLIC, aggregate_frame, box_id)
        loop = asyncio.get_running_loop()
        self._windows[box_id] = loop.call_later(self._spectator_window_s, self._window_closed, box_id)

    def _has_members(self, channel: tuple[Hashable, ...]) -> bool:
        return channel in self._channels or deflating(channel) in self._channels

    def _to_spectator_channel(self, channel: tuple[Hashable, ...], frame: bytes, key: Hashable) -> None:
        """Deflated here, as it is sent: an update the throttle merges away is never compressed."""
        self.broadcast(channel, frame, key=key)
        compressed = deflating(channel)
        if compressed in self._channels:
            self.broadcast(compressed, deflated_text_frame(frame), key=key)

    def _window_closed(self, box_id: int) -> None:
        del self._windows[box_id]
        pending = self._pending.pop(box_id, None)
        if pending is not None:
            self._to_spectators(box_id, *pending)

    # -- heartbeat ---------------------------------------------------------------------------

    async def ping_loop(self) -> None:
        """Each subscriber, once per interval (a tablet's is shorter): the app-level PING the
        control panel waits for (it drops its socket after 60 s without one) and a protocol ping
        that every browser answers. A client silent for two (main) intervals is gone (a cable
        pulled, a tablet asleep): dropped."""
        while True:
            await asyncio.sleep(self._ping_tick_s)
            frame = text_frame(orjson.dumps({"type": "PING", "timestamp": time.time()}))
            silent_since = time.monotonic() - 2 * self.ping_interval_s
            live = []
            for subscriber in self._pings.next_slot() + self._tablet_pings.next_slot():
                if subscriber.last_heard < silent_since:
                    log.info("closing a WebSocket client silent for %.0f s", 2 * self.ping_interval_s)
                    self.frame_counts.silent_clients += 1
                    subscriber.abort()
                    continue
                subscriber.check_stall()
                live.append(subscriber)
            # Both pings in one write per socket, written in slices like any other fan-out.
            self._queue.deliver(tuple(live), frame + PING_FRAME, None, (frame, PING_FRAME))
