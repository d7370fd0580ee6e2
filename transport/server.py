"""Serve the app until SIGINT or SIGTERM: take the port, open the storage, listen, print where, stop cleanly."""
from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket

from aiohttp import web

from actors.accounts.setup import StartupRefused
from persistence.errors import StorageError, StorageLocked
from transport.app import create_app
from transport.collector import keep_collections_short
from transport.config import Config
from transport.keys import LOCAL_ADMIN, SHUTDOWN_FAILURES, STORAGE
from transport.local_admin import loopback_url, remove_server_file, write_server_file
from transport.metrics.keys import METRICS
from transport.metrics.routes import open_runner
from transport.ws.keys import HUB

log = logging.getLogger("belay")


async def serve(config: Config) -> int:
    # The port first: a start that cannot listen must fail before it creates anything (the first
    # start creates `admin` and prints its one-time password, which a failed run would waste).
    bound = bind_listeners(config)
    if bound is None:
        return 2
    sockets, metrics_sockets = bound
    try:
        return await _serve_on(sockets, metrics_sockets, config)
    finally:
        for sock in (*sockets, *metrics_sockets):
            sock.close()


def bind_listeners(config: Config) -> tuple[list[socket.socket], list[socket.socket]] | None:
    """The sockets of --port and of --metrics-port (none without it), for the core and an edge;
    None, said in the log, when either cannot be bound."""
    try:
        sockets = bind_sockets(config.host, config.port)
    except OSError as exc:
        log.error("cannot listen on %s:%s: %s (is another server using the port? choose another with --port)",
                  config.host, config.port, exc)
        return None
    metrics_sockets: list[socket.socket] = []
    try:
        if config.metrics_port is not None:
            metrics_sockets = bind_sockets(config.metrics_host, config.metrics_port)
    except OSError as exc:
        log.error("cannot serve metrics on %s:%s: %s (choose another --metrics-port)",
                  config.metrics_host, config.metrics_port, exc)
        for sock in sockets:
            sock.close()
        return None
    return sockets, metrics_sockets


async def _serve_on(sockets: list[socket.socket], metrics_sockets: list[socket.socket], config: Config) -> int:
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
        log.error("cannot open storage at %s: %s", app[STORAGE].location, exc)
        return 2
    try:
        for sock in sockets:
            await web.SockSite(runner, sock).start()
    except OSError as exc:
        log.error("cannot listen on %s:%s: %s", config.host, config.port, exc)
        await runner.cleanup()
        return 2
    metrics_runner = await serve_metrics(app, metrics_sockets, config.metrics_host)
    collector = asyncio.create_task(keep_collections_short(app[HUB].commands_started, app[METRICS].gc_pauses),
                                    name="gc-freezer")
    stop = stop_signal()
    port = sockets[0].getsockname()[1]  # the port the OS picked for --port 0
    write_server_file(config.storage_dir, os.getpid(), loopback_url(config.host, port), app[LOCAL_ADMIN])
    # Only now: a supervisor that reads this line may stop the server at once, and it must flush.
    print(f"listening on http://{config.host}:{port}", flush=True)
    try:
        await stop.wait()
    finally:
        log.info("stopping: no new commands, flushing the log and checkpointing every box")
        remove_server_file(config.storage_dir)
        collector.cancel()
        if metrics_runner is not None:
            await metrics_runner.cleanup()
        await runner.cleanup()
    failed: list[str] = app[SHUTDOWN_FAILURES]
    if failed:
        log.error("stopped, but not cleanly (%s failed): nothing acknowledged is lost; the next start "
                  "replays the boxes whose checkpoint could not be written", ", ".join(dict.fromkeys(failed)))
        return 1
    log.info("stopped")
    return 0


def stop_signal() -> asyncio.Event:
    """Set by SIGINT or SIGTERM. A second one while stopping ends the process at once: a shutdown
    stuck on a storage that stopped answering must not need SIGKILL (every acknowledged event is
    committed already; a box without its last checkpoint is replayed at the next start)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_signal() -> None:
        if stop.is_set():
            log.error("a second stop signal: exiting now, before the shutdown finished")
            logging.shutdown()
            os._exit(1)
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, on_signal)
        except (NotImplementedError, RuntimeError):  # Windows: Ctrl+C raises KeyboardInterrupt instead
            pass
    return stop


async def serve_metrics(app: web.Application, sockets: list[socket.socket], host: str) -> web.AppRunner | None:
    """/metrics without a login on the sockets bound for --metrics-port (None: none were asked for)."""
    if not sockets:
        return None
    runner = await open_runner(app)
    for sock in sockets:
        await web.SockSite(runner, sock).start()
    log.info("metrics without a login on http://%s:%d/metrics", host, sockets[0].getsockname()[1])
    return runner


def bind_sockets(host: str, port: int) -> list[socket.socket]:
    """Bound sockets for every address of `host`, as aiohttp's TCPSite would make them; they start
    listening when the app's sites start. With port 0 every address gets the same free port."""
    infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    sockets: list[socket.socket] = []
    try:
        for family, kind, proto, _name, address in dict.fromkeys(infos):
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            if os.name == "posix":  # a restart may rebind at once; elsewhere the option means "share"
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6 and hasattr(socket, "IPPROTO_IPV6"):
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            if port == 0 and len(sockets) > 1:
                address = (address[0], sockets[0].getsockname()[1], *address[2:])
            sock.bind(address)
    except OSError:
        for sock in sockets:
            sock.close()
        raise
    return sockets


def app_runner(app: web.Application) -> web.AppRunner:
    """How the server runs `app` (tests that depend on aiohttp's connection handling use it too)."""
    return web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=10)
