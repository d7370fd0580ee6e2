"""Typed keys for what the HTTP side keeps on the aiohttp application.

Beside the objects they key, so that transport/keys.py never imports http/ or ws/ (every route
imports the keys: a key module that imported the routes' packages would close a cycle). The one
thing a route needs from the WebSocket side is typed by what it uses, not by the hub's class, so
http/ never imports ws/ either (ws/ imports http/ for authorization and errors).
"""
from __future__ import annotations

from collections.abc import Iterable
from contextlib import AbstractContextManager
from typing import Protocol

from aiohttp import web

from actors.tallies import Buckets
from transport.http.cors import OriginPolicy
from transport.http.login_throttle import LoginThrottle
from transport.http.rate_limit import RateLimiter, Unlimited
from transport.http.tallies import CommandTallies


class CommandGate(Protocol):
    """Held while a command is served: the sockets' writes wait for its reply (transport/ws/hub.py)."""

    def serving_command(self) -> AbstractContextManager[None]: ...


class TabletLiveness(Protocol):
    """Which boxes' judge tablets are missing or silent (transport/ws/tablets.py), for health."""

    def offline_boxes(self, box_ids: Iterable[int]) -> list[int]: ...


ORIGIN_POLICY = web.AppKey("origin_policy", OriginPolicy)
LOGIN_THROTTLE = web.AppKey("login_throttle", LoginThrottle)
RATE_LIMITER: web.AppKey[RateLimiter | Unlimited] = web.AppKey("rate_limiter")
COMMAND_GATE: web.AppKey[CommandGate] = web.AppKey("command_gate")
TABLET_LIVENESS: web.AppKey[TabletLiveness] = web.AppKey("tablet_liveness")
COMMAND_TALLIES = web.AppKey("command_tallies", CommandTallies)
AUDIT_READS = web.AppKey("audit_reads", Buckets)  # seconds per audit read (AUDIT_READ_SECONDS)
