"""A box's versions since the last reset, and rollback to one of them (admin only).

Both read the box's events from the storage and replay them with the one replay function
(actors/recovery/replay.py), off the event loop. A rollback goes through the box's actor as an audited
RESTORE, like a restore from a backup.
"""
from __future__ import annotations

import asyncio
from typing import Any, TypeVar

from aiohttp import web

from actors.codes import STORAGE_UNAVAILABLE
from actors.messages import RestoreBox
from actors.recovery.history import (
    ACTIONS,
    DEFAULT_LIMIT,
    MAX_LIMIT,
    UnknownVersion,
    page,
    rollback_source,
    state_at,
    versions,
)
from actors.recovery.replay import ReplayError
from actors.rules.commands import MAX_BOX_VERSION
from persistence.storage import StorageError
from persistence.types import is_int
from transport.http.auth import Need, authorize, origin_of
from transport.http.bodies import json_bytes, read_json_object, require_box_id
from transport.http.errors import INVALID_REQUEST, VERSION_NOT_FOUND, VERSION_UNREBUILDABLE, ClientError, reply_status
from transport.keys import REGISTRY, STORAGE
from transport.request_numbers import whole_number

routes = web.RouteTableDef()
D = TypeVar("D", int, None)  # a query number's default: a number, or None for "absent"

MAX_ACTIONS = len(ACTIONS)
INVALID_VERSION = f"boxVersion must be an integer from 0 to {MAX_BOX_VERSION}"


@routes.get("/api/admin/boxes/{box_id}/history")
async def box_history(request: web.Request) -> web.Response:
    box_id = require_box_id(request.match_info["box_id"])
    authorize(request, Need.ADMIN, box_id)
    limit = query_number(request.query.get("limit"), "limit", 1, MAX_LIMIT, DEFAULT_LIMIT)
    before = query_number(request.query.get("before"), "before", 0, MAX_BOX_VERSION, None)
    actions = parse_actions(request.query.get("action"))
    events = await _box_events(request, box_id)
    found, next_before = await asyncio.to_thread(
        lambda: page(versions(events), limit=limit, before=before, actions=actions))
    return json_bytes({"boxId": box_id, "versions": [v.to_json() for v in found], "nextBefore": next_before})


@routes.post("/api/admin/boxes/{box_id}/rollback")
async def rollback(request: web.Request) -> web.Response:
    box_id = require_box_id(request.match_info["box_id"])
    principal = authorize(request, Need.ADMIN, box_id)
    version = (await read_json_object(request)).get("boxVersion")
    if not is_int(version) or not 0 <= version <= MAX_BOX_VERSION:
        raise ClientError(INVALID_REQUEST, INVALID_VERSION)
    events = await _box_events(request, box_id)
    try:
        state, as_of_ms = await asyncio.to_thread(state_at, events, version)
    except UnknownVersion:
        raise ClientError(VERSION_NOT_FOUND, f"box {box_id} has no version {version} since the last reset") from None
    except ReplayError as exc:
        raise ClientError(VERSION_UNREBUILDABLE,
                          f"version {version} of box {box_id} cannot be rebuilt: {exc}") from None
    message = RestoreBox(state, rollback_source(version), origin_of(request, principal), as_of_ms)
    reply = await request.app[REGISTRY].restore(box_id, message)
    if reply.code is not None:
        return json_bytes(reply.body, reply_status(reply))
    return json_bytes({"status": "ok", "rolledBackTo": version, **reply.body})


def query_number(text: str | None, name: str, lo: int, hi: int, default: D) -> int | D:
    """`default` when absent; otherwise digits only, never longer than `hi` written out."""
    if text is None or text == "":
        return default
    value = whole_number(text, lo, hi)
    if value is None:
        raise ClientError(INVALID_REQUEST, f"{name} must be an integer from {lo} to {hi}")
    return value


def parse_actions(text: str | None) -> frozenset[str] | None:
    """`action=SUBMIT_SCORE` or several, comma-separated; None = every action."""
    if not text:
        return None
    names = [part.strip() for part in text.split(",", MAX_ACTIONS) if part.strip()]
    if not names or len(names) > MAX_ACTIONS or not all(name in ACTIONS for name in names):
        raise ClientError(INVALID_REQUEST,
                          "action must be one or more (comma-separated) of " + ", ".join(sorted(ACTIONS)))
    return frozenset(names)


async def _box_events(request: web.Request, box_id: int) -> list[dict[str, Any]]:
    try:
        return await request.app[STORAGE].read_box_events(box_id)
    except StorageError:
        raise ClientError(STORAGE_UNAVAILABLE) from None
