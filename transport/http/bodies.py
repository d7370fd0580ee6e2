"""What every route reads and answers: a JSON object body, a box id from the path, JSON bytes."""
from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from actors.rules.limits import parse_box_id
from transport.http.errors import BODY_NOT_OBJECT, INVALID_BOX_ID, JSON_REQUIRED, MALFORMED_JSON, ClientError


async def read_json_object(request: web.Request) -> dict[str, Any]:
    """The body as a JSON object; bodies over the app's client_max_size answer 413.

    Only as `Content-Type: application/json` (any charset parameter): a browser lets a page on any
    site send text/plain or a form without asking first (CORS preflight), never JSON. The body is
    read first, so an oversized one still gets its 413."""
    raw = await request.read()
    if request.content_type != "application/json":
        raise ClientError(JSON_REQUIRED)
    return json_object(raw)


def json_object(raw: bytes) -> dict[str, Any]:
    """Bytes that must hold a JSON object: 400 with the reason otherwise."""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise ClientError(MALFORMED_JSON) from None
    if not isinstance(body, dict):
        raise ClientError(BODY_NOT_OBJECT)
    return body


def require_box_id(text: str) -> int:
    """A box id from a path or a query (leading zeros allowed, as clients have always sent them)."""
    box_id = parse_box_id(text, leading_zeros=True)
    if box_id is None:
        raise ClientError(INVALID_BOX_ID)
    return box_id


def json_bytes(value: Any, status: int = 200) -> web.Response:
    """JSON encoded once, straight to bytes (the hot routes answer thousands of times a second)."""
    return web.Response(body=orjson.dumps(value), status=status, content_type="application/json")
