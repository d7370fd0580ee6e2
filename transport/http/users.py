"""Admin routes that change accounts while the server runs (`run.py users disable|enable|remove`
calls them through transport/local_admin.py). Each one ends the account's sessions: its tokens are
refused from then on and its open sockets are closed (4401)."""
from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

from actors.accounts.actor import RemoveUser, SetActive
from actors.codes import INVALID_BOX, LAST_ADMIN, STORAGE_UNAVAILABLE, USER_NOT_FOUND, USERNAME_TAKEN
from actors.messages import Origin
from persistence.storage import StorageError
from transport.http.auth import Need, authorize, origin_of
from transport.http.bodies import read_json_object
from transport.http.errors import ACCOUNT_CONFLICT, INVALID_REQUEST, ClientError
from transport.keys import ACCOUNTS

MAX_USERNAME = 256
USERNAME_REQUIRED = f"username must be a non-empty string of at most {MAX_USERNAME} characters"
_REFUSALS = frozenset({INVALID_BOX, LAST_ADMIN, USER_NOT_FOUND, USERNAME_TAKEN})

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
        raise ClientError(INVALID_REQUEST, USERNAME_REQUIRED)
    try:
        reply = await request.app[ACCOUNTS].ask(message(username, origin_of(request, principal)))
    except ValueError as exc:
        raise account_refused(exc) from None
    except StorageError:
        raise ClientError(STORAGE_UNAVAILABLE) from None
    return web.json_response(reply)


def account_refused(exc: ValueError) -> ClientError:
    """The accounts actor's refusal code as the HTTP answer."""
    code = str(exc)
    return ClientError(code if code in _REFUSALS else ACCOUNT_CONFLICT, code)
