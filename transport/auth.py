"""The one place that decides who may do what (reference-backend §6.6).

Tokens come from the `escalada_token` cookie, an `Authorization: Bearer` header, or (WebSockets and
the spectator routes) the `token` query parameter. Every route names what it needs; `authorize`
answers with the principal or raises a 401/403 ClientError with the reason the UI matches on.
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from aiohttp import hdrs, web

from actors.messages import Origin
from transport.cors import FOREIGN_ORIGIN
from transport.errors import ClientError
from transport.keys import ORIGIN_POLICY, TOKENS
from transport.tokens import Claims, TokenError

COOKIE_NAME = "escalada_token"
MAX_USER_AGENT = 512
RENEW = web.RequestKey("renew_token", Claims)

NOT_AUTHENTICATED = "not_authenticated"
TOKEN_REQUIRED = "token_required"
FORBIDDEN_ROLE = "forbidden_role"
FORBIDDEN_BOX = "forbidden_box"
SPECTATOR_TOKEN_REQUIRED = "spectator_token_required"


class Need(Enum):
    BOX_COMMAND = "box-cmd"  # admin: any box; judge: its boxes
    VIEW_BOX = "view-box"  # admin: any; judge: its boxes; viewer: its boxes, or any if it has none
    ADMIN = "admin"
    SIGNED_IN = "signed-in"  # any valid login token (/api/auth/me)
    SPECTATOR = "spectator"  # a spectator token in ?token=


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
    """Return who is asking, or raise ClientError(401/403). `box_id` None = no box in question."""
    if need is Need.SPECTATOR:
        token = request.query.get("token")
        if not token:
            raise ClientError(401, TOKEN_REQUIRED)
        claims = _decode(request, token)
        if claims.role != "spectator":
            raise ClientError(403, SPECTATOR_TOKEN_REQUIRED)
        return Principal(claims)

    token, from_cookie = _login_token(request)
    if token is None:
        raise ClientError(401, NOT_AUTHENTICATED)
    foreign = request.get(FOREIGN_ORIGIN)
    if from_cookie and foreign is not None:  # e.g. a foreign page's WebSocket (transport/cors.py)
        raise request.app[ORIGIN_POLICY].refusal(request, foreign)
    claims = _decode(request, token)
    principal = Principal(claims)
    _check(principal, need, box_id)
    if from_cookie and request.app[TOKENS].should_renew(claims):
        request[RENEW] = claims  # the renew middleware re-issues the cookie on the response
    return principal


def _check(principal: Principal, need: Need, box_id: int | None) -> None:
    role = principal.role
    if role == "admin" or need is Need.SIGNED_IN:
        if role == "spectator" and need is Need.SIGNED_IN:
            raise ClientError(403, FORBIDDEN_ROLE)
        return
    if need is Need.ADMIN:
        raise ClientError(403, FORBIDDEN_ROLE)
    if need is Need.BOX_COMMAND:
        if role != "judge":
            raise ClientError(403, FORBIDDEN_ROLE)
        if box_id is None or box_id not in principal.boxes:
            raise ClientError(403, FORBIDDEN_BOX)
        return
    if need is Need.VIEW_BOX:
        if role == "judge" and box_id in principal.boxes:
            return
        if role == "viewer" and (not principal.boxes or box_id in principal.boxes):
            return
        raise ClientError(403, FORBIDDEN_BOX if role in ("judge", "viewer") else FORBIDDEN_ROLE)
    raise ClientError(403, FORBIDDEN_ROLE)


def may_view(principal: Principal, box_id: int) -> bool:
    try:
        _check(principal, Need.VIEW_BOX, box_id)
    except ClientError:
        return False
    return True


def _login_token(request: web.Request) -> tuple[str | None, bool]:
    header = request.headers.get(hdrs.AUTHORIZATION, "")
    if header[:7].lower() == "bearer " and header[7:].strip():
        return header[7:].strip(), False
    if request.headers.get(hdrs.UPGRADE, "").lower() == "websocket" and request.query.get("token"):
        return request.query["token"], False
    cookie = request.cookies.get(COOKIE_NAME)
    return (cookie, True) if cookie else (None, False)


def _decode(request: web.Request, token: str) -> Claims:
    try:
        return request.app[TOKENS].decode(token)
    except TokenError as exc:
        raise ClientError(401, exc.reason) from None


def origin_of(request: web.Request, principal: Principal | None) -> Origin:
    return Origin(
        username=principal.username if principal else None,
        role=principal.role if principal else None,
        ip=request.remote,
        user_agent=(request.headers.get("User-Agent") or "")[:MAX_USER_AGENT] or None,
    )
