"""Typed keys for what the app factory puts on the aiohttp application."""
from __future__ import annotations

from aiohttp import web

from actors.persister import Persister
from actors.registry import BoxRegistry
from persistence.storage import Storage
from transport.config import Config
from transport.ws_hub import Hub

CONFIG = web.AppKey("config", Config)
REGISTRY = web.AppKey("registry", BoxRegistry)
HUB = web.AppKey("hub", Hub)
STORAGE = web.AppKey("storage", Storage)
PERSISTER = web.AppKey("persister", Persister)
STARTED_AT = web.AppKey("started_at", float)
