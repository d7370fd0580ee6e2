"""Every error a client can see, and how any failure of a handler becomes JSON `{"detail"}`."""
from __future__ import annotations

import logging

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from actors.box_actor import BOX_UNAVAILABLE
from actors.registry import BoxUnavailable
from actors.rules.limits import MAX_BOX_ID

log = logging.getLogger("belay.http")

MALFORMED_JSON = "malformed JSON body"
BODY_NOT_OBJECT = "the JSON body must be an object"
BODY_TOO_LARGE = "request body too large"
INVALID_BOX_ID = f"boxId must be an integer from 0 to {MAX_BOX_ID}"
INVALID_LIMIT = "limit must be an integer from 1 to 2000"
NOT_FOUND = "not found"
METHOD_NOT_ALLOWED = "method not allowed"
INTERNAL_ERROR = "internal_error"
CONNECTION_LOST = "connection lost before the request was read"
STORAGE_UNAVAILABLE = "storage_unavailable"
ORIGIN_NOT_ALLOWED = "origin not allowed"
JSON_REQUIRED = "the body must be JSON sent as Content-Type: application/json"


def json_error(status: int, detail: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"detail": detail}, status=status, headers=headers)


class ClientError(web.HTTPException):
    """Raise anywhere in a handler to answer `status` with `{"detail": detail}`."""

    def __init__(self, status: int, detail: str) -> None:
        self.status_code = status
        super().__init__(text=detail)
        self.detail = detail


_DEFAULT_DETAILS = {404: NOT_FOUND, 405: METHOD_NOT_ALLOWED, 413: BODY_TOO_LARGE}

class _QuietClientErrors(logging.Filter):
    """A malformed HTTP request (bad bytes in the request line, a broken header) is the client's
    fault: one warning line, not an ERROR with a traceback that anyone on the LAN could repeat."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, HttpProcessingError) and 400 <= (exc.code or 0) < 500:
            record.levelno, record.levelname = logging.WARNING, "WARNING"
            # Render now: the client's bytes may hold "%" and must never be read as a format.
            record.msg = f"{record.getMessage()}: {exc.message or type(exc).__name__}"
            record.args = ()
            record.exc_info = None
            record.exc_text = None
        return True


def protocol_logger() -> logging.Logger:
    """The logger handed to aiohttp's protocol handler (Application handler_args)."""
    logger = logging.getLogger("belay.http.protocol")
    if not any(isinstance(f, _QuietClientErrors) for f in logger.filters):
        logger.addFilter(_QuietClientErrors())
    return logger


def error_response(request: web.Request, exc: Exception) -> web.Response:
    """The JSON answer for a failed handler; an HTTPException below 400 (a redirect) is re-raised."""
    if isinstance(exc, ClientError):
        return json_error(exc.status_code, exc.detail)
    if isinstance(exc, BoxUnavailable):  # never 401/403: the UI would log out
        return json_error(503, BOX_UNAVAILABLE)
    if isinstance(exc, web.HTTPException):
        if exc.status_code < 400:
            raise exc
        detail = _DEFAULT_DETAILS.get(exc.status_code) or exc.reason or "error"
        return json_error(exc.status_code, detail, headers={
            k: v for k, v in exc.headers.items() if k.lower() in ("allow", "retry-after", "www-authenticate")
        })
    if isinstance(exc, ConnectionError) and (request.transport is None or request.transport.is_closing()):
        # A tablet that lost the network mid-request: not a bug, and nobody is left to answer.
        log.info("client %s went away during %s %s", request.remote, request.method, request.path)
        drop_tracebacks(exc)  # aiohttp keeps this error on the request's body stream
        return json_error(400, CONNECTION_LOST)
    # A bug, not bad input: log it once, never show the traceback to the client.
    log.error("unhandled error on %s %s", request.method, request.path, exc_info=exc)
    return json_error(500, INTERNAL_ERROR)


def drop_tracebacks(error: BaseException | None) -> None:
    """An error that aiohttp keeps (on a dead socket, on a cut-off body) has a traceback whose frames
    hold the very object that keeps it: a reference cycle. A connection lives long enough for the
    collector to freeze it (transport/collector.py), so only a full collection, hours later, would
    free it. Without the tracebacks it is freed as soon as the connection ends."""
    for _ in range(8):  # chains are short; the bound is for a chain that loops
        if error is None:
            return
        error.__traceback__ = None
        error = error.__cause__ or error.__context__
