"""CORS with credentials: the UI is always served from another port than the API.

Runs outermost, so every response gets the headers, errors included. Preflights are answered
here, before auth and rate limits. An allowed Origin is echoed exactly (never `*`: browsers refuse
`*` together with credentials); any other origin gets no CORS headers, so its browser blocks it.
"""
from __future__ import annotations

import re
from typing import Awaitable, Callable

from aiohttp import hdrs, web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

PREFLIGHT_MAX_AGE_S = 600
ALLOWED_METHODS = "GET, POST, OPTIONS"


class OriginPolicy:
    def __init__(self, origins: str, origin_regex: str) -> None:
        self._exact = {o.strip().rstrip("/") for o in origins.split(",") if o.strip()}
        self._pattern = re.compile(origin_regex, re.IGNORECASE) if origin_regex else None

    def allows(self, origin: str) -> bool:
        if origin in self._exact:
            return True
        return bool(self._pattern and self._pattern.fullmatch(origin))


def cors_middleware(policy: OriginPolicy) -> Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]:
    @web.middleware
    async def cors(request: web.Request, handler: Handler) -> web.StreamResponse:
        origin = request.headers.get(hdrs.ORIGIN)
        allowed = origin is not None and policy.allows(origin)
        if request.method == "OPTIONS" and hdrs.ACCESS_CONTROL_REQUEST_METHOD in request.headers:
            response: web.StreamResponse = web.Response(status=204)
            if allowed:
                response.headers[hdrs.ACCESS_CONTROL_ALLOW_METHODS] = ALLOWED_METHODS
                requested = request.headers.get(hdrs.ACCESS_CONTROL_REQUEST_HEADERS)
                if requested:
                    response.headers[hdrs.ACCESS_CONTROL_ALLOW_HEADERS] = requested
                response.headers[hdrs.ACCESS_CONTROL_MAX_AGE] = str(PREFLIGHT_MAX_AGE_S)
        else:
            response = await handler(request)
        if allowed and not response.prepared:  # a WebSocket's headers are already sent
            response.headers[hdrs.ACCESS_CONTROL_ALLOW_ORIGIN] = origin  # type: ignore[assignment]
            response.headers[hdrs.ACCESS_CONTROL_ALLOW_CREDENTIALS] = "true"
            response.headers[hdrs.ACCESS_CONTROL_EXPOSE_HEADERS] = "Retry-After"
        if not response.prepared:
            response.headers.add(hdrs.VARY, "Origin")
        return response

    return cors
