"""One WebSocket subscriber: a bounded outgoing queue and a direct-write fast path.

The hub builds each frame once (transport/ws/frames.py) and each subscriber only writes the same
bytes to its transport. While a socket keeps up (little in its kernel-side buffer and nothing
queued) the write happens at once, with no task switch. A slow socket queues instead; its
pending snapshots coalesce (it gets the latest, never a backlog); echoes and pings are never
dropped; and if its queue stays over the limit for `stall_timeout_s` it is dropped.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Hashable
from typing import Any

from aiohttp import web

log = logging.getLogger("belay.ws")

# Above this many bytes waiting in the transport, frames queue here instead of piling up there.
DIRECT_WRITE_LIMIT = 64 * 1024
DRAIN_POLL_S = 0.005


class FrameCounts:
    """What happened to the frames of every socket since start-up (the hub keeps one, /metrics
    reads it): written to a socket, replaced by a newer snapshot while waiting, or thrown away
    with a socket that went; and the clients dropped for not reading or for silence."""

    __slots__ = ("coalesced", "dropped", "sent", "silent_clients", "slow_clients")

    def __init__(self) -> None:
        self.sent = 0
        self.coalesced = 0
        self.dropped = 0
        self.slow_clients = 0
        self.silent_clients = 0


class Subscriber:
    def __init__(self, ws: web.WebSocketResponse, transport: Any, *, max_pending_bytes: int,
                 stall_timeout_s: float, counts: FrameCounts, role: str,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        """`role`: who is behind the socket (a login's role, "spectator" or "anonymous")."""
        self.ws = ws
        self.role = role
        self._counts = counts
        self._transport = transport
        self._max_pending = max_pending_bytes
        self._stall_timeout = stall_timeout_s
        self._monotonic = monotonic
        self._queue: deque[tuple[Hashable, bytes]] = deque()  # (coalescing key or None, frame)
        self._pending_bytes = 0
        self._over_since: float | None = None
        self._drainer: asyncio.Task[None] | None = None  # exists only while the socket is behind
        self.closed = False
        self.last_heard = monotonic()  # when the client last sent anything, a protocol pong included

    def send(self, frame: bytes, *, key: Hashable = None) -> None:
        """Frames with the same non-None key coalesce: the latest replaces one still waiting."""
        if self.closed:
            self._counts.dropped += 1
            return
        if self._transport.is_closing():
            self.close()
            self._counts.dropped += 1
            return
        if not self._queue and self._transport.get_write_buffer_size() < DIRECT_WRITE_LIMIT:
            self._transport.write(frame)
            self._counts.sent += 1
            return
        if key is not None and self._queue:
            kept = deque(item for item in self._queue if item[0] != key)
            if len(kept) != len(self._queue):
                self._counts.coalesced += len(self._queue) - len(kept)
                self._pending_bytes = sum(len(item[1]) for item in kept)
                self._queue = kept
        self._queue.append((key, frame))
        self._pending_bytes += len(frame)
        if self._drainer is None:
            self._drainer = asyncio.get_running_loop().create_task(self._drain())
        self.check_stall()

    def send_pair(self, pair: bytes, first: bytes, second: bytes, second_key: Hashable) -> None:
        """`pair` is `first + second`: one write while the socket keeps up, two queued frames (the
        second one coalescing under `second_key`) when it is behind."""
        if not self.closed and not self._queue and not self._transport.is_closing() \
                and self._transport.get_write_buffer_size() < DIRECT_WRITE_LIMIT:
            self._transport.write(pair)
            self._counts.sent += 2
            return
        self.send(first)
        self.send(second, key=second_key)

    def heard(self) -> None:
        self.last_heard = self._monotonic()

    def check_stall(self) -> None:
        if self._pending_bytes <= self._max_pending:
            self._over_since = None
            return
        now = self._monotonic()
        if self._over_since is None:
            self._over_since = now
        elif now - self._over_since >= self._stall_timeout:
            log.info("closing a slow WebSocket client (%d bytes unsent)", self._pending_bytes)
            self._counts.slow_clients += 1
            self.abort()

    def abort(self) -> None:
        """Drop a client that stopped reading: its socket buffer is full, so no close frame can go."""
        self.close()
        if not self._transport.is_closing():
            self._transport.abort()

    def close(self) -> None:
        """No more frames; stops the drain task if there is one (the socket's handler calls this)."""
        self.closed = True
        self._counts.dropped += len(self._queue)
        self._queue.clear()
        self._pending_bytes = 0
        if self._drainer is not None and self._drainer is not asyncio.current_task():
            self._drainer.cancel()

    async def _drain(self) -> None:
        """Empties the queue of a socket that fell behind, as fast as the socket takes it, then ends:
        a socket that keeps up costs no task at all."""
        try:
            while self._queue and not self.closed:
                if self._transport.is_closing():
                    self.close()
                    return
                if self._transport.get_write_buffer_size() >= DIRECT_WRITE_LIMIT:
                    await asyncio.sleep(DRAIN_POLL_S)
                    self.check_stall()
                    continue
                _, frame = self._queue.popleft()
                self._pending_bytes -= len(frame)
                self._transport.write(frame)
                self._counts.sent += 1
            self.check_stall()
        finally:
            self._drainer = None
