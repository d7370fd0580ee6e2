"""An edge's aiohttp application: the core's spectator routes over an EdgeMirror, health, and a
421 for everything else."""
from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

from aiohttp import web

from actors.accounts.tokens import SPECTATOR_TTL_S, TokenService
from transport.edge.config import EdgeConfig
from transport.edge.mirror import EdgeMirror
from transport.http import public
from transport.http.client_address import CLIENT_ADDRESSES, ClientAddresses
from transport.http.cors import OriginPolicy
from transport.http.errors import NOT_ON_EDGE, ClientError, protocol_logger
from transport.http.keys import ORIGIN_POLICY
from transport.http.middleware import request_middleware
from transport.keys import CONFIG, PUBLIC_STATE, SPECTATOR_TOKENS
from transport.metrics.routes import install_common as install_metrics
from transport.ws import endpoints as ws_endpoints
from transport.ws.hub import Hub
from transport.ws.keys import HUB, SOCKET_SESSIONS
from transport.ws.sessions import SocketSessions

log = logging.getLogger("belay.edge")

MIRROR = web.AppKey("edge_mirror", EdgeMirror)
SHUTDOWN_CLOSE_TIMEOUT_S = 2.0
MAX_REQUEST_LINE = 64 * 1024

routes = web.RouteTableDef()


def create_edge_app(config: EdgeConfig) -> web.Application:
    server = config.server
    policy = OriginPolicy(server.allowed_origins, server.allowed_origin_regex)
    app = web.Application(client_max_size=server.max_body_bytes, middlewares=[request_middleware(policy)],
                          handler_args={"logger": protocol_logger(), "max_line_size": MAX_REQUEST_LINE})
    app[CONFIG] = server
    app[ORIGIN_POLICY] = policy
    app[CLIENT_ADDRESSES] = ClientAddresses(server.trusted_networks)  # behind nginx, as on the core
    app[HUB] = hub = Hub(ping_interval_s=server.ws_ping_interval_s)
    app[SOCKET_SESSIONS] = SocketSessions()  # spectators have no login session; the endpoints expect it
    app[SPECTATOR_TOKENS] = TokenService(config.spectator_jwt_secret, SPECTATOR_TTL_S)
    app[MIRROR] = mirror = EdgeMirror(config.redis_url, config.redis_prefix, hub)
    app[PUBLIC_STATE] = mirror
    install_metrics(app).edge_staleness = mirror.staleness_s  # served on --metrics-port only (no admin here)
    app.add_routes(public.routes)
    app.add_routes(ws_endpoints.public_routes)
    app.add_routes(routes)
    app.router.add_route("*", "/{anything:.*}", not_on_edge)  # last: only what no route above takes
    app.cleanup_ctx.append(_tasks)
    app.on_shutdown.append(_close_sockets)
    return app


@routes.get("/health")
async def health(request: web.Request) -> web.Response:
    """200 while serving; `stale` while out of step with Redis (the last state received is served)."""
    report = request.app[MIRROR].report()
    status = "ok" if report["stale_since"] is None else "stale"
    return web.json_response({"status": status, "role": "edge", "redis": report,
                              "spectators": request.app[HUB].count()})


async def not_on_edge(request: web.Request) -> web.StreamResponse:
    raise ClientError(NOT_ON_EDGE)


async def _tasks(app: web.Application) -> AsyncIterator[None]:
    tasks = [asyncio.create_task(app[MIRROR].run(), name="edge-mirror"),
             asyncio.create_task(app[HUB].ping_loop(), name="ws-ping")]
    for task in tasks:
        task.add_done_callback(_report_crash)
    log.info("edge: following Redis under %r", app[CONFIG].redis_prefix)
    try:
        yield
    finally:
        for task in tasks:
            task.remove_done_callback(_report_crash)
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _report_crash(task: asyncio.Task[None]) -> None:
    """Both tasks run until cancelled; one that ends otherwise is a bug, said loudly."""
    if not task.cancelled():
        log.error("edge task %s stopped", task.get_name(), exc_info=task.exception())


async def _close_sockets(app: web.Application) -> None:
    await app[HUB].shut_down(SHUTDOWN_CLOSE_TIMEOUT_S)
