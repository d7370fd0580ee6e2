"""Typed keys for what the WebSocket side keeps on the aiohttp application (beside the objects
they key, like transport/http/keys.py: transport/keys.py imports neither package)."""
from __future__ import annotations

from typing import Protocol

from aiohttp import web

from transport.ws.hub import Hub
from transport.ws.sessions import SocketSessions
from transport.ws.tablets import TabletWatch


class OpsFeed(Protocol):
    """The ops page's summary (transport/ops/board.py), typed here so ws/ never imports ops/."""

    async def fresh(self) -> bytes: ...

    def latest(self) -> bytes | None: ...


HUB = web.AppKey("hub", Hub)
SOCKET_SESSIONS = web.AppKey("socket_sessions", SocketSessions)
TABLETS = web.AppKey("tablets", TabletWatch)
OPS_FEED: web.AppKey[OpsFeed] = web.AppKey("ops_feed")
