"""Admin routes that change accounts while the server runs (`run.py users disable|enable|remove`
calls them through transport/local_admin.py). Each one ends the account's sessions: its tokens are
refused from then on and its open sockets are closed (4401)."""
from __future__ import annotations

from typing import Callable

from aiohttp import web

from actors.accounts.actor import RemoveUser, SetActive
from actors.accounts.records import INVALID_BOX, USER_NOT_FOUND
from actors.messages import Origin
from persistence.storage import StorageError
from transport.http.auth import Need, authorize, origin_of
from transport.http.bodies import read_json_object
from transport.http.errors import STORAGE_UNAVAILABLE, ClientError
from transport.keys import ACCOUNTS

MAX_USERNAME = 256
USERNAME_REQUIRED = "username must be a non-empty string of at most 256 characters"
_STATUS = {USER_NOT_FOUND: 404, INVALID_BOX: 400}  # any other refusal is a conflict (409)

routes = web.RouteTableDef()


@routes.post("/api/admin/users/disable")
async def disable_user(request: web.Request) -> web.Response:
    return await _change(request, lambda name, origin: SetActive(name, False, origin))


@routes.post("/api/admin/users/enable")
async def enable_user(request: web.Request) -> web.Response:
    return await _change(request, lambda name, origin: SetActive(name, True, origin))


@routes.post("/api/admin/users/remove")
async def remove_user(request: web.Request) -> web.Response:
    return await _change(request, RemoveUser)


async def _change(request: web.Request, message: Callable[[str, Origin], object]) -> web.Response:
    principal = authorize(request, Need.ADMIN)
    body = await read_json_object(request)
    username = body.get("username")
    if not isinstance(username, str) or not username.strip() or len(username) > MAX_USERNAME:
        raise ClientError(400, USERNAME_REQUIRED)
    try:
        reply = await request.app[ACCOUNTS].ask(message(username, origin_of(request, principal)))
    except ValueError as exc:
        raise account_refused(exc) from None
    except StorageError:
        raise ClientError(503, STORAGE_UNAVAILABLE) from None
    return web.json_response(reply)


def account_refused(exc: ValueError) -> ClientError:
    """The accounts actor's refusal code as the HTTP answer."""
    code = str(exc)
    return ClientError(_STATUS.get(code, 409), code)
