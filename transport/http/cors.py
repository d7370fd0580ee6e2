"""Which browser origins may use the API: CORS with credentials, and refusing cross-site requests.

The UI is always served from another port than the API, so every response carries CORS headers
for an allowed Origin (transport/http/middleware.py applies them to every response, errors included,
and answers preflights before auth and rate limits). An allowed Origin is echoed exactly (never
`*`: browsers refuse `*` together with credentials); any other origin gets no CORS headers, so its
browser cannot read the answer.

CORS only hides answers; a cross-site form or `fetch(..., {mode: "no-cors"})` still gets its
request executed. So a request whose Origin is neither allowed nor the server's own is refused
when it would change something (any method but GET, HEAD, OPTIONS), and never counts as
authenticated by the login cookie (transport/http/auth.py), which is what a foreign page's WebSocket
would use. No Origin at all (curl, scripts, the CLI) is not a browser's cross-site request.

The spectator routes (`/api/public/...`) are for every phone on the internet, and are also
served by edges that know no venue origins: any other origin may use them too, without
credentials (`Access-Control-Allow-Origin: *` and no Allow-Credentials), and its POST there (a
spectator token) is not refused. Their tokens travel in the URL, never a cookie. An allowed
origin keeps its own credentialed answer there, so a venue page that sends cookies everywhere
still reads them.
"""
from __future__ import annotations

import logging
import re

from aiohttp import hdrs, web

from transport.http.errors import ORIGIN_NOT_ALLOWED, ClientError

log = logging.getLogger("belay.http")

PREFLIGHT_MAX_AGE_S = 600
ALLOWED_METHODS = "GET, POST, OPTIONS"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
PUBLIC_PREFIX = "/api/public/"  # the spectator routes: any origin, no credentials
# Set by the middleware on a request whose Origin is present and not allowed.
FOREIGN_ORIGIN = web.RequestKey("foreign_origin", str)
# Distinct origins remembered: for the policy's answers and for "logged once" (hostile clients
# can send endless different values, so both stop growing here).
MAX_REMEMBERED_ORIGINS = 256
MAX_ORIGIN_SHOWN = 200
_DEFAULT_PORTS = {"http": ":80", "https": ":443"}


class OriginPolicy:
    """ALLOWED_ORIGINS (exact) and ALLOWED_ORIGIN_REGEX, with each answer cached: the UI sends the
    same Origin on every command, thousands of times a second."""

    def __init__(self, origins: str, origin_regex: str) -> None:
        self._exact = {o.strip().rstrip("/") for o in origins.split(",") if o.strip()}
        self._pattern = re.compile(origin_regex, re.IGNORECASE) if origin_regex else None
        self._answers: dict[str, bool] = {}
        self._logged: set[str] = set()

    def allows(self, origin: str) -> bool:
        answer = self._answers.get(origin)
        if answer is None:
            answer = origin in self._exact or bool(self._pattern and self._pattern.fullmatch(origin))
            if len(self._answers) < MAX_REMEMBERED_ORIGINS:
                self._answers[origin] = answer
        return answer

    def refusal(self, request: web.Request, origin: str) -> ClientError:
        """The 403 for a foreign origin; the first refusal of each origin is logged, naming the fix."""
        shown = origin[:MAX_ORIGIN_SHOWN]
        if origin not in self._logged and len(self._logged) < MAX_REMEMBERED_ORIGINS:
            self._logged.add(origin)
            last = " (further refused origins are not logged)" if len(self._logged) == MAX_REMEMBERED_ORIGINS else ""
            log.warning("refused %s %r from origin %r: not an allowed origin; if it is your UI, add it to "
                        "ALLOWED_ORIGINS (--allowed-origins) or match it with ALLOWED_ORIGIN_REGEX "
                        "(--allowed-origin-regex)%s", request.method, request.path[:MAX_ORIGIN_SHOWN], shown, last)
        return ClientError(ORIGIN_NOT_ALLOWED, f"{ORIGIN_NOT_ALLOWED}: {shown}")


def same_origin(origin: str, request: web.Request) -> bool:
    """The Origin names the host and port this request was sent to (a page the server itself
    served). Either scheme: behind a TLS proxy the server sees http for an https page."""
    host = request.headers.get(hdrs.HOST)  # not request.host: without the header it asks DNS, blocking
    scheme, separator, authority = origin.partition("://")
    default_port = _DEFAULT_PORTS.get(scheme.lower())
    if host is None or not separator or default_port is None or not authority:
        return False
    return _without_port(authority.lower(), default_port) == _without_port(host.lower(), default_port)


def _without_port(authority: str, default_port: str) -> str:
    return authority.removesuffix(default_port)


def is_public(request: web.Request) -> bool:
    return request.path.startswith(PUBLIC_PREFIX)


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


def add_cors_headers(response: web.StreamResponse, allowed_origin: str | None, any_origin: bool) -> None:
    """Every response, errors included; a WebSocket's headers are already sent. `any_origin`: a
    spectator route asked from an origin that is not allowed, answered for everyone, without
    credentials."""
    if response.prepared:
        return
    if allowed_origin is not None:
        response.headers[hdrs.ACCESS_CONTROL_ALLOW_ORIGIN] = allowed_origin
        response.headers[hdrs.ACCESS_CONTROL_ALLOW_CREDENTIALS] = "true"
        response.headers[hdrs.ACCESS_CONTROL_EXPOSE_HEADERS] = "Retry-After"
    elif any_origin:
        response.headers[hdrs.ACCESS_CONTROL_ALLOW_ORIGIN] = "*"
        response.headers[hdrs.ACCESS_CONTROL_EXPOSE_HEADERS] = "Retry-After"
    response.headers.add(hdrs.VARY, "Origin")
