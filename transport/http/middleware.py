"""The one layer every request passes through: origins, CORS, JSON errors and login renewal.

A preflight is answered at once. A request from a foreign origin (neither allowed nor the
server's own) is refused if it would change something (except on the spectator routes, open to
every origin), and otherwise marked so that the login cookie does not count for it. Then the
handler runs; any failure becomes JSON `{"detail"}`; a successful answer to an active session
renews its cookie; and whatever leaves carries the CORS headers. One middleware rather than
several because it runs on every request: on the hot path the origin costs one header lookup and
one cached answer.
"""
from __future__ import annotations

from aiohttp import hdrs, web
from aiohttp.typedefs import Handler, Middleware

from transport.http.cors import (
    FOREIGN_ORIGIN,
    SAFE_METHODS,
    OriginPolicy,
    add_cors_headers,
    is_public,
    preflight_response,
    same_origin,
)
from transport.http.errors import error_response
from transport.http.login import renew_login_cookie


def request_middleware(policy: OriginPolicy) -> Middleware:
    @web.middleware
    async def every_request(request: web.Request, handler: Handler) -> web.StreamResponse:
        origin = request.headers.get(hdrs.ORIGIN)
        allowed_origin = origin if origin is not None and policy.allows(origin) else None
        # A spectator route answers any origin, without credentials (cors.py).
        any_origin = origin is not None and allowed_origin is None and is_public(request)
        response: web.StreamResponse | None = preflight_response(request, allowed_origin is not None or any_origin)
        if response is None:
            try:
                if origin is not None and allowed_origin is None and not same_origin(origin, request):
                    if request.method not in SAFE_METHODS and not any_origin:
                        raise policy.refusal(request, origin)
                    request[FOREIGN_ORIGIN] = origin  # transport/http/auth.py: the cookie does not count
                response = await handler(request)
                renew_login_cookie(request, response)
            except Exception as exc:  # HTTPException included; cancellation is not an Exception
                response = error_response(request, exc)
        add_cors_headers(response, allowed_origin, any_origin)
        return response

    return every_request
