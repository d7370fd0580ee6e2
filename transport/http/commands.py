"""HTTP routes for commands, box state and the audit log: translate, authorize, forward."""
from __future__ import annotations

import math
from time import perf_counter

from aiohttp import web

from actors.codes import INTERNAL_ERROR, INVALID_COMMAND
from actors.rules import CommandError, parse_command
from transport.http.auth import Need, authorize, origin_of
from transport.http.bodies import json_bytes, read_json_object, require_box_id
from transport.http.client_address import client_address
from transport.http.errors import INVALID_LIMIT, RATE_LIMITED, STATUS, ClientError, reply_status
from transport.http.keys import AUDIT_READS, COMMAND_GATE, COMMAND_TALLIES, RATE_LIMITER
from transport.http.rate_limit import command_class
from transport.http.tallies import type_of
from transport.keys import REGISTRY, STORAGE
from transport.request_numbers import AUDIT_MAX_EVENTS, whole_number

AUDIT_DEFAULT_LIMIT = 200
_TRUTHY = {"1", "true", "yes", "on", "y"}

routes = web.RouteTableDef()


@routes.post("/api/cmd")
async def post_command(request: web.Request) -> web.Response:
    started = perf_counter()
    tallies = request.app[COMMAND_TALLIES]
    body = None
    try:
        body = await read_json_object(request)
        box_id = body.get("boxId")
        principal = authorize(request, Need.BOX_COMMAND, box_id if isinstance(box_id, int) else None)
        try:
            command = parse_command(body)
        except CommandError as exc:
            raise ClientError(INVALID_COMMAND, exc.detail) from None
        wait = request.app[RATE_LIMITER].take(command.box_id, client_address(request), command_class(command.type))
        if wait is not None:
            seconds = max(1, math.ceil(wait))
            tallies.record(command.type, STATUS[RATE_LIMITED], None, perf_counter() - started)
            return web.json_response(
                {"detail": f"rate limit exceeded for {command.type} on box {command.box_id}; retry in {seconds} s"},
                status=STATUS[RATE_LIMITED], headers={"Retry-After": str(seconds)})
        with request.app[COMMAND_GATE].serving_command():  # the scoreboards' frames wait for this reply
            reply = await request.app[REGISTRY].execute(command, origin_of(request, principal))
    except Exception as exc:  # refused or failed: counted, then answered as any failure is
        status = exc.status_code if isinstance(exc, web.HTTPException) else STATUS[INTERNAL_ERROR]
        tallies.record(type_of(body), status, None, perf_counter() - started)
        raise
    status = reply_status(reply)
    tallies.record(command.type, status, reply.body, perf_counter() - started)
    return json_bytes(reply.body, status)


@routes.get("/api/state/{box_id}")
async def get_state(request: web.Request) -> web.Response:
    box_id = require_box_id(request.match_info["box_id"])
    authorize(request, Need.VIEW_BOX, box_id)
    return json_bytes(request.app[REGISTRY].snapshot(box_id))


@routes.get("/api/admin/audit/events")
async def get_audit_events(request: web.Request) -> web.Response:
    authorize(request, Need.ADMIN)
    query = request.query
    limit = whole_number(query.get("limit") or str(AUDIT_DEFAULT_LIMIT), 1, AUDIT_MAX_EVENTS)
    if limit is None:
        raise ClientError(INVALID_LIMIT)
    box_text = query.get("boxId")
    box_id = require_box_id(box_text) if box_text else None
    include_payload = (query.get("includePayload") or "").strip().lower() in _TRUTHY
    started = perf_counter()
    events = await request.app[STORAGE].read_audit(limit=limit, box_id=box_id,
                                                    include_payload=include_payload)
    request.app[AUDIT_READS].observe(perf_counter() - started)
    return json_bytes(events)
