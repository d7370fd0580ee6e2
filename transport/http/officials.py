"""Admin HTTP routes: competition officials."""
from __future__ import annotations

from aiohttp import web

from actors.codes import STORAGE_UNAVAILABLE
from actors.officials import OFFICIAL_KEYS, SetOfficials
from persistence.storage import StorageError
from transport.http.auth import Need, authorize
from transport.http.bodies import read_json_object
from transport.http.errors import INVALID_REQUEST, ClientError
from transport.keys import OFFICIALS

routes = web.RouteTableDef()


@routes.get("/api/admin/competition_officials")
async def get_officials(request: web.Request) -> web.Response:
    authorize(request, Need.ADMIN)
    return web.json_response({"status": "ok", **request.app[OFFICIALS].current})


@routes.post("/api/admin/competition_officials")
async def set_officials(request: web.Request) -> web.Response:
    authorize(request, Need.ADMIN)
    body = await read_json_object(request)
    for key in OFFICIAL_KEYS:
        value = body.get(key)
        if value is not None and not isinstance(value, str):
            raise ClientError(INVALID_REQUEST, f"{key} must be a string")
    values = {key: body.get(key) or "" for key in OFFICIAL_KEYS}
    try:
        current = await request.app[OFFICIALS].ask(SetOfficials(values))
    except StorageError:
        raise ClientError(STORAGE_UNAVAILABLE) from None
    return web.json_response({"status": "ok", **current})
