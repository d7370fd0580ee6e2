"""Login, logout, who-am-I, judge passwords; the login cookie and its renewal while in use."""
from __future__ import annotations

import logging
import math

from aiohttp import web

from actors.accounts.actor import ReplaceHash, RevokeSession, SetJudgePassword
from actors.accounts.hashing import RETRY_AFTER_S, HashingBusy
from actors.accounts.passwords import (
    MAX_PASSWORD_LENGTH,
    hash_password,
    password_problem,
    unmatchable_hash,
    verify_password,
)
from actors.accounts.records import EPOCH, find_user, login_identity
from actors.codes import STORAGE_UNAVAILABLE
from persistence.storage import StorageError
from transport.http.auth import COOKIE_NAME, RENEW, Need, authorize, origin_of, session_open, sessions_in
from transport.http.bodies import read_json_object, require_box_id
from transport.http.client_address import client_address
from transport.http.errors import (
    INVALID_CREDENTIALS,
    INVALID_REQUEST,
    MAGIC_LOGIN_DISABLED,
    MAGIC_TOKEN_DISABLED,
    PASSWORD_REQUIRED,
    RATE_LIMITED,
    STATUS,
    WEAK_PASSWORD,
    ClientError,
)
from transport.http.keys import LOGIN_THROTTLE
from transport.http.users import account_refused
from transport.keys import ACCOUNTS, CONFIG, HASHING, TOKENS

log = logging.getLogger("belay.accounts")

MAX_CREDENTIAL = 256

routes = web.RouteTableDef()


@routes.post("/api/auth/login")
async def login(request: web.Request) -> web.Response:
    body = await read_json_object(request)
    username, password = body.get("username"), body.get("password")
    if not isinstance(username, str) or not isinstance(password, str) or \
            len(username) > MAX_CREDENTIAL or len(password) > MAX_PASSWORD_LENGTH:
        raise ClientError(INVALID_CREDENTIALS)
    client = client_address(request)
    found = find_user(request.app[ACCOUNTS].users, username)
    account = login_identity(found, username)
    throttle = request.app[LOGIN_THROTTLE]
    wait = throttle.retry_after(account, client)
    if wait is not None:
        return _too_many(wait, "too many failed logins")

    record = found[1] if found else None
    usable = record is not None and record.get("is_active", True)
    # An unknown name is checked against a hash too, so the reply takes as long either way.
    stored = record["password_hash"] if record is not None and usable else unmatchable_hash()
    hashing = request.app[HASHING]
    try:
        ok, needs_rehash = await hashing.run(client, verify_password, password, stored)
    except HashingBusy:
        return _too_many(RETRY_AFTER_S, "too many logins at once from this address")
    if found is None or not (usable and ok):  # usable implies found
        throttle.failed(account, client)
        raise ClientError(INVALID_CREDENTIALS)
    throttle.succeeded(account, client)
    key, record = found
    if needs_rehash:  # e.g. a users.json brought over from the escalada backend
        try:
            new_hash = await hashing.run(client, hash_password, password)
            await request.app[ACCOUNTS].ask(ReplaceHash(key, stored, new_hash))
        except (HashingBusy, StorageError):  # the old hash keeps working; the upgrade is tried at the next login
            log.warning("could not upgrade the password hash of %s this time", key)

    boxes = [int(b) for b in record.get("assigned_boxes") or []]
    role = record.get("role") or "viewer"
    token = request.app[TOKENS].issue(record.get("username") or key, role, boxes, uid=key, ep=record.get(EPOCH) or "")
    response = web.json_response({"access_token": token, "token_type": "bearer", "role": role, "boxes": boxes})
    set_login_cookie(request.app, response, token)
    return response


@routes.post("/api/auth/logout")
async def logout(request: web.Request) -> web.Response:
    """Ends the request's session(s) for new requests and new sockets; the account's other devices
    stay logged in and open sockets stay open. Answers 200 also without a valid token (the UI calls
    it blindly on every "clear auth")."""
    tokens = request.app[TOKENS]
    response = web.json_response({"status": "logged_out"})
    for claims in sessions_in(request):
        if claims.sid is None:  # never: a login token without a session does not decode
            continue
        try:
            await request.app[ACCOUNTS].ask(RevokeSession(claims.sid, tokens.last_possible_exp(claims)))
        except StorageError:  # refused in memory already; only a restart before the next save would forget it
            response = web.json_response({"detail": STORAGE_UNAVAILABLE}, status=STATUS[STORAGE_UNAVAILABLE])
    config = request.app[CONFIG]
    response.del_cookie(COOKIE_NAME, path="/", secure=config.cookie_secure, samesite=config.cookie_samesite)
    return response


@routes.get("/api/auth/me")
async def me(request: web.Request) -> web.Response:
    return web.json_response(authorize(request, Need.SIGNED_IN).claims.as_json())


@routes.post("/api/auth/magic-login")
async def magic_login(request: web.Request) -> web.Response:
    raise ClientError(MAGIC_LOGIN_DISABLED)


@routes.post("/api/admin/auth/boxes/{box_id}/magic-token")
async def magic_token(request: web.Request) -> web.Response:
    box_id = require_box_id(request.match_info["box_id"])
    authorize(request, Need.ADMIN, box_id)
    raise ClientError(MAGIC_TOKEN_DISABLED)


@routes.post("/api/admin/auth/boxes/{box_id}/password")
async def set_judge_password(request: web.Request) -> web.Response:
    box_id = require_box_id(request.match_info["box_id"])
    principal = authorize(request, Need.ADMIN, box_id)
    body = await read_json_object(request)
    password, username = body.get("password"), body.get("username")
    if not isinstance(password, str) or not password.strip():
        raise ClientError(PASSWORD_REQUIRED)
    if username is not None and (not isinstance(username, str) or len(username) > MAX_CREDENTIAL):
        raise ClientError(INVALID_REQUEST, f"username must be a string of at most {MAX_CREDENTIAL} characters")
    names = (username or "", f"Box {box_id}", str(box_id))
    if (problem := password_problem(password, "judge", names)) is not None:
        raise ClientError(WEAK_PASSWORD, f"{WEAK_PASSWORD}: {problem}")
    try:
        password_hash = await request.app[HASHING].run(client_address(request), hash_password, password)
    except HashingBusy:
        return _too_many(RETRY_AFTER_S, "too many password hashes at once from this address")
    try:
        reply = await request.app[ACCOUNTS].ask(SetJudgePassword(box_id, username or None, password_hash,
                                                                 origin_of(request, principal)))
    except ValueError as exc:
        raise account_refused(exc) from None
    except StorageError:
        raise ClientError(STORAGE_UNAVAILABLE) from None
    return web.json_response(reply)


def set_login_cookie(app: web.Application, response: web.StreamResponse, token: str) -> None:
    """The cookie lives exactly as long as the token."""
    config = app[CONFIG]
    response.set_cookie(COOKIE_NAME, token, max_age=int(config.token_ttl_min * 60), path="/", httponly=True,
                        secure=config.cookie_secure, samesite=config.cookie_samesite)


def _too_many(wait: float, why: str) -> web.Response:
    seconds = max(1, math.ceil(wait))
    return web.json_response({"detail": f"rate limit: {why}, try again in {seconds} s"},
                             status=STATUS[RATE_LIMITED], headers={"Retry-After": str(seconds)})


def renew_login_cookie(request: web.Request, response: web.StreamResponse) -> None:
    """A control panel in use is re-issued a fresh token of the same session, so it is never logged
    out mid-round and never outlives a revocation (checked again: the handler may have awaited one)."""
    claims = request.get(RENEW)
    if claims is not None and not response.prepared and response.status < 400 and session_open(request.app, claims):
        set_login_cookie(request.app, response, request.app[TOKENS].reissue(claims))
