"""The one place that decides who may do what (reference-backend §6.6).

Tokens come from the `escalada_token` cookie, an `Authorization: Bearer` header, or (WebSockets and
the spectator routes) the `token` query parameter. Every route names what it needs; `authorize`
answers with the principal or raises a 401/403 ClientError with the reason the UI matches on.

A login token also has to match its account as it is now (it exists, is active, has the same
role, boxes and token epoch) and its session must not be logged out. Both are dict lookups on
mappings the accounts actor replaces on each change, so every request pays next to nothing.
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from aiohttp import hdrs, web

from actors.accounts.tokens import Claims, TokenError, TokenService
from actors.codes import INVALID_TOKEN
from actors.messages import Origin
from transport.http.client_address import client_address
from transport.http.cors import FOREIGN_ORIGIN
from transport.http.errors import (
    FORBIDDEN_BOX,
    FORBIDDEN_ROLE,
    NOT_AUTHENTICATED,
    SPECTATOR_TOKEN_REQUIRED,
    TOKEN_REQUIRED,
    TOKEN_REVOKED,
    ClientError,
)
from transport.http.keys import ORIGIN_POLICY
from transport.keys import ACCOUNTS, LOCAL_ADMIN, SPECTATOR_TOKENS, TOKENS

COOKIE_NAME = "escalada_token"
MAX_USER_AGENT = 512
RENEW = web.RequestKey("renew_token", Claims)


class Need(Enum):
    BOX_COMMAND = "box-cmd"  # admin: any box; judge: its boxes
    VIEW_BOX = "view-box"  # admin: any; judge: its boxes; viewer: its boxes, or any if it has none
    ADMIN = "admin"
    SIGNED_IN = "signed-in"  # any valid login token (/api/auth/me)
    SPECTATOR = "spectator"  # a spectator token in ?token=, signed with the spectators' own key


@dataclass(frozen=True, slots=True)
class Principal:
    claims: Claims

    @property
    def username(self) -> str:
        return self.claims.sub

    @property
    def role(self) -> str:
        return self.claims.role

    @property
    def boxes(self) -> tuple[int, ...]:
        return self.claims.boxes


def authorize(request: web.Request, need: Need, box_id: int | None = None) -> Principal:
    """Return who is asking, or raise the ClientError that says why not (a 401 or a 403).
    `box_id` None = no box in question."""
    if need is Need.SPECTATOR:
        token = request.query.get("token")
        if not token:
            raise ClientError(TOKEN_REQUIRED)
        claims = _decode(token, request.app[SPECTATOR_TOKENS], request.app.get(TOKENS), SPECTATOR_TOKEN_REQUIRED)
        if claims.role != "spectator":
            raise ClientError(SPECTATOR_TOKEN_REQUIRED)
        return Principal(claims)

    token, from_cookie = _login_token(request)
    if token is None:
        raise ClientError(NOT_AUTHENTICATED)
    foreign = request.get(FOREIGN_ORIGIN)
    if from_cookie and foreign is not None:  # e.g. a foreign page's WebSocket (transport/http/cors.py)
        raise request.app[ORIGIN_POLICY].refusal(request, foreign)
    claims = _decode(token, request.app[TOKENS], request.app.get(SPECTATOR_TOKENS), FORBIDDEN_ROLE)
    if claims.role != "spectator" and not session_open(request.app, claims):
        raise ClientError(TOKEN_REVOKED)
    principal = Principal(claims)
    _check(principal, need, box_id)
    if from_cookie and request.app[TOKENS].should_renew(claims):
        request[RENEW] = claims  # the renew middleware re-issues the cookie on the response
    return principal


def session_open(app: web.Application, claims: Claims) -> bool:
    """A login token that may be used now: its account still matches and its session is not logged out."""
    return session_stands(app, claims) and claims.sid not in app[ACCOUNTS].revoked


def session_stands(app: web.Application, claims: Claims) -> bool:
    """The token still matches its account (exists, active, same role, boxes and epoch), or it is
    this process's local-admin token. Logouts are not looked at: an open socket survives its own
    session's logout, but not a change of its account."""
    if claims.uid is None:
        return claims.sid == app[LOCAL_ADMIN].sid
    return app[ACCOUNTS].sessions.get(claims.uid) == (claims.role, claims.boxes, claims.ep)


def sessions_in(request: web.Request) -> list[Claims]:
    """The login sessions a logout ends: each correctly signed login token the request carries
    (header and cookie), expired or not (a renewed token of the same session may still live)."""
    found = []
    for token in dict.fromkeys(t for t in (_bearer(request), request.cookies.get(COOKIE_NAME)) if t):
        try:
            claims = request.app[TOKENS].decode(token, allow_expired=True)
        except TokenError:
            continue
        if claims.role != "spectator" and claims.uid is not None:
            found.append(claims)
    return found


def _check(principal: Principal, need: Need, box_id: int | None) -> None:
    role = principal.role
    if role == "admin" or need is Need.SIGNED_IN:
        if role == "spectator" and need is Need.SIGNED_IN:
            raise ClientError(FORBIDDEN_ROLE)
        return
    if need is Need.ADMIN:
        raise ClientError(FORBIDDEN_ROLE)
    if need is Need.BOX_COMMAND:
        if role != "judge":
            raise ClientError(FORBIDDEN_ROLE)
        if box_id is None or box_id not in principal.boxes:
            raise ClientError(FORBIDDEN_BOX)
        return
    if need is Need.VIEW_BOX:
        if role == "judge" and box_id in principal.boxes:
            return
        if role == "viewer" and (not principal.boxes or box_id in principal.boxes):
            return
        raise ClientError(FORBIDDEN_BOX if role in ("judge", "viewer") else FORBIDDEN_ROLE)
    raise ClientError(FORBIDDEN_ROLE)


def may_view(principal: Principal, box_id: int) -> bool:
    try:
        _check(principal, Need.VIEW_BOX, box_id)
    except ClientError:
        return False
    return True


def _login_token(request: web.Request) -> tuple[str | None, bool]:
    bearer = _bearer(request)
    if bearer:
        return bearer, False
    if request.headers.get(hdrs.UPGRADE, "").lower() == "websocket" and request.query.get("token"):
        return request.query["token"], False
    cookie = request.cookies.get(COOKIE_NAME)
    return (cookie, True) if cookie else (None, False)


def _bearer(request: web.Request) -> str | None:
    header = request.headers.get(hdrs.AUTHORIZATION, "")
    return (header[7:].strip() or None) if header[:7].lower() == "bearer " else None


def _decode(token: str, tokens: TokenService, other: TokenService | None, other_kind: str) -> Claims:
    """Login and spectator tokens have different keys. A token of the other kind (checked only once
    this key refused it) is refused as the UI expects: 403 `other_kind`, not an invalid token."""
    try:
        return tokens.decode(token)
    except TokenError as exc:
        if exc.reason == INVALID_TOKEN and other is not None and _valid(other, token):
            raise ClientError(other_kind) from None
        raise ClientError(exc.reason) from None


def _valid(tokens: TokenService, token: str) -> bool:
    try:
        tokens.decode(token)
    except TokenError:
        return False
    return True


def origin_of(request: web.Request, principal: Principal | None) -> Origin:
    return Origin(
        username=principal.username if principal else None,
        role=principal.role if principal else None,
        ip=client_address(request),
        user_agent=(request.headers.get("User-Agent") or "")[:MAX_USER_AGENT] or None,
    )
