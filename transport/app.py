"""The app factory: builds config, storage, actors and hubs, and tears them down in order."""
from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING

from aiohttp import web

from actors.accounts.hashing import Hashing
from actors.accounts.setup import check_production, spectator_token_service, start_accounts, token_service
from actors.jobs.backups import BackupActor
from actors.jobs.exports import ExportRunner
from actors.jobs.pool import WorkerPool
from actors.jobs.start_list import PARSE_TIMEOUT_S
from actors.messages import Clock
from actors.officials import OfficialsActor, officials_from
from actors.persister import Persister
from actors.recovery.replay import load_state
from actors.recovery.restore import Recovery, lagging_checkpoints, restore_boxes
from actors.registry import BoxRegistry
from actors.runtime import Actor, ActorSystem
from persistence.errors import StorageError
from persistence.factory import storage_for
from persistence.fs import FileSystem
from persistence.storage import Recovered
from transport.config import Config
from transport.http import backup, commands, health, history, login, public, results, upload, users
from transport.http import officials as officials_routes  # `officials` names the actor below
from transport.http.auth import session_stands
from transport.http.client_address import CLIENT_ADDRESSES, ClientAddresses
from transport.http.cors import OriginPolicy
from transport.http.errors import TOKEN_REVOKED, protocol_logger
from transport.http.keys import (
    COMMAND_GATE,
    LOGIN_THROTTLE,
    ORIGIN_POLICY,
    RATE_LIMITER,
    TABLET_LIVENESS,
)
from transport.http.login_throttle import LoginThrottle
from transport.http.middleware import request_middleware
from transport.http.rate_limit import RateLimiter, Unlimited
from transport.keys import (
    ACCOUNTS,
    BACKUPS,
    BROKER_REPORT,
    CONFIG,
    EXPORT_RUNNER,
    HASHING,
    LOCAL_ADMIN,
    OFFICIALS,
    PERSISTER,
    PUBLIC_STATE,
    REGISTRY,
    SHUTDOWN_FAILURES,
    SPECTATOR_TOKENS,
    STARTED_AT,
    STORAGE,
    TOKENS,
    UPLOAD_POOL,
)
from transport.local_admin import new_local_admin
from transport.metrics.keys import METRICS
from transport.metrics.routes import install as install_metrics
from transport.ops import routes as ops_routes
from transport.ops.board import OpsBoard
from transport.public_state import CorePublicState
from transport.ws import endpoints as ws_endpoints
from transport.ws.hub import Hub
from transport.ws.keys import HUB, OPS_FEED, SOCKET_SESSIONS, TABLETS
from transport.ws.sessions import SocketSessions
from transport.ws.tablets import TabletWatch

if TYPE_CHECKING:
    from transport.broker.publisher import RedisPublisher

log = logging.getLogger("belay")
SHUTDOWN_CLOSE_TIMEOUT_S = 2.0
MAX_REQUEST_LINE = 64 * 1024


class WallClock:
    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000


def create_app(config: Config, *, fs: FileSystem | None = None, clock: Clock | None = None) -> web.Application:
    """Raises StartupRefused for settings production mode must not run with."""
    check_production(config)
    policy = OriginPolicy(config.allowed_origins, config.allowed_origin_regex)
    # Long request lines (a hostile query string) reach our routes and get a JSON 400, not the
    # parser's plain-text one; beyond this size aiohttp still refuses them.
    handler_args = {"logger": protocol_logger(), "max_line_size": MAX_REQUEST_LINE}
    app = web.Application(client_max_size=config.max_body_bytes, handler_args=handler_args,
                          middlewares=[request_middleware(policy)])
    app[CONFIG] = config
    app[SHUTDOWN_FAILURES] = []
    app[ORIGIN_POLICY] = policy
    app[CLIENT_ADDRESSES] = ClientAddresses(config.trusted_networks)
    if config.trusted_networks:
        log.info("X-Forwarded-For names the client on requests from %s",
                 ", ".join(map(str, config.trusted_networks)))
    app[HUB] = hub = Hub(ping_interval_s=config.ws_ping_interval_s,
                         tablet_ping_interval_s=config.ws_tablet_ping_interval_s)
    app[COMMAND_GATE] = hub  # the command route holds the sockets' writes through the hub's queue
    # The ops page (transport/ops/): judge tablets' liveness (also in /api/health), command latency.
    app[TABLETS] = app[TABLET_LIVENESS] = TabletWatch(config.tablet_silent_after_s)
    app[OPS_FEED] = board = OpsBoard(app)
    app[SOCKET_SESSIONS] = SocketSessions()
    app[STORAGE] = storage_for(config.storage, fs=fs)
    app[LOGIN_THROTTLE] = LoginThrottle()
    app[RATE_LIMITER] = RateLimiter() if config.rate_limits else Unlimited()
    for module in (commands, ws_endpoints, health, officials_routes, public, login, backup, upload, results, history,
                   users, ops_routes):
        app.add_routes(module.routes)
    app.add_routes(ws_endpoints.public_routes)
    install_metrics(app)
    app[UPLOAD_POOL] = WorkerPool(PARSE_TIMEOUT_S)  # spreadsheet parsing runs in its own process
    app.on_cleanup.append(upload.close_pool)
    app[EXPORT_RUNNER] = ExportRunner()  # result files, ZIPs and CSVs are built in their own process
    app.on_cleanup.append(results.close_runner)
    app.cleanup_ctx.append(_lifecycle(clock or WallClock(), board))
    app.on_shutdown.append(_drain)
    return app


def _lifecycle(clock: Clock, board: OpsBoard) -> Callable[[web.Application], AsyncIterator[None]]:
    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        config, storage, hub = app[CONFIG], app[STORAGE], app[HUB]
        opening = time.monotonic()
        recovered = await storage.open(config.reset_boxes_on_start, load_state)
        system = ActorSystem()
        await system.start()
        hashing = Hashing()
        persister = Persister(storage, config.checkpoint_interval_s)
        system.spawn(persister)
        system.spawn_service(persister.checkpoint_loop(), "checkpoints")
        try:
            app[TOKENS] = token_service(config)
            app[SPECTATOR_TOKENS] = spectator_token_service(config)
            app[LOCAL_ADMIN] = new_local_admin(app[TOKENS])

            def close_ended_sockets() -> None:
                app[SOCKET_SESSIONS].close_ended(lambda claims: session_stands(app, claims), TOKEN_REVOKED)

            accounts = system.spawn(await start_accounts(config, storage, persister, hashing, close_ended_sockets))
            publisher: RedisPublisher | None = None  # set below when edges are fed

            def officials_changed() -> None:  # registry and publisher are bound below
                registry.republish_all()
                if publisher is not None:
                    publisher.officials_changed()

            officials = OfficialsActor(officials_from(await storage.read_document("officials")), persister,
                                       on_change=officials_changed)
            system.spawn(officials)
            registry = BoxRegistry(system, persister, hub, clock, officials=lambda: officials.current)
            app[PUBLIC_STATE] = public_state = CorePublicState(registry, officials)
            recovery = restore_boxes(recovered)
            registry.adopt(recovery)
            persister.remember(lagging_checkpoints(recovered, recovery))
            if recovery.unavailable:  # the mark must be on disk before anything else can happen
                await persister.flush()
            system.spawn_service(hub.ping_loop(), "ws-ping")
            if config.redis_url:
                publisher = _start_publisher(app, system, public_state)
            backup_actor = system.spawn(BackupActor(persister, storage, config.backup_dir,
                                                    config.backup_retention_files, clock))
            if config.backup_interval_min > 0:
                system.spawn_service(backup_actor.periodic(config.backup_interval_min), "periodic-backups")
            system.spawn_service(board.run(), "ops-page")
        except BaseException:
            persister.stop()
            await system.close()
            hashing.close()
            await storage.close()
            raise
        app[PERSISTER], app[REGISTRY], app[OFFICIALS] = persister, registry, officials
        app[ACCOUNTS], app[HASHING], app[BACKUPS] = accounts, hashing, backup_actor
        app[STARTED_AT] = time.time()
        log.info("storage mode=%s dir=%s: restored %d box(es)%s", storage.mode,
                 config.storage_dir.resolve(), len(recovery.restored), _recovery_notes(recovered, recovery))
        log.info("replayed %d event(s)", sum(len(run) for run in recovered.events.values()))
        log.info("ready %.0f ms after opening the storage", (time.monotonic() - opening) * 1000)
        try:
            yield
        finally:
            await _shut_down(app, [registry.close, app[SOCKET_SESSIONS].close,
                                   *(_stopper(actor) for actor in (officials, accounts, backup_actor)),
                                   persister.flush, _stopper(persister), system.close, _sync(hashing.close),
                                   storage.close])
            log.info("storage closed")

    return lifecycle


def _start_publisher(app: web.Application, system: ActorSystem, public_state: CorePublicState) -> RedisPublisher:
    """The edges' feed: the hub tells it what changed, its own task writes to Redis."""
    from transport.broker.publisher import RedisPublisher  # redis-py loads only when edges are fed

    config = app[CONFIG]
    assert config.redis_url is not None
    publisher = RedisPublisher(config.redis_url, config.redis_prefix, public_state,
                               app[METRICS].redis_publish_failures)
    app[HUB].add_sink(publisher)
    app[BROKER_REPORT] = publisher.report
    system.spawn_service(publisher.run(), "redis-publisher")
    return publisher


def _stopper(actor: Actor) -> Callable[[], Awaitable[None]]:
    async def stop() -> None:
        actor.stop()
        await actor.finished.wait()
    return stop


def _sync(fn: Callable[[], None]) -> Callable[[], Awaitable[None]]:
    async def run() -> None:
        fn()
    return run


def _recovery_notes(recovered: Recovered, recovery: Recovery) -> str:
    notes = list(recovered.repairs)
    if recovered.skipped_events:
        notes.append(f"skipped {recovered.skipped_events} unreadable log line(s)")
    if recovered.quarantined:
        notes.append(f"quarantined {', '.join(recovered.quarantined)}")
    if recovery.unavailable:
        notes.append(f"box(es) {[box.box_id for box in recovery.unavailable]} cannot be rebuilt and answer "
                     f"503 box_unavailable until an admin brings them back")
    return "; " + "; ".join(notes) if notes else ""


async def _drain(app: web.Application) -> None:
    """Stop taking commands and flush before the sockets close."""
    await _shut_down(app, [app[REGISTRY].close, app[PERSISTER].flush,
                           lambda: app[HUB].shut_down(SHUTDOWN_CLOSE_TIMEOUT_S)])


async def _shut_down(app: web.Application, steps: list[Callable[[], Awaitable[None]]]) -> None:
    """Each step runs even if an earlier one failed: a dead disk or database must not stop the
    shutdown half-way (every acknowledged event is committed already; a checkpoint not written is
    replayed from the log at the next start). A failure is logged in one line and noted for the
    exit status."""
    for step in steps:
        try:
            await step()
        except Exception as exc:
            name = getattr(step, "__qualname__", repr(step))
            if isinstance(exc, (StorageError, OSError)):  # expected when the storage is gone: no traceback
                log.error("shutdown: %s failed: %s", name, str(exc) or type(exc).__name__)
            else:
                log.exception("shutdown: %s failed", name)
            app[SHUTDOWN_FAILURES].append(name)
