"""CORS with credentials: the UI is always served from another port than the API.

Applied by transport/middleware.py to every response, errors included; preflights are answered
there, before auth and rate limits. An allowed Origin is echoed exactly (never `*`: browsers
refuse `*` together with credentials); any other origin gets no CORS headers, so its browser
blocks it.
"""
from __future__ import annotations

import re

from aiohttp import hdrs, web

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


def preflight_response(request: web.Request, allowed: bool) -> web.Response | None:
    """The answer to a CORS preflight (before auth and rate limits), or None for any other request."""
    if request.method != "OPTIONS" or hdrs.ACCESS_CONTROL_REQUEST_METHOD not in request.headers:
        return None
    response = web.Response(status=204)
    if allowed:
        response.headers[hdrs.ACCESS_CONTROL_ALLOW_METHODS] = ALLOWED_METHODS
        requested = request.headers.get(hdrs.ACCESS_CONTROL_REQUEST_HEADERS)
        if requested:
            response.headers[hdrs.ACCESS_CONTROL_ALLOW_HEADERS] = requested
        response.headers[hdrs.ACCESS_CONTROL_MAX_AGE] = str(PREFLIGHT_MAX_AGE_S)
    return response


def add_cors_headers(response: web.StreamResponse, allowed_origin: str | None) -> None:
    """Every response, errors included; a WebSocket's headers are already sent."""
    if response.prepared:
        return
    if allowed_origin is not None:
        response.headers[hdrs.ACCESS_CONTROL_ALLOW_ORIGIN] = allowed_origin
        response.headers[hdrs.ACCESS_CONTROL_ALLOW_CREDENTIALS] = "true"
        response.headers[hdrs.ACCESS_CONTROL_EXPOSE_HEADERS] = "Retry-After"
    response.headers.add(hdrs.VARY, "Origin")
