"""An edge's copy of the spectators' view: the newest record of each box, kept from Redis.

It subscribes first, then reads the control record (epoch, live boxes) and every box's latest,
so nothing published in between is missed; a record counts only if it is newer than the one
held, by (epoch, boxVersion, n), so spectators never see a box go back. A new core (a control
message) or a new connection (after an outage) reads everything again the same way and pushes
what changed through the hub, which fans it out exactly as the core's hub does. Meanwhile the
edge serves the last state it has, and health says it is stale.
"""
from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable, Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass
from functools import partial
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.exceptions import RedisError

from actors.officials import officials_from
from actors.rules import build_public_box, build_snapshot, default_state
from transport.broker.redis_client import COMMAND_TIMEOUT_S, next_backoff, open_redis
from transport.broker.wire import (
    BoxRecord,
    Names,
    OfficialsRecord,
    WireError,
    decode_box,
    decode_control,
    decode_officials,
    with_remaining,
)
from transport.ws.hub import Hub

log = logging.getLogger("belay.edge")

GONE_KIND = "BOX_STATUS_UPDATE"  # how spectators learn that a box no longer exists (not initiated)


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(slots=True)
class MirrorStatus:
    connected: bool = False
    stale_since: float | None = None  # None: in step with Redis
    epoch: int = 0
    resyncs: int = 0
    records: int = 0
    last_record_at: float | None = None
    last_error: str | None = None


class EdgeMirror:
    """Implements transport/public_state.py's PublicState for an edge."""

    def __init__(self, url: str, prefix: str, hub: Hub, now_ms: Callable[[], int] = wall_ms) -> None:
        self._url = url
        self._names = Names(prefix)
        self._hub = hub
        self._now_ms = now_ms
        self._boxes: dict[int, BoxRecord] = {}
        self._unavailable: frozenset[int] = frozenset()
        self._officials: OfficialsRecord | None = None
        self._provisional: dict[int, str] = {}  # a sessionId for boxes the core has not created
        self.status = MirrorStatus(stale_since=time.time())
        self.in_step = asyncio.Event()  # set once a core's records have been read

    # -- PublicState -----------------------------------------------------------------------------

    def public_boxes(self) -> list[dict[str, Any]]:
        now_ms = self._now_ms()
        return [with_remaining(record.public, record.timer_ends_at_ms, now_ms)
                for _box_id, record in sorted(self._boxes.items())]

    def snapshot(self, box_id: int) -> dict[str, Any] | None:
        if box_id in self._unavailable:
            return None
        record = self._boxes.get(box_id)
        if record is None:
            return build_snapshot(self._default_state(box_id), box_id, self._now_ms(), self.officials())
        return with_remaining(record.snapshot, record.timer_ends_at_ms, self._now_ms())

    def officials(self) -> Mapping[str, str]:
        return self._officials.officials if self._officials is not None else officials_from(None)

    # -- the Redis side -----------------------------------------------------------------------------

    async def run(self) -> None:
        """Until cancelled: subscribe, read everything, follow; after a failure, start over."""
        backoff = 0.0
        while True:
            try:
                await self._session()
            except Exception as exc:  # whatever breaks here, the last state is still served
                if not isinstance(exc, (RedisError, OSError, WireError)):
                    log.exception("following Redis failed unexpectedly; starting over")
                elif self.status.connected or self.status.last_error is None:
                    log.warning("lost Redis (%s): serving the last state received until it is back", exc)
                if self.status.connected:
                    backoff = 0.0
                self.status.connected, self.status.last_error = False, type(exc).__name__
                if self.status.stale_since is None:
                    self.status.stale_since = time.time()
                backoff = next_backoff(backoff)
            await asyncio.sleep(backoff)

    async def _session(self) -> None:
        async with AsyncExitStack() as closing:
            client = open_redis(self._url)
            closing.push_async_callback(client.aclose)
            listener = open_redis(self._url, for_pubsub=True)
            closing.push_async_callback(listener.aclose)
            pubsub = listener.pubsub()
            closing.push_async_callback(pubsub.aclose)
            await self._follow(client, pubsub)

    async def _follow(self, client: Redis, pubsub: PubSub) -> None:
        names = self._names
        await pubsub.psubscribe(names.everything)
        await _confirmed(pubsub)  # subscribed before reading: nothing published after the read is lost
        self.status.connected = True
        await self._resync(client)
        while True:
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
            if message is None or message.get("type") != "pmessage":
                continue
            channel, data = message["channel"].decode(), message["data"]
            try:
                if channel == names.control:
                    await self._resync(client)
                elif channel == names.officials:
                    self._take_officials(decode_officials(data))
                elif names.box_id_of(channel) is not None:
                    self._take_box(decode_box(data))
            except WireError as exc:
                log.warning("ignored a malformed record on %s: %s", channel, exc)

    async def _resync(self, client: Redis) -> None:
        """Read the control record, the officials and every live box's latest."""
        names = self._names
        raw_control, raw_officials = await client.mget([names.control, names.officials])
        if raw_control is None:  # no core has written here yet (or Redis lost its data): wait for one
            log.info("no core has published under %r yet; waiting", names.prefix)
            return
        control = decode_control(raw_control)
        if control.epoch < self.status.epoch:
            return  # an older core's record (a replica behind?): the newer one will follow
        if control.epoch > self.status.epoch:
            self._forget_all_but(set(control.boxes), control.epoch)
        self._unavailable = frozenset(control.unavailable)
        if raw_officials is not None:
            self._take_officials(decode_officials(raw_officials))
        if control.boxes:
            for raw in await client.mget([names.box(box_id) for box_id in control.boxes]):
                if raw is not None:
                    self._take_box(decode_box(raw))
        self.status.resyncs += 1
        self.in_step.set()
        if self.status.stale_since is not None:
            log.info("in step with Redis again (epoch %d, %d box(es))", control.epoch, len(self._boxes))
        self.status.stale_since = None

    def _forget_all_but(self, live: set[int], epoch: int) -> None:
        """A new core: boxes it no longer has disappear (spectators see them uninitiated)."""
        self.status.epoch = epoch
        for box_id in sorted(set(self._boxes) - live):
            del self._boxes[box_id]
            state = self._default_state(box_id)
            now_ms = self._now_ms()
            self._hub.box_changed(box_id, echo=None,
                                  snapshot=partial(build_snapshot, state, box_id, now_ms, self.officials()),
                                  snapshot_to_box=False, public_kind=GONE_KIND,
                                  public_box=partial(build_public_box, state, box_id, now_ms))

    def _take_box(self, record: BoxRecord) -> None:
        if record.epoch < self.status.epoch:
            return  # from a core that has been replaced
        held = self._boxes.get(record.box_id)
        if held is not None and held.order >= record.order:
            return
        self._boxes[record.box_id] = record
        if record.box_id in self._unavailable:
            self._unavailable = self._unavailable - {record.box_id}
        self.status.records += 1
        self.status.last_record_at = time.time()
        # Built when the hub sends them, so `remaining` is as of the sending (as on the core).
        self._hub.box_changed(record.box_id, echo=None,
                              snapshot=partial(self._fresh, record.snapshot, record.timer_ends_at_ms),
                              snapshot_to_box=False, public_kind=record.kind,
                              public_box=partial(self._fresh, record.public, record.timer_ends_at_ms))

    def _take_officials(self, record: OfficialsRecord) -> None:
        held = self._officials
        if held is None or (record.epoch, record.n) > (held.epoch, held.n):
            self._officials = record

    def _fresh(self, view: dict[str, Any], timer_ends_at_ms: int | None) -> dict[str, Any]:
        return with_remaining(view, timer_ends_at_ms, self._now_ms())

    def _default_state(self, box_id: int) -> dict[str, Any]:
        session = self._provisional.get(box_id)
        if session is None:
            session = self._provisional[box_id] = str(uuid.uuid4())
        return default_state(session)

    def staleness_s(self) -> float:
        """0 while in step with Redis, else how long it has been out of step (/metrics)."""
        stale_since = self.status.stale_since
        return 0.0 if stale_since is None else max(0.0, time.time() - stale_since)

    def report(self) -> dict[str, Any]:
        status = self.status
        return {"connected": status.connected, "prefix": self._names.prefix, "epoch": status.epoch,
                "boxes": len(self._boxes), "stale_since": status.stale_since, "resyncs": status.resyncs,
                "records": status.records, "last_record_at": status.last_record_at,
                "last_error": status.last_error}


async def _confirmed(pubsub: PubSub) -> None:
    deadline = time.monotonic() + COMMAND_TIMEOUT_S
    while time.monotonic() < deadline:
        message = await pubsub.get_message(timeout=COMMAND_TIMEOUT_S)
        if message is not None and message.get("type") == "psubscribe":
            return
    raise TimeoutError("Redis did not confirm the subscription")
