"""Serve the app until SIGINT or SIGTERM: open the storage, listen, print where, stop cleanly."""
from __future__ import annotations

import asyncio
import logging
import os
import signal

from aiohttp import web

from persistence.json_store import StorageLocked
from persistence.storage import StorageError
from transport.accounts_setup import StartupRefused
from transport.app import create_app
from transport.collector import keep_collections_short
from transport.config import Config
from transport.keys import HUB, LOCAL_ADMIN
from transport.local_admin import loopback_url, remove_server_file, write_server_file

log = logging.getLogger("belay")


async def serve(config: Config) -> int:
    try:
        app = create_app(config)
    except StartupRefused as exc:
        log.error("refusing to start in production mode: %s", exc)
        return 2
    runner = app_runner(app)
    try:
        await runner.setup()
    except StorageLocked as exc:
        log.error("%s", exc)
        return 2
    except (StorageError, OSError) as exc:
        log.error("cannot open storage at %s: %s", config.storage_dir, exc)
        return 2
    site = web.TCPSite(runner, config.host, config.port, reuse_address=True)
    try:
        await site.start()
    except OSError as exc:
        log.error("cannot listen on %s:%s: %s", config.host, config.port, exc)
        await runner.cleanup()
        return 2
    collector = asyncio.create_task(keep_collections_short(app[HUB].commands_started), name="gc-freezer")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):  # Windows: Ctrl+C raises KeyboardInterrupt instead
            pass
    host, port = _bound_address(runner, config)
    write_server_file(config.storage_dir, os.getpid(), loopback_url(host, port), app[LOCAL_ADMIN])
    # Only now: a supervisor that reads this line may stop the server at once, and it must flush.
    print(f"listening on http://{host}:{port}", flush=True)
    try:
        await stop.wait()
    finally:
        log.info("stopping: no new commands, flushing the log and checkpointing every box")
        remove_server_file(config.storage_dir)
        collector.cancel()
        await runner.cleanup()
    return 0


def app_runner(app: web.Application) -> web.AppRunner:
    """How the server runs `app` (tests that depend on aiohttp's connection handling use it too)."""
    return web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=10)


def _bound_address(runner: web.AppRunner, config: Config) -> tuple[str, int]:
    addresses = runner.addresses  # the port the OS picked for --port 0
    return config.host, int(addresses[0][1]) if addresses else config.port
