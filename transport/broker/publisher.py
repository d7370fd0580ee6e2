"""The core's publisher: after each commit, the spectators' view of every changed box goes to Redis.

The hub calls `public_changed` where it fans out to the spectators (transport/ws/hub.py): one dict
assignment, so a command's reply never waits for Redis. A task drains what changed: the latest
of each box only (a box changed twice before the drain is published once, from its state as it
is then), each box by one script that stores its record and publishes it (atomic, and one
command where MULTI, SET, PUBLISH and EXEC were four: a third less CPU per publication). A dead
or slow Redis costs the commands nothing: the drain fails, is logged and shown in health, and the task
reconnects with backoff. Every connection starts with a full sync (new epoch at the first one,
the live boxes, every box's record, ghost keys removed), so nothing lost in an outage is missed.
"""
from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any, Final

from redis.asyncio import Redis
from redis.exceptions import RedisError

from actors.tallies import Count
from transport.broker.redis_client import next_backoff, open_redis
from transport.broker.wire import BoxRecord, Control, Names, OfficialsRecord
from transport.public_state import CorePublicState

log = logging.getLogger("belay.broker")

# The new epoch: above the stored one, and at least the start time in ms, so it stays above the
# last core's even when Redis lost its data (clocks permitting). Returns the epoch.
CLAIM_EPOCH: Final = """
local stored = tonumber(redis.call('GET', KEYS[1]) or '0')
local epoch = math.max(stored + 1, tonumber(ARGV[1]))
redis.call('SET', KEYS[1], epoch)
return epoch
"""
# Later connections keep the epoch, unless another core has started since (then say so).
KEEP_EPOCH: Final = """
local stored = tonumber(redis.call('GET', KEYS[1]) or '0')
if stored > tonumber(ARGV[1]) then return stored end
redis.call('SET', KEYS[1], ARGV[1])
return tonumber(ARGV[1])
"""
# A box's (or the officials') record: stored under its key and published on the channel of the same name.
STORE_AND_PUBLISH: Final = "redis.call('SET', KEYS[1], ARGV[1]) return redis.call('PUBLISH', KEYS[1], ARGV[1])"
OFFICIALS: Final = -1  # the officials' place among the pending boxes
SYNC_SLICE: Final = 100  # boxes whose records a full sync builds between two loop turns
# redis-py reconnects by itself when a command finds its connection dead, so a Redis that
# restarted empty between two publications (or while the core was idle) would go unseen: edges
# would wait for a control record forever. Every this often, one GET of it finds that (and a
# dead Redis, when the core is idle).
CHECK_KEPT_EVERY_S: Final = 5.0


@dataclass(slots=True)
class PublisherStatus:
    """What health shows of the publisher."""

    connected: bool = False
    epoch: int | None = None
    published: int = 0
    last_published_at: float | None = None
    last_error: str | None = None
    outages: int = 0


class RedisPublisher:
    def __init__(self, url: str, prefix: str, source: CorePublicState, failures: Count) -> None:
        """`failures` counts each failed publication or sync (for /metrics)."""
        self._url = url
        self._names = Names(prefix)
        self._source = source
        self._pending: dict[int, str] = {}  # box id (or OFFICIALS) -> the latest public kind
        self._wake = asyncio.Event()
        self._n = 0
        self._live: set[int] = set()  # the boxes the control record lists
        self._failures = failures
        self.status = PublisherStatus()

    # -- the hub's sink ---------------------------------------------------------------------------

    def public_changed(self, box_id: int, kind: str) -> None:
        self._pending[box_id] = kind
        self._wake.set()

    def officials_changed(self) -> None:
        self._pending[OFFICIALS] = ""
        self._wake.set()

    # -- the task -----------------------------------------------------------------------------------

    async def run(self) -> None:
        """Until cancelled: connect, sync everything, publish what changes; on failure start over."""
        backoff = 0.0
        while True:
            try:
                await self._session()
            except Exception as exc:  # whatever breaks here, the scoring goes on
                self._failures.inc()
                if not isinstance(exc, (RedisError, OSError)):
                    log.exception("Redis publisher failed unexpectedly; starting over")
                elif self.status.connected or self.status.last_error is None:
                    log.warning("Redis publishing failed (%s); the edges show the last state until it is back",
                                exc)
                if self.status.connected:
                    self.status.outages += 1
                    backoff = 0.0
                self.status.connected, self.status.last_error = False, type(exc).__name__
                self._pending.clear()  # the full sync of the next connection covers them
                backoff = next_backoff(backoff)
            await asyncio.sleep(backoff)

    async def _session(self) -> None:
        client = open_redis(self._url)
        try:
            await self._full_sync(client)
            self.status.connected, self.status.last_error = True, None
            log.info("publishing to Redis under %r (epoch %s)", self._names.prefix, self.status.epoch)
            loop = asyncio.get_running_loop()
            check_at = loop.time() + CHECK_KEPT_EVERY_S
            while True:
                try:
                    async with asyncio.timeout_at(check_at):  # no task per wait, unlike wait_for
                        await self._wake.wait()
                except TimeoutError:
                    pass
                if loop.time() >= check_at:
                    await self._sync_if_lost(client)
                    check_at = loop.time() + CHECK_KEPT_EVERY_S
                if not self._wake.is_set():
                    continue
                self._wake.clear()
                for _ in range(2):  # the command's reply leaves first (as the fan-out's does)
                    await asyncio.sleep(0)
                pending, self._pending = self._pending, {}
                await self._publish(client, pending)
        finally:
            await client.aclose()

    async def _full_sync(self, client: Redis) -> None:
        names, source = self._names, self._source
        ids = source.box_ids()
        live = {names.box(box_id) for box_id in ids}
        ghosts = [key async for key in client.scan_iter(match=names.box_pattern, count=1000)
                  if key.decode() not in live]
        if self.status.epoch is None:
            epoch = int(await client.eval(CLAIM_EPOCH, 1, names.epoch, time.time_ns() // 1_000_000))
            self.status.epoch = epoch
        else:
            epoch = int(await client.eval(KEEP_EPOCH, 1, names.epoch, self.status.epoch))
            if epoch != self.status.epoch:
                log.error("another core publishes under the prefix %r (epoch %d > ours %d): edges follow it",
                          names.prefix, epoch, self.status.epoch)
        self._pending.clear()  # everything is written now, from the states as they are
        self._live = set(ids)
        pipe = client.pipeline(transaction=True)
        if ghosts:
            pipe.delete(*ghosts)
        for i, box_id in enumerate(ids):
            record = self._record(box_id, "BOX_STATUS_UPDATE")
            if record is not None:
                pipe.set(names.box(box_id), record.encode())
            if i % SYNC_SLICE == SYNC_SLICE - 1:
                # Thousands of boxes: commands are served in between; a box changed meanwhile is
                # pending again and is published after this.
                await asyncio.sleep(0)
        pipe.set(names.officials, self._officials_record().encode())
        control = Control(epoch, tuple(ids), tuple(source.unavailable_ids())).encode()
        pipe.set(names.control, control)
        pipe.publish(names.control, control)  # edges read everything again
        await pipe.execute()
        self._note_published(len(ids) + 1)
        if ghosts:
            log.info("removed %d box(es) that no longer exist from Redis", len(ghosts))

    async def _sync_if_lost(self, client: Redis) -> None:
        if await client.get(self._names.control) is None:
            log.warning("Redis lost what was published under %r (restarted empty?): writing everything again",
                        self._names.prefix)
            await self._full_sync(client)

    async def _publish(self, client: Redis, pending: dict[int, str]) -> None:
        names = self._names
        pipe = client.pipeline(transaction=False)  # one round trip; each script is atomic by itself
        count = 0
        new_boxes = False
        for box_id, kind in pending.items():
            payload: bytes
            if box_id == OFFICIALS:
                key, payload = names.officials, self._officials_record().encode()
            else:
                record = self._record(box_id, kind)
                if record is None:
                    continue
                key, payload = names.box(box_id), record.encode()
                if box_id not in self._live:
                    self._live.add(box_id)
                    new_boxes = True
            pipe.eval(STORE_AND_PUBLISH, 1, key, payload)
            count += 1
        if new_boxes:  # a box created by a command: the edges' resync must find it too
            pipe.set(names.control, self._control().encode())
        if count:
            await pipe.execute()
            self._note_published(count)

    # -- records --------------------------------------------------------------------------------------

    def _record(self, box_id: int, kind: str) -> BoxRecord | None:
        views = self._source.views(box_id)
        if views is None or self.status.epoch is None:
            return None
        version, deadline, snapshot, public = views
        self._n += 1
        return BoxRecord(self.status.epoch, self._n, box_id, version, kind, deadline, snapshot, public)

    def _officials_record(self) -> OfficialsRecord:
        assert self.status.epoch is not None
        self._n += 1
        return OfficialsRecord(self.status.epoch, self._n, dict(self._source.officials()))

    def _control(self) -> Control:
        assert self.status.epoch is not None
        return Control(self.status.epoch, tuple(self._source.box_ids()), tuple(self._source.unavailable_ids()))

    def _note_published(self, count: int) -> None:
        self.status.published += count
        self.status.last_published_at = time.time()

    def report(self) -> dict[str, Any]:
        status = self.status
        return {"connected": status.connected, "prefix": self._names.prefix, "epoch": status.epoch,
                "published": status.published, "last_published_at": status.last_published_at,
                "last_error": status.last_error, "outages": status.outages}
