"""The app factory: builds config, storage, actors and hubs, and tears them down in order."""
from __future__ import annotations

import asyncio
import logging
import time
from typing import AsyncIterator

from aiohttp import web

from actors.messages import Clock
from actors.persister import Persister
from actors.recovery import restore_boxes
from actors.registry import BoxRegistry
from actors.runtime import ActorSystem
from persistence.fs import FileSystem
from persistence.storage import JsonStorage
from transport import health, http_api, ws_api
from transport.config import Config
from transport.errors import json_errors
from transport.keys import CONFIG, HUB, PERSISTER, REGISTRY, STARTED_AT, STORAGE
from transport.ws_hub import Hub

log = logging.getLogger("belay")


class WallClock:
    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000


def create_app(config: Config, *, fs: FileSystem | None = None, clock: Clock | None = None) -> web.Application:
    app = web.Application(client_max_size=config.max_body_bytes, middlewares=[json_errors])
    app[CONFIG] = config
    app[HUB] = Hub()
    app[STORAGE] = JsonStorage(config.storage_dir, max_log_bytes=config.max_audit_file_bytes, fs=fs)
    app.add_routes(http_api.routes)
    app.add_routes(ws_api.routes)
    app.add_routes(health.routes)
    app.cleanup_ctx.append(_lifecycle(clock or WallClock()))
    app.on_shutdown.append(_drain)
    return app


def _lifecycle(clock: Clock):
    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        config, storage, hub = app[CONFIG], app[STORAGE], app[HUB]
        recovered = await storage.open(config.reset_boxes_on_start)
        system = ActorSystem()
        await system.start()
        persister = Persister(storage, config.checkpoint_interval_s)
        system.spawn(persister)
        system.spawn_service(persister.checkpoint_loop(), "checkpoints")
        registry = BoxRegistry(system, persister, hub, clock, officials={})
        restored = restore_boxes(recovered)
        registry.adopt(restored)
        system.spawn_service(hub.ping_loop(config.ws_ping_interval_s), "ws-ping")
        app[PERSISTER] = persister
        app[REGISTRY] = registry
        app[STARTED_AT] = time.time()
        log.info("storage mode=%s dir=%s: restored %d box(es)%s", storage.mode,
                 config.storage_dir.resolve(), len(restored), _recovery_notes(recovered))
        try:
            yield
        finally:
            await registry.close()
            await persister.flush()
            persister.stop()
            await persister.finished.wait()
            await system.close()
            await storage.close()
            log.info("storage flushed and closed")

    return lifecycle


def _recovery_notes(recovered) -> str:
    notes = []
    if recovered.torn_bytes:
        notes.append(f"cut a torn log tail of {recovered.torn_bytes} bytes")
    if recovered.bad_lines:
        notes.append(f"skipped {recovered.bad_lines} unreadable log line(s)")
    if recovered.quarantined:
        notes.append(f"quarantined {', '.join(recovered.quarantined)}")
    if recovered.unrecoverable:
        notes.append(f"could not rebuild box(es) {recovered.unrecoverable}")
    return "; " + "; ".join(notes) if notes else ""


async def _drain(app: web.Application) -> None:
    """Stop taking commands and flush before the sockets close."""
    await app[REGISTRY].close()
    await app[PERSISTER].flush()
    app[HUB].close()
    await asyncio.gather(*(ws.close(code=1001, message=b"server shutdown") for ws in app[HUB].sockets()),
                         return_exceptions=True)
