"""The ops page's summary: one JSON document with everything the page shows, rebuilt every second
while an admin has the page open and pushed to the hub's ops channel (nothing wakes while no one
watches), plus a chart sample every few seconds whether anyone watches or not.

It only reads: the registry's states, the hub's and the tablets' counts, the persister's and the
backups' status, the storage's audit (only when something was committed since the last read) and,
on a thread, the free disk space and the newest backup zip.
"""
from __future__ import annotations

import asyncio
import logging
import shutil
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web

from actors.rules.timer import remaining_seconds
from actors.tallies import quantile
from persistence.backup import backups
from persistence.storage import StorageError
from transport.http.keys import COMMAND_TALLIES
from transport.http.tallies import COMMAND_SECONDS
from transport.keys import BACKUPS, CONFIG, PERSISTER, REGISTRY, STARTED_AT, STORAGE
from transport.ops.history import OpsHistory
from transport.ws.frames import text_frame
from transport.ws.hub import OPS, PUBLIC, SNAPSHOT, box_channel, public_box_channel
from transport.ws.keys import HUB, TABLETS

log = logging.getLogger("belay.ops")

PUSH_S = 1.0
AUDIT_SHOWN = 8
LOW_DISK_BYTES = 1 << 30  # a warning below 1 GiB free
AUDIT_FIELDS = ("createdAt", "boxId", "action", "boxVersion", "actorUsername", "actorRole")


@dataclass(frozen=True, slots=True)
class DiskFacts:
    free_bytes: int | None
    newest_backup: str | None
    newest_backup_mtime: float | None
    newest_backup_size: int | None


def disk_facts(storage_dir: Path, backup_dir: Path) -> DiskFacts:
    """Blocking (statvfs, a directory listing): run on a thread."""
    try:
        free: int | None = shutil.disk_usage(storage_dir).free
    except OSError:
        free = None
    try:
        found = backups(backup_dir)
        newest = found[-1] if found else None
        stat = newest.stat() if newest is not None else None
    except OSError:  # pruned between the listing and the stat, or the directory is gone
        newest, stat = None, None
    if newest is None or stat is None:
        return DiskFacts(free, None, None, None)
    return DiskFacts(free, newest.name, stat.st_mtime, stat.st_size)


class OpsBoard:
    def __init__(self, app: web.Application, *, push_s: float = PUSH_S, history: OpsHistory | None = None) -> None:
        self._app = app  # read only once started: the registry and the actors arrive in its lifecycle
        self._push_s = push_s
        self.history = history or OpsHistory()
        self._latest: bytes | None = None
        self._watched = asyncio.Event()  # set by a page connecting; cleared once none is left
        self._audit: list[dict[str, Any]] = []
        self._audit_mark: tuple[int, int] | None = None  # the persister's counts at the last read
        self._latency_seen: list[int] | None = None  # the command tallies' buckets at the last chart point

    def latest(self) -> bytes | None:
        return self._latest

    async def fresh(self) -> bytes:
        """A summary built now (a page connecting asks for one: the pushes start)."""
        self._watched.set()
        self._latest = orjson.dumps(await self.summary())
        return self._latest

    async def run(self) -> None:
        """The pushes (while watched) and the chart samples, until cancelled."""
        async with asyncio.TaskGroup() as group:
            group.create_task(self._every(self._push_s, self._push))
            group.create_task(self._every(self.history.sample_s, self.sample))

    async def _every(self, seconds: float, work: Callable[[], Awaitable[None]]) -> None:
        while True:
            await asyncio.sleep(seconds)
            try:
                await work()
            except Exception:  # the page must never take the server's services down with it
                log.exception("ops page: %s failed", work.__name__)

    async def _push(self) -> None:
        hub = self._app[HUB]
        if not hub.count(OPS):
            self._watched.clear()
            await self._watched.wait()  # no page open: no wake-ups until one connects
            return
        hub.broadcast(OPS, text_frame(await self.fresh()), key=SNAPSHOT)

    async def sample(self) -> None:
        """One chart point: the p99 of the commands since the last one (from the counts /metrics
        exposes, so the page and a Prometheus graph agree), and the screens now."""
        counts = self._app[COMMAND_TALLIES].latency_counts()
        since = [count - seen for count, seen in zip(counts, self._latency_seen or [0] * len(counts), strict=True)]
        self._latency_seen = counts
        p99 = quantile(COMMAND_SECONDS, since, 0.99)
        self.history.add(time.time(), None if p99 is None else p99 * 1000.0, self._screens())

    def _screens(self) -> int:
        hub = self._app[HUB]
        return hub.count() - hub.count(OPS)

    # -- the summary -------------------------------------------------------------------------

    async def summary(self) -> dict[str, Any]:
        app = self._app
        backup_dir = app[BACKUPS].backup_dir
        facts = await asyncio.to_thread(disk_facts, app[CONFIG].storage_dir, backup_dir)
        audit = await self._newest_audit()
        now = time.time()
        boxes = self._boxes()
        server = self._server(facts, now)
        backup = self._backups(facts, now)
        problems, warnings = _verdicts(boxes, server, backup)
        return {"type": "OPS_SUMMARY", "at": now, "problems": problems, "warnings": warnings,
                "offlineBoxes": [box["boxId"] for box in boxes if not box["online"]],
                "boxes": boxes, "server": server, "backups": backup, "audit": audit,
                "history": self.history.as_json()}

    def _boxes(self) -> list[dict[str, Any]]:
        registry, hub, tablets = self._app[REGISTRY], self._app[HUB], self._app[TABLETS]
        unavailable = registry.unavailable_boxes()
        now_ms = registry.now_ms()
        rows = []
        for box_id in sorted(set(registry.box_ids()) | set(unavailable) | tablets.boxes()):
            tablet = tablets.status(box_id)
            row: dict[str, Any] = {
                "boxId": box_id, "tablets": tablet.connected, "online": tablet.online,
                "heardAgoS": None if tablet.heard_ago_s is None else round(tablet.heard_ago_s, 1),
                # A judge's socket joins its channel a moment after it registers as a tablet.
                "scoreboards": max(0, hub.count(box_channel(box_id)) - tablet.connected),
                "spectators": hub.count(public_box_channel(box_id)),
                "unavailable": unavailable.get(box_id),
            }
            if box_id not in unavailable:
                state = registry.state(box_id)
                row.update(category=state["categorie"], initiated=state["initiated"],
                           routeIndex=state["routeIndex"], routesCount=state["routesCount"],
                           climber=state["currentClimber"], timerState=state["timerState"],
                           remaining=remaining_seconds(state, now_ms), version=state["boxVersion"])
            rows.append(row)
        return rows

    def _server(self, facts: DiskFacts, now: float) -> dict[str, Any]:
        app = self._app
        status, hub = app[PERSISTER].status, app[HUB]
        last = status.last_durable_write
        return {
            "storageMode": app[STORAGE].mode,
            "degraded": status.degraded,
            "lastError": status.last_error,
            "lastDurableAgoS": None if last is None else round(max(0.0, now - last), 1),
            "committedEvents": status.events,
            "diskFreeBytes": facts.free_bytes,
            "diskLow": facts.free_bytes is not None and facts.free_bytes < LOW_DISK_BYTES,
            "uptimeS": round(now - app[STARTED_AT]),
            "screens": self._screens(),
            "rankingPages": hub.count(PUBLIC),
            "tabletSilentAfterS": app[TABLETS].silent_after_s,
        }

    def _backups(self, facts: DiskFacts, now: float) -> dict[str, Any]:
        status, interval = self._app[BACKUPS].status, self._app[CONFIG].backup_interval_min
        failed = status.last_error_at is not None and (status.last_at is None or status.last_error_at > status.last_at)
        age = None if facts.newest_backup_mtime is None else round(max(0.0, now - facts.newest_backup_mtime), 1)
        return {
            "newestFile": facts.newest_backup, "newestAgoS": age, "newestSize": facts.newest_backup_size,
            "lastResult": "failed" if failed else ("ok" if status.last_at is not None else None),
            "lastError": status.last_error if failed else None,
            "taken": status.taken, "failed": status.failed, "intervalMin": interval,
            # Late: more than two automatic intervals since the newest zip (none are taken at interval 0).
            "late": interval > 0 and (age is None or age > 2 * 60 * interval),
        }

    async def _newest_audit(self) -> list[dict[str, Any]]:
        status = self._app[PERSISTER].status
        mark = (status.events, status.batches)
        if mark != self._audit_mark:
            try:
                events = await self._app[STORAGE].read_audit(limit=AUDIT_SHOWN, box_id=None, include_payload=False)
            except StorageError:  # the page says the storage is degraded; the old list stays
                return self._audit
            self._audit = [{key: event.get(key) for key in AUDIT_FIELDS} for event in events]
            self._audit_mark = mark
        return self._audit


def _verdicts(boxes: list[dict[str, Any]], server: dict[str, Any],
              backup: dict[str, Any]) -> tuple[list[str], list[str]]:
    """What turns the page red (problems) or amber (warnings), in words a person acts on."""
    problems = []
    for box in boxes:
        if box["unavailable"] is not None:
            problems.append(f"Box {box['boxId']}: cannot be rebuilt ({box['unavailable']})")
        if not box["online"]:
            why = "not connected" if not box["tablets"] else f"silent for {box['heardAgoS']:.0f} s"
            problems.append(f"Box {box['boxId']}: judge tablet {why}")
    if server["degraded"]:
        problems.append("Storage degraded: commands are refused until writes succeed again")
    if backup["lastResult"] == "failed":
        problems.append(f"Last backup failed: {backup['lastError']}")
    warnings = []
    if server["diskLow"]:
        warnings.append(f"Free disk space low: {server['diskFreeBytes'] / (1 << 20):.0f} MiB")
    if backup["late"]:
        warnings.append("No recent backup" if backup["newestFile"] else "No backup yet")
    return problems, warnings
