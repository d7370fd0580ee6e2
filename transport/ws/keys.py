"""Typed keys for what the WebSocket side keeps on the aiohttp application (beside the objects
they key, like transport/http/keys.py: transport/keys.py imports neither package)."""
from __future__ import annotations

from aiohttp import web

from transport.ws.hub import Hub
from transport.ws.sessions import SocketSessions

HUB = web.AppKey("hub", Hub)
SOCKET_SESSIONS = web.AppKey("socket_sessions", SocketSessions)
