"""Signed session tokens (JWT, HS256) and the server secret that signs them.

Claims are those of the escalada reference (`sub`, `role`, `boxes`, `exp`) plus `iat`, which lets
an active session be renewed before it runs out instead of logging a judge out mid-round, and, on
login tokens, what lets a session be revoked: `sid` (one per login, kept by every renewal), `uid`
(the account's key in users.json) and `ep` (the account's token epoch, replaced by every change
that must end its sessions). Whether a session still stands is decided in transport/http/auth.py.
"""
from __future__ import annotations

import os
import secrets
import stat
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeGuard

from actors.codes import INVALID_TOKEN, TOKEN_EXPIRED
from actors.rules.limits import is_box_id
from persistence.fs import FileSystem, write_atomic

ALGORITHM = "HS256"
ROLES = frozenset({"admin", "judge", "viewer", "spectator"})
SPECTATOR_TTL_S = 24 * 3600
SECRET_FILE = "jwt_secret"
SPECTATOR_SECRET_FILE = "spectator_jwt_secret"
SESSION_ID_BYTES = 16
RENEWAL_MARGIN_S = 60
MAX_CLAIM_TEXT = 256  # sid, uid and ep: a signed token is trusted for its origin, not its size
MIN_SECRET_LENGTH = 32
_KNOWN_DEFAULT_SECRETS = frozenset({"dev-secret-change-me", "secret", "changeme", "change-me"})

class TokenError(Exception):
    """`reason` is TOKEN_EXPIRED or INVALID_TOKEN, sent verbatim as the detail; the UI matches on these words."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Claims:
    sub: str
    role: str
    boxes: tuple[int, ...]
    exp: int
    iat: int
    sid: str | None = None  # the login session; None only on spectator tokens
    uid: str | None = None  # the account's key; None on spectator and local-admin tokens
    ep: str | None = None  # the account's token epoch when the session began

    def as_json(self) -> dict[str, Any]:
        claims: dict[str, Any] = {"sub": self.sub, "role": self.role, "boxes": list(self.boxes), "exp": self.exp,
                                  "iat": self.iat}
        for key in ("sid", "uid", "ep"):
            if getattr(self, key) is not None:
                claims[key] = getattr(self, key)
        return claims


VERIFIED_CACHE_SIZE = 4096


class TokenService:
    """Issues and checks tokens against an injectable clock, so tests can move time."""

    def __init__(self, secret: str, ttl_s: int, clock: Callable[[], float] = time.time) -> None:
        if not secret:
            raise ValueError("an empty secret would make every token forgeable")
        if ttl_s <= 0:
            raise ValueError("ttl_s must be positive")
        self._secret = secret
        self.ttl_s = ttl_s
        self._clock = clock
        # Every request of a tablet carries the same token: verify its signature once, not each time.
        self._verified: dict[str, Claims] = {}

    def issue(self, sub: str, role: str, boxes: list[int] | tuple[int, ...], *, uid: str | None = None,
              ep: str | None = None, sid: str | None = None, ttl_s: int | None = None) -> str:
        """A login token; without `sid`, a new session begins."""
        if role == "spectator":
            raise ValueError("spectator tokens come from issue_spectator")
        session = sid if sid is not None else secrets.token_urlsafe(SESSION_ID_BYTES)
        return self._issue(sub, role, boxes, self.ttl_s if ttl_s is None else ttl_s,
                           {"sid": session, "uid": uid, "ep": ep})

    def reissue(self, claims: Claims) -> str:
        """The same session with a fresh lifetime (renewal): same sid, account and epoch, so revoking
        the session or the account also ends every token renewed from it."""
        return self.issue(claims.sub, claims.role, claims.boxes, uid=claims.uid, ep=claims.ep, sid=claims.sid)

    def issue_spectator(self) -> tuple[str, int]:
        """(token, expires_in): the free public token of `POST /api/public/token`."""
        return self._issue("spectator", "spectator", (), SPECTATOR_TTL_S, {}), SPECTATOR_TTL_S

    def decode(self, token: str, *, allow_expired: bool = False) -> Claims:
        """The verified claims; `allow_expired` only for logout, which may revoke an expired token's
        session (a renewed token of the same session may still be alive)."""
        claims = self._verified.get(token)
        if claims is None:
            claims = self._verify(token)
            if len(self._verified) >= VERIFIED_CACHE_SIZE:
                self._verified.clear()
            self._verified[token] = claims
        if not allow_expired and self._clock() >= claims.exp:
            raise TokenError(TOKEN_EXPIRED)
        return claims

    def _verify(self, token: str) -> Claims:
        import jwt  # lazily: PyJWT loads `cryptography` when installed, ~50 ms off every start-up

        try:
            payload = jwt.decode(
                token,
                self._secret,
                algorithms=[ALGORITHM],  # a pinned list is what rejects "none" and RS/HS confusion
                # PyJWT would compare exp and iat with the wall clock; ours is checked below.
                options={"verify_exp": False, "verify_iat": False, "verify_nbf": False},
            )
        except jwt.InvalidTokenError as exc:
            raise TokenError(INVALID_TOKEN) from exc
        except ValueError as exc:  # PyJWT lets UnicodeEncodeError (a lone surrogate) through
            raise TokenError(INVALID_TOKEN) from exc
        return _claims_from(payload)

    def last_possible_exp(self, claims: Claims) -> int:
        """No token of this session can be valid after this epoch second, renewals included: any
        renewal issued so far ends within one lifetime from now (plus a minute for one in flight)."""
        return max(claims.exp, int(self._clock()) + self.ttl_s + RENEWAL_MARGIN_S)

    def should_renew(self, claims: Claims) -> bool:
        """True once less than half of the token's lifetime is left. Spectator tokens are free to
        fetch again, so they are never renewed."""
        if claims.role == "spectator":
            return False
        return claims.exp - self._clock() < (claims.exp - claims.iat) / 2

    def _issue(self, sub: str, role: str, boxes: list[int] | tuple[int, ...], ttl_s: int,
               session: dict[str, str | None]) -> str:
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}")
        iat = int(self._clock())
        payload: dict[str, Any] = {"sub": sub, "role": role, "boxes": [int(b) for b in boxes], "iat": iat,
                                   "exp": iat + ttl_s}
        payload.update((key, value) for key, value in session.items() if value is not None)
        import jwt  # lazily, as in _verify

        return jwt.encode(payload, self._secret, algorithm=ALGORITHM)


def _claims_from(payload: dict[str, Any]) -> Claims:
    """A signed token is trusted for its origin, not its shape: every claim is type-checked."""
    sub, role, boxes = payload.get("sub"), payload.get("role"), payload.get("boxes")
    exp, iat = payload.get("exp"), payload.get("iat")
    if not isinstance(sub, str) or not sub or not isinstance(role, str) or role not in ROLES:
        raise TokenError(INVALID_TOKEN)
    if not isinstance(boxes, list) or not all(is_box_id(b) for b in boxes):
        raise TokenError(INVALID_TOKEN)
    if not _is_int(exp) or not _is_int(iat):
        raise TokenError(INVALID_TOKEN)
    if role == "spectator":
        return Claims(sub=sub, role=role, boxes=tuple(boxes), exp=exp, iat=iat)
    # A login token without a session (one issued before sessions could be revoked) is refused:
    # nothing could ever end it.
    sid, uid, ep = payload.get("sid"), payload.get("uid"), payload.get("ep")
    if not _is_text(sid) or not (uid is None or _is_text(uid)) or not (ep is None or _is_text(ep, empty=True)):
        raise TokenError(INVALID_TOKEN)
    return Claims(sub=sub, role=role, boxes=tuple(boxes), exp=exp, iat=iat, sid=sid, uid=uid, ep=ep)


def _is_text(value: object, empty: bool = False) -> TypeGuard[str]:
    return isinstance(value, str) and (empty or bool(value)) and len(value) <= MAX_CLAIM_TEXT


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def load_or_create_secret(storage_dir: Path, env_secret: str | None, file_name: str = SECRET_FILE) -> str:
    """The environment wins; otherwise a secret kept in `storage_dir/file_name`, created on first
    start, so sessions survive a restart without anyone having to invent a secret."""
    if env_secret:
        return env_secret
    path = storage_dir / file_name
    try:
        existing = _read_private(path)
    except FileNotFoundError:
        existing = ""
    if existing:
        return existing
    # Missing or empty (a crash before our first write cannot leave one, a hand edit can).
    created = secrets.token_urlsafe(48)
    write_private(path, created)
    return created


def is_weak_secret(secret: str | None) -> bool:
    return not secret or len(secret) < MIN_SECRET_LENGTH or secret.strip().casefold() in _KNOWN_DEFAULT_SECRETS


def _read_private(path: Path) -> str:
    """Read the secret, first tightening a file that others could read (e.g. restored from a zip)."""
    if sys.platform != "win32" and stat.S_IMODE(path.stat().st_mode) & 0o077:
        os.chmod(path, 0o600)
    return path.read_text(encoding="utf-8").strip()


def write_private(path: Path, text: str) -> None:
    """Written atomically by a temp file born 0600: never readable by others, not even for a
    moment, and a crash leaves the old state or the whole secret, never half of it."""
    fs = FileSystem()
    fs.makedirs(path.parent)
    write_atomic(fs, path, text.encode("utf-8"), mode=0o600)
