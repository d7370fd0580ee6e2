"""Every error a client can see, the one table of their HTTP statuses, and how any failure of a
handler becomes JSON `{"detail"}`.

A code is the `detail` a client reads, unless the refusal carries its own words (a field that is
wrong says which): then the code only chooses the status. Actors answer with the codes of
actors/codes.py; transport's own refusals use the codes below. STATUS is the only place a status
is chosen for either.
"""
from __future__ import annotations

import logging
from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from actors import codes
from actors.messages import Reply
from actors.registry import BoxUnavailable
from actors.rules.limits import MAX_BOX_ID
from transport.http.client_address import client_address
from transport.request_numbers import AUDIT_MAX_EVENTS

log = logging.getLogger("belay.http")

# -- transport's own refusals ----------------------------------------------------------------------
INVALID_REQUEST: Final = "invalid_request"  # bad input; the detail says which field and why
MALFORMED_JSON: Final = "malformed JSON body"
BODY_NOT_OBJECT: Final = "the JSON body must be an object"
BODY_TOO_LARGE: Final = "request body too large"
JSON_REQUIRED: Final = "the body must be JSON sent as Content-Type: application/json"
INVALID_BOX_ID: Final = f"boxId must be an integer from 0 to {MAX_BOX_ID}"
INVALID_LIMIT: Final = f"limit must be an integer from 1 to {AUDIT_MAX_EVENTS}"
NOT_FOUND: Final = "not found"
METHOD_NOT_ALLOWED: Final = "method not allowed"
CONNECTION_LOST: Final = "connection lost before the request was read"
ORIGIN_NOT_ALLOWED: Final = "origin not allowed"  # the detail names the origin after a colon
# Who may: the UI matches invalid_credentials, token_expired and invalid_token word for word, and
# logs out on any 401.
NOT_AUTHENTICATED: Final = "not_authenticated"
TOKEN_REQUIRED: Final = "token_required"
TOKEN_REVOKED: Final = "token_revoked"  # logged out, or the account changed since the login
INVALID_CREDENTIALS: Final = "invalid_credentials"
FORBIDDEN_ROLE: Final = "forbidden_role"
FORBIDDEN_BOX: Final = "forbidden_box"
SPECTATOR_TOKEN_REQUIRED: Final = "spectator_token_required"
RATE_LIMITED: Final = "rate_limited"  # every detail says "rate limit": the UI looks for those words
PASSWORD_REQUIRED: Final = "password_required"
WEAK_PASSWORD: Final = "weak password"  # the detail goes on with the reason after a colon
MAGIC_LOGIN_DISABLED: Final = "magic_login_disabled"
MAGIC_TOKEN_DISABLED: Final = "magic_token_disabled"
ACCOUNT_CONFLICT: Final = "account_conflict"  # any other refusal of the accounts actor; the detail is its code
# Start lists and results (the UI and the reference match the first ones verbatim).
INVALID_ROUTES_COUNT: Final = "invalid_routes_count"
INVALID_HOLDS_COUNTS: Final = "invalid_holds_counts"
INVALID_CATEGORIE: Final = "invalid_categorie"
MISSING_SCORES: Final = "missing_scores"
BOX_NOT_FOUND: Final = "box_not_found"
RANKING_NOT_FOUND: Final = "ranking_not_found"  # the detail is the reference's Romanian sentence
# Backups, restores, history.
BACKUP_NOT_FOUND: Final = "backup_not_found"
BACKUP_FAILED: Final = "backup_failed"  # the detail goes on with the reason after a colon
RESTORE_CONFLICT: Final = "restore_conflict"
VERSION_NOT_FOUND: Final = "version_not_found"  # the detail names the box and the version
VERSION_UNREBUILDABLE: Final = "version_unrebuildable"  # the detail says why
# An edge (run.py edge) serves the spectators only.
NOT_ON_EDGE: Final = "this is an edge; commands go to the core"

STATUS: Final[Mapping[str, int]] = MappingProxyType({
    # what actors answer with
    codes.INVALID_COMMAND: 400,
    codes.RESTORE_REFUSED: 400,
    codes.RESTORE_ABORTED: 409,
    codes.STORAGE_UNAVAILABLE: 503,
    codes.BOX_UNAVAILABLE: 503,  # never 401/403: the UI would log out
    codes.SHUTTING_DOWN: 503,
    codes.INTERNAL_ERROR: 500,
    codes.INVALID_BOX: 400,
    codes.USERNAME_TAKEN: 409,
    codes.USER_NOT_FOUND: 404,
    codes.LAST_ADMIN: 409,
    codes.TOKEN_EXPIRED: 401,
    codes.INVALID_TOKEN: 401,
    codes.EXPORT_TIMEOUT: 503,
    codes.EXPORT_FAILED: 503,
    codes.RANKING_UNREADABLE: 503,
    codes.INVALID_START_LIST: 400,
    # transport's own
    INVALID_REQUEST: 400,
    MALFORMED_JSON: 400,
    BODY_NOT_OBJECT: 400,
    BODY_TOO_LARGE: 413,
    JSON_REQUIRED: 415,
    INVALID_BOX_ID: 400,
    INVALID_LIMIT: 400,
    NOT_FOUND: 404,
    METHOD_NOT_ALLOWED: 405,
    CONNECTION_LOST: 400,
    ORIGIN_NOT_ALLOWED: 403,
    NOT_AUTHENTICATED: 401,
    TOKEN_REQUIRED: 401,
    TOKEN_REVOKED: 401,
    INVALID_CREDENTIALS: 401,
    FORBIDDEN_ROLE: 403,
    FORBIDDEN_BOX: 403,
    SPECTATOR_TOKEN_REQUIRED: 403,
    RATE_LIMITED: 429,
    PASSWORD_REQUIRED: 422,
    WEAK_PASSWORD: 422,
    MAGIC_LOGIN_DISABLED: 410,
    MAGIC_TOKEN_DISABLED: 410,
    ACCOUNT_CONFLICT: 409,
    INVALID_ROUTES_COUNT: 422,
    INVALID_HOLDS_COUNTS: 422,
    INVALID_CATEGORIE: 400,
    MISSING_SCORES: 400,
    BOX_NOT_FOUND: 404,
    RANKING_NOT_FOUND: 404,
    BACKUP_NOT_FOUND: 404,
    BACKUP_FAILED: 503,
    RESTORE_CONFLICT: 409,
    VERSION_NOT_FOUND: 404,
    VERSION_UNREBUILDABLE: 409,
    NOT_ON_EDGE: 421,  # Misdirected Request: the right server exists, this is not it
})


def reply_status(reply: Reply) -> int:
    """The status of a box's answer: 200 unless it carries a code."""
    return 200 if reply.code is None else STATUS[reply.code]


def json_error(status: int, detail: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"detail": detail}, status=status, headers=headers)


class ClientError(web.HTTPException):
    """Raise anywhere in a handler to answer `code`'s status with `{"detail": detail}` (the code
    itself unless given)."""

    def __init__(self, code: str, detail: str | None = None) -> None:
        self.status_code = STATUS[code]
        self.code = code
        self.detail = code if detail is None else detail
        super().__init__(text=self.detail)


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
    if isinstance(exc, BoxUnavailable):
        return json_error(STATUS[codes.BOX_UNAVAILABLE], codes.BOX_UNAVAILABLE)
    if isinstance(exc, web.HTTPException):
        if exc.status_code < 400:
            raise exc
        detail = _DEFAULT_DETAILS.get(exc.status_code) or exc.reason or "error"
        return json_error(exc.status_code, detail, headers={
            k: v for k, v in exc.headers.items() if k.lower() in ("allow", "retry-after", "www-authenticate")
        })
    if isinstance(exc, ConnectionError) and (request.transport is None or request.transport.is_closing()):
        # A tablet that lost the network mid-request: not a bug, and nobody is left to answer.
        log.info("client %s went away during %s %s", client_address(request), request.method, request.path)
        drop_tracebacks(exc)  # aiohttp keeps this error on the request's body stream
        return json_error(STATUS[CONNECTION_LOST], CONNECTION_LOST)
    # A bug, not bad input: log it once, never show the traceback to the client.
    log.error("unhandled error on %s %s", request.method, request.path, exc_info=exc)
    return json_error(STATUS[codes.INTERNAL_ERROR], codes.INTERNAL_ERROR)


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
