"""`GET /metrics`: admin-only on the main port; open on `--metrics-host:--metrics-port`, an
address meant for a Prometheus scraper (loopback unless the organiser chooses otherwise)."""
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from aiohttp import hdrs, web
from prometheus_client import GCCollector, PlatformCollector, ProcessCollector
from prometheus_client.exposition import choose_encoder

from actors.tallies import Buckets
from transport.http.auth import Need, authorize
from transport.http.keys import AUDIT_READS, COMMAND_TALLIES, ORIGIN_POLICY
from transport.http.middleware import request_middleware
from transport.http.tallies import AUDIT_READ_SECONDS, CommandTallies
from transport.metrics.app_metrics import Metrics
from transport.metrics.common_families import CommonCollector
from transport.metrics.families import CoreCollector
from transport.metrics.keys import METRICS
from transport.metrics.loop_lag import watch_loop_lag

routes = web.RouteTableDef()


def install(app: web.Application) -> None:
    """The core's counters, the registry that reads them, the admin route and the loop-lag probe."""
    app[COMMAND_TALLIES] = CommandTallies()
    app[AUDIT_READS] = Buckets(AUDIT_READ_SECONDS)
    install_common(app).registry.register(CoreCollector(app))
    app.add_routes(routes)


def install_common(app: web.Application) -> Metrics:
    """What the core and an edge both keep and export (an edge serves them on --metrics-port only:
    it has no admin login). Needs app[HUB]."""
    app[METRICS] = metrics = Metrics()
    metrics.registry.register(CommonCollector(app))
    # The standard process and interpreter figures (CPU, memory, open files, collections by
    # generation), read from /proc and the gc module at scrape time like ours.
    ProcessCollector(registry=metrics.registry)
    PlatformCollector(registry=metrics.registry)
    GCCollector(registry=metrics.registry)
    app.cleanup_ctx.append(_probe_loop_lag)
    return metrics


@routes.get("/metrics")
async def admin_metrics(request: web.Request) -> web.Response:
    authorize(request, Need.ADMIN)
    return exposition(request, request.app[METRICS])


def exposition(request: web.Request, metrics: Metrics) -> web.Response:
    """The text format, or OpenMetrics when the scraper's Accept header asks for it."""
    encode, content_type = choose_encoder(request.headers.get(hdrs.ACCEPT, ""))
    response = web.Response(body=encode(metrics.registry))
    response.headers[hdrs.CONTENT_TYPE] = content_type
    return response


async def _probe_loop_lag(app: web.Application) -> AsyncIterator[None]:
    probe = asyncio.create_task(watch_loop_lag(app[METRICS].loop_lag), name="loop-lag")
    yield
    probe.cancel()
    try:
        await probe
    except asyncio.CancelledError:
        pass


async def open_runner(app: web.Application) -> web.AppRunner:
    """A runner serving the app's /metrics without a login (the caller adds its sites and cleans
    it up). Other paths answer 404 as JSON, as on the main port."""
    metrics = app[METRICS]

    async def open_metrics(request: web.Request) -> web.Response:
        return exposition(request, metrics)

    site_app = web.Application(middlewares=[request_middleware(app[ORIGIN_POLICY])])
    site_app.router.add_get("/metrics", open_metrics)
    runner = web.AppRunner(site_app, handle_signals=False, access_log=None)
    await runner.setup()
    return runner
