"""Typed keys for what the app factory puts on the aiohttp application."""
from __future__ import annotations

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
from transport.http.cors import OriginPolicy
from transport.http.login_throttle import LoginThrottle
from transport.http.rate_limit import RateLimiter, Unlimited
from transport.local_admin import LocalAdmin
from transport.ws.hub import Hub
from transport.ws.sessions import SocketSessions

CONFIG = web.AppKey("config", Config)
REGISTRY = web.AppKey("registry", BoxRegistry)
HUB = web.AppKey("hub", Hub)
STORAGE = web.AppKey("storage", Storage)
PERSISTER = web.AppKey("persister", Persister)
STARTED_AT = web.AppKey("started_at", float)
OFFICIALS = web.AppKey("officials", OfficialsActor)
UPLOAD_POOL = web.AppKey("upload_pool", WorkerPool)
TOKENS = web.AppKey("tokens", TokenService)
ACCOUNTS = web.AppKey("accounts", AccountsActor)
HASHING = web.AppKey("hashing", Hashing)
LOGIN_THROTTLE = web.AppKey("login_throttle", LoginThrottle)
RATE_LIMITER: web.AppKey[RateLimiter | Unlimited] = web.AppKey("rate_limiter")
BACKUPS = web.AppKey("backups", BackupActor)
EXPORT_RUNNER = web.AppKey("export_runner", ExportRunner)
ORIGIN_POLICY = web.AppKey("origin_policy", OriginPolicy)
LOCAL_ADMIN = web.AppKey("local_admin", LocalAdmin)
SOCKET_SESSIONS = web.AppKey("socket_sessions", SocketSessions)
