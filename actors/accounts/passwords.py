"""Passwords: the policy for new ones; scrypt for every hash we write, passlib's pbkdf2_sha256 read
for migration.

The escalada reference stores `$pbkdf2-sha256$29000$<salt>$<checksum>` (passlib). Those hashes keep
working here and are flagged for a rehash, so every account moves to scrypt at its next login.
Both functions are deliberately slow (tens of milliseconds): callers run them in an executor.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Final

from actors.accounts.records import canonical_username

SCRYPT_LN = 14  # n = 2**14: ~16 MiB and ~50 ms per hash, bearable on a venue laptop
SCRYPT_R = 8
SCRYPT_P = 1
SCRYPT_DKLEN = 32
SALT_BYTES = 16

# Bounds for parameters read back from users.json: a hand-edited or hostile file must not make one
# login allocate gigabytes or spin for minutes.
_SCRYPT_MAXMEM = 64 * 1024 * 1024
_MAX_SCRYPT_LN = 20
_MAX_SCRYPT_P = 16
_MAX_PBKDF2_ROUNDS = 10_000_000

# The one password policy. Judges type theirs on a tablet, often in a hurry, so six characters;
# admins and viewers eight. The throttle and the bounded hashing, not the length, stop online guessing.
MIN_PASSWORD_LENGTH: Final[Mapping[str, int]] = MappingProxyType({"judge": 6, "admin": 8, "viewer": 8})
MAX_PASSWORD_LENGTH: Final = 256  # what a login accepts, so no password can be set that cannot log in
# Defaults of this and the escalada backend, and what people type first (also in Romanian: parola).
_KNOWN_DEFAULTS: Final = frozenset({
    "admin", "admin1", "admin123", "administrator", "password", "password1", "passw0rd", "changeme", "change-me",
    "escalada", "escalada1", "judge", "judge1", "arbitru", "parola", "parola1", "parola123", "secret",
    "letmein", "welcome", "qwerty", "qwertz", "azerty", "qwerty123", "abc123", "abcdef", "123456", "1234567",
    "12345678", "123456789", "1234567890", "654321", "000000", "111111", "123123", "121212", "112233",
})

_SCRYPT_RE = re.compile(
    r"\$scrypt\$ln=([1-9][0-9]?),r=([1-9][0-9]{0,2}),p=([1-9][0-9]?)\$([A-Za-z0-9+/]+)\$([A-Za-z0-9+/]+)"
)
_PBKDF2_RE = re.compile(r"\$pbkdf2-sha256\$([1-9][0-9]{0,9})\$([A-Za-z0-9./]*)\$([A-Za-z0-9./]+)")


def hash_password(password: str) -> str:
    """A fresh `$scrypt$ln=14,r=8,p=1$<salt>$<hash>` string (base64 without padding)."""
    salt = os.urandom(SALT_BYTES)
    digest = _scrypt(password, salt, SCRYPT_LN, SCRYPT_R, SCRYPT_P, SCRYPT_DKLEN)
    return f"$scrypt$ln={SCRYPT_LN},r={SCRYPT_R},p={SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def verify_password(password: object, stored: object) -> tuple[bool, bool]:
    """(ok, needs_rehash). needs_rehash is only ever True together with ok: a hash can be
    replaced only while the plain password is at hand. Never raises: garbage is (False, False)."""
    if not isinstance(password, str) or not isinstance(stored, str):
        return False, False
    try:
        if match := _SCRYPT_RE.fullmatch(stored):
            return _verify_scrypt(password, match)
        if match := _PBKDF2_RE.fullmatch(stored):
            return _verify_pbkdf2(password, match)
    except ValueError:  # binascii.Error is a ValueError too
        pass
    return False, False


def password_problem(password: object, role: str, names: Iterable[str] = ()) -> str | None:
    """None when `password` may be set for an account of `role`, else the rule, in words for the
    person choosing one. Every place that sets a password asks here: the judge-password route, the
    command line and DEFAULT_ADMIN_PASSWORD. `names` are the account's own login names, never a
    password either."""
    if not isinstance(password, str) or not password.strip():
        return password_rule(role)
    if len(password.strip()) < _min_length(role) or len(password) > MAX_PASSWORD_LENGTH:
        return password_rule(role)
    folded = canonical_username(password).casefold()  # as a login name is folded: "Box\u00a03" is "box 3"
    if folded in _KNOWN_DEFAULTS or folded in {canonical_username(name).casefold() for name in names}:
        return password_rule(role)
    return None


def password_rule(role: str) -> str:
    """The policy for one role as a sentence (the README says the same)."""
    who = {"judge": "a judge's", "admin": "an admin's", "viewer": "a viewer's"}.get(role, "a")
    return (f"{who} password needs at least {_min_length(role)} characters (at most {MAX_PASSWORD_LENGTH}) and must "
            f"not be a well-known default (such as admin, password or 123456) or the account's own name")


def unmatchable_hash() -> str:
    """A hash in the current format that no password matches: a login for an unknown name is
    checked against one, so it costs the same time as a real one. Random, so it needs no hashing."""
    salt, digest = _b64(os.urandom(SALT_BYTES)), _b64(os.urandom(SCRYPT_DKLEN))
    return f"$scrypt$ln={SCRYPT_LN},r={SCRYPT_R},p={SCRYPT_P}${salt}${digest}"


def _min_length(role: str) -> int:
    return MIN_PASSWORD_LENGTH.get(role, max(MIN_PASSWORD_LENGTH.values()))


def _verify_scrypt(password: str, match: re.Match[str]) -> tuple[bool, bool]:
    ln, r, p = (int(g) for g in match.group(1, 2, 3))
    salt, expected = _b64decode(match.group(4)), _b64decode(match.group(5))
    if ln > _MAX_SCRYPT_LN or p > _MAX_SCRYPT_P or not expected:
        return False, False
    # hashlib.scrypt raises ValueError when n, r and maxmem do not fit, which the caller catches.
    ok = hmac.compare_digest(_scrypt(password, salt, ln, r, p, len(expected)), expected)
    current = (ln, r, p, len(expected)) == (SCRYPT_LN, SCRYPT_R, SCRYPT_P, SCRYPT_DKLEN)
    return ok, ok and not current


def _verify_pbkdf2(password: str, match: re.Match[str]) -> tuple[bool, bool]:
    rounds = int(match.group(1))
    salt, expected = _ab64decode(match.group(2)), _ab64decode(match.group(3))
    if rounds > _MAX_PBKDF2_ROUNDS or len(expected) != 32:
        return False, False
    actual = hashlib.pbkdf2_hmac("sha256", _utf8(password), salt, rounds, dklen=32)
    ok = hmac.compare_digest(actual, expected)
    return ok, ok


def _scrypt(password: str, salt: bytes, ln: int, r: int, p: int, dklen: int) -> bytes:
    return hashlib.scrypt(
        _utf8(password), salt=salt, n=2**ln, r=r, p=p, maxmem=_SCRYPT_MAXMEM, dklen=dklen
    )


def _utf8(text: str) -> bytes:
    # surrogatepass: a lone surrogate (possible in JSON) hashes deterministically instead of raising;
    # for every valid string this is plain UTF-8, as passlib uses.
    return text.encode("utf-8", "surrogatepass")


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii").rstrip("=")


def _b64decode(text: str) -> bytes:
    """Standard base64 without '=' padding; raises ValueError on an impossible length."""
    return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)


def _ab64decode(text: str) -> bytes:
    """passlib's "adapted base64": the standard alphabet with '.' for '+', no padding."""
    return _b64decode(text.replace(".", "+"))
