"""`python run.py edge --redis-url URL [--host H --port P]`: serve spectators from Redis."""
from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Coroutine
from typing import Any, Protocol

from aiohttp import web

from transport.collector import keep_collections_short
from transport.config import ConfigError
from transport.edge.app import MIRROR, create_edge_app
from transport.edge.config import EdgeConfig, add_edge_arguments, load_edge_config
from transport.metrics.keys import METRICS
from transport.server import app_runner, bind_listeners, serve_metrics, stop_signal
from transport.ws.keys import HUB

log = logging.getLogger("belay.edge")
FIRST_SYNC_WAIT_S = 10.0


class LoopRunner(Protocol):
    def __call__(self, main: Coroutine[Any, Any, int]) -> int: ...


def build_edge_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="run.py edge",
        description="A Belay edge: serves the spectator routes (/api/public/*, their sockets, /health) from "
                    "what the core publishes to Redis. It holds no storage and never writes; every other "
                    "route answers 421.",
        epilog="Every flag can also be set by the environment variable named in brackets; flags win.\n"
               "SPECTATOR_JWT_SECRET (environment only) must be the core's. JWT_SECRET must not be set.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_edge_arguments(parser)
    return parser


def main(argv: list[str], run_loop: LoopRunner) -> int:
    args = build_edge_parser().parse_args(argv)
    try:
        config = load_edge_config(args, os.environ)
    except ConfigError as exc:
        print(f"run.py edge: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=config.server.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return run_loop(serve_edge(config))


async def serve_edge(config: EdgeConfig) -> int:
    server = config.server
    bound = bind_listeners(server)
    if bound is None:
        return 2
    sockets, metrics_sockets = bound
    app = create_edge_app(config)
    runner = app_runner(app)
    await runner.setup()
    metrics_runner: web.AppRunner | None = None
    try:
        # A spectator sent here must not see empty boxes that the core has: listen once in step
        # with Redis, or after a while without it (then serving nothing, and saying it is stale).
        try:
            await asyncio.wait_for(app[MIRROR].in_step.wait(), FIRST_SYNC_WAIT_S)
        except TimeoutError:
            log.warning("no state from Redis after %.0f s; listening anyway (health: stale)", FIRST_SYNC_WAIT_S)
        for sock in sockets:
            await web.SockSite(runner, sock).start()
        metrics_runner = await serve_metrics(app, metrics_sockets, server.metrics_host)
        collector = asyncio.create_task(keep_collections_short(app[HUB].commands_started, app[METRICS].gc_pauses),
                                        name="gc-freezer")
        stop = stop_signal()
        print(f"listening on http://{server.host}:{sockets[0].getsockname()[1]}", flush=True)
        await stop.wait()
        log.info("stopping the edge")
        collector.cancel()
    finally:
        if metrics_runner is not None:
            await metrics_runner.cleanup()
        await runner.cleanup()
        for sock in (*sockets, *metrics_sockets):
            sock.close()
    return 0
