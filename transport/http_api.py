"""HTTP routes for commands, box state and the audit log: translate, authorize, forward."""
from __future__ import annotations

import math
from typing import Any

import orjson
from aiohttp import web

from actors.rules import CommandError, parse_command
from transport.auth import Need, authorize, origin_of
from transport.errors import (
    BODY_NOT_OBJECT,
    INVALID_BOX_ID,
    INVALID_LIMIT,
    JSON_REQUIRED,
    MALFORMED_JSON,
    ClientError,
)
from transport.keys import HUB, RATE_LIMITER, REGISTRY, STORAGE
from transport.rate_limit import command_class
from transport.request_numbers import whole_number

MAX_BOX_ID = 9999
AUDIT_DEFAULT_LIMIT = 200
AUDIT_MAX_LIMIT = 2000
_TRUTHY = {"1", "true", "yes", "on", "y"}

routes = web.RouteTableDef()


async def read_json_object(request: web.Request) -> dict[str, Any]:
    """The body as a JSON object; bodies over the app's client_max_size answer 413.

    Only as `Content-Type: application/json` (any charset parameter): a browser lets a page on any
    site send text/plain or a form without asking first (CORS preflight), never JSON. The body is
    read first, so an oversized one still gets its 413."""
    raw = await request.read()
    if request.content_type != "application/json":
        raise ClientError(415, JSON_REQUIRED)
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise ClientError(400, MALFORMED_JSON) from None
    if not isinstance(body, dict):
        raise ClientError(400, BODY_NOT_OBJECT)
    return body


def parse_box_id(text: str) -> int:
    box_id = whole_number(text, 0, MAX_BOX_ID)
    if box_id is None:
        raise ClientError(400, INVALID_BOX_ID)
    return box_id


@routes.post("/api/cmd")
async def post_command(request: web.Request) -> web.Response:
    body = await read_json_object(request)
    box_id = body.get("boxId")
    principal = authorize(request, Need.BOX_COMMAND, box_id if isinstance(box_id, int) else None)
    try:
        command = parse_command(body)
    except CommandError as exc:
        raise ClientError(400, exc.detail) from None
    wait = request.app[RATE_LIMITER].take(command.box_id, request.remote or "?", command_class(command.type))
    if wait is not None:
        seconds = max(1, math.ceil(wait))
        return web.json_response(
            {"detail": f"rate limit exceeded for {command.type} on box {command.box_id}; retry in {seconds} s"},
            status=429, headers={"Retry-After": str(seconds)})
    with request.app[HUB].serving_command():  # the scoreboards' frames wait for this reply
        reply = await request.app[REGISTRY].execute(command, origin_of(request, principal))
    return json_bytes(reply.body, reply.status)


@routes.get("/api/state/{box_id}")
async def get_state(request: web.Request) -> web.Response:
    box_id = parse_box_id(request.match_info["box_id"])
    authorize(request, Need.VIEW_BOX, box_id)
    return json_bytes(request.app[REGISTRY].snapshot(box_id))


@routes.get("/api/admin/audit/events")
async def get_audit_events(request: web.Request) -> web.Response:
    authorize(request, Need.ADMIN)
    query = request.query
    limit = whole_number(query.get("limit") or str(AUDIT_DEFAULT_LIMIT), 1, AUDIT_MAX_LIMIT)
    if limit is None:
        raise ClientError(400, INVALID_LIMIT)
    box_text = query.get("boxId")
    box_id = parse_box_id(box_text) if box_text else None
    include_payload = (query.get("includePayload") or "").strip().lower() in _TRUTHY
    events = await request.app[STORAGE].read_audit(limit=limit, box_id=box_id,
                                                    include_payload=include_payload)
    return json_bytes(events)


def json_bytes(value: Any, status: int = 200) -> web.Response:
    """JSON encoded once, straight to bytes (the hot routes answer thousands of times a second)."""
    return web.Response(body=orjson.dumps(value), status=status, content_type="application/json")
