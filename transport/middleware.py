"""The one layer every request passes through: CORS, JSON errors and login renewal.

A preflight is answered at once. Otherwise the handler runs; any failure becomes JSON
`{"detail"}`; a successful answer to an active session renews its cookie; and whatever leaves
carries the CORS headers. One middleware rather than three because it runs on every request.
"""
from __future__ import annotations

from typing import Awaitable, Callable

from aiohttp import hdrs, web

from transport.auth_routes import renew_login_cookie
from transport.cors import OriginPolicy, add_cors_headers, preflight_response
from transport.errors import error_response

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Middleware = Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]


def request_middleware(policy: OriginPolicy) -> Middleware:
    @web.middleware
    async def every_request(request: web.Request, handler: Handler) -> web.StreamResponse:
        origin = request.headers.get(hdrs.ORIGIN)
        allowed_origin = origin if origin is not None and policy.allows(origin) else None
        response: web.StreamResponse | None = preflight_response(request, allowed_origin is not None)
        if response is None:
            try:
                response = await handler(request)
                renew_login_cookie(request, response)
            except Exception as exc:  # HTTPException included; cancellation is not an Exception
                response = error_response(request, exc)
        add_cors_headers(response, allowed_origin)
        return response

    return every_request
