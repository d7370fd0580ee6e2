"""Typed keys for what the app factory puts on the aiohttp application from below transport
(actors, storage, configuration). Keys of what http/ and ws/ define live beside it, in
transport/http/keys.py and transport/ws/keys.py: this module imports neither package, as every
route imports it."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import web

from actors.accounts.actor import AccountsActor
from actors.accounts.hashing import Hashing
from actors.accounts.tokens import TokenService
from actors.jobs.backups import BackupActor
from actors.jobs.exports import ExportRunner
from actors.jobs.pool import WorkerPool
from actors.officials import OfficialsActor
from actors.persister import Persister
from actors.registry import BoxRegistry
from persistence.storage import Storage
from transport.config import Config
from transport.local_admin import LocalAdmin
from transport.public_state import PublicState

CONFIG = web.AppKey("config", Config)
REGISTRY = web.AppKey("registry", BoxRegistry)
STORAGE = web.AppKey("storage", Storage)
PERSISTER = web.AppKey("persister", Persister)
STARTED_AT = web.AppKey("started_at", float)
OFFICIALS = web.AppKey("officials", OfficialsActor)
UPLOAD_POOL = web.AppKey("upload_pool", WorkerPool)
TOKENS = web.AppKey("tokens", TokenService)
# Spectator tokens have their own key (SPECTATOR_JWT_SECRET), so an edge can mint nothing else.
SPECTATOR_TOKENS = web.AppKey("spectator_tokens", TokenService)
# What the spectator routes serve: the core's boxes, or an edge's copy (transport/public_state.py).
PUBLIC_STATE: web.AppKey[PublicState] = web.AppKey("public_state")
# The Redis publisher's state for health, when edges are fed (typed by the call: redis-py stays unloaded).
BROKER_REPORT: web.AppKey[Callable[[], dict[str, Any]]] = web.AppKey("broker_report")
ACCOUNTS = web.AppKey("accounts", AccountsActor)
# Names of the shutdown steps that failed (a database gone at the end): the server exits with 1.
SHUTDOWN_FAILURES: web.AppKey[list[str]] = web.AppKey("shutdown_failures")
HASHING = web.AppKey("hashing", Hashing)
BACKUPS = web.AppKey("backups", BackupActor)
EXPORT_RUNNER = web.AppKey("export_runner", ExportRunner)
LOCAL_ADMIN = web.AppKey("local_admin", LocalAdmin)
