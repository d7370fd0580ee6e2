"""Session tokens: HS256 with our own claims check and clock; the signing secret on disk."""
from __future__ import annotations

import base64
import os
import stat
import sys
from pathlib import Path

import jwt
import orjson
import pytest

from actors.accounts.tokens import Claims, TokenError, TokenService, is_weak_secret, load_or_create_secret
from tests.conftest import FakeClock

SECRET = "a-test-secret-long-enough-even-for-hs512-which-wants-64-bytes-of-key"
OTHER_SECRET = "another-test-secret-long-enough-even-for-hs512-which-wants-64-bytes"
TTL = 3600


@pytest.fixture
def service(clock: FakeClock) -> TokenService:
    return TokenService(SECRET, TTL, clock=clock)


def reason(service: TokenService, token: str) -> str:
    with pytest.raises(TokenError) as caught:
        service.decode(token)
    return caught.value.reason


def signed(payload: dict, secret: str = SECRET, algorithm: str = "HS256") -> str:
    return jwt.encode(payload, secret, algorithm=algorithm)


def good_payload(clock: FakeClock) -> dict:
    now = int(clock())
    return {"sub": "Box 3", "role": "judge", "boxes": [3], "iat": now, "exp": now + TTL, "sid": "s-1",
            "uid": "Box 3", "ep": "e-1"}


def test_issued_token_decodes_to_its_claims(service: TokenService, clock: FakeClock) -> None:
    claims = service.decode(service.issue("Box 3", "judge", [3], uid="Box 3", ep="e-1"))
    now = int(clock())
    assert claims.sid and len(claims.sid) >= 20, "every login starts a session with a random id"
    assert claims == Claims(sub="Box 3", role="judge", boxes=(3,), exp=now + TTL, iat=now, sid=claims.sid,
                            uid="Box 3", ep="e-1")
    assert claims.as_json() == {"sub": "Box 3", "role": "judge", "boxes": [3], "exp": now + TTL, "iat": now,
                                "sid": claims.sid, "uid": "Box 3", "ep": "e-1"}


def test_each_login_is_a_new_session(service: TokenService) -> None:
    first = service.decode(service.issue("admin", "admin", [], uid="admin", ep=""))
    second = service.decode(service.issue("admin", "admin", [], uid="admin", ep=""))
    assert first.sid != second.sid


def test_a_login_token_without_a_session_is_invalid(service: TokenService, clock: FakeClock) -> None:
    """A token issued before sessions existed could never be revoked: it is refused."""
    before_sessions = {k: v for k, v in good_payload(clock).items() if k not in ("sid", "uid", "ep")}
    assert reason(service, signed(before_sessions)) == "invalid_token"


def test_token_expires_exactly_at_exp(service: TokenService, clock: FakeClock) -> None:
    token = service.issue("admin", "admin", [])
    clock.advance(TTL - 1)
    assert service.decode(token).sub == "admin"
    clock.advance(1)
    assert reason(service, token) == "token_expired"


def test_tampered_signature_is_invalid(service: TokenService) -> None:
    head, body, signature = service.issue("admin", "admin", []).split(".")
    flipped = ("A" if signature[0] != "A" else "B") + signature[1:]
    assert reason(service, f"{head}.{body}.{flipped}") == "invalid_token"


def test_tampered_payload_is_invalid(service: TokenService) -> None:
    head, _, signature = service.issue("Box 3", "judge", [3]).split(".")
    forged = base64.urlsafe_b64encode(orjson.dumps({"sub": "Box 3", "role": "admin", "boxes": []})).rstrip(b"=")
    assert reason(service, f"{head}.{forged.decode()}.{signature}") == "invalid_token"


def test_alg_none_is_invalid(service: TokenService, clock: FakeClock) -> None:
    unsigned = jwt.encode(good_payload(clock) | {"role": "admin"}, None, algorithm="none")
    assert reason(service, unsigned) == "invalid_token"


def test_other_hmac_algorithm_is_invalid(service: TokenService, clock: FakeClock) -> None:
    assert reason(service, signed(good_payload(clock), algorithm="HS512")) == "invalid_token"


def test_token_signed_with_another_secret_is_invalid(service: TokenService, clock: FakeClock) -> None:
    other = TokenService(OTHER_SECRET, TTL, clock=clock)
    assert reason(service, other.issue("admin", "admin", [])) == "invalid_token"


def test_an_expired_token_with_a_bad_signature_is_invalid_not_expired(service: TokenService, clock: FakeClock) -> None:
    token = TokenService(OTHER_SECRET, TTL, clock=clock).issue("admin", "admin", [])
    clock.advance(2 * TTL)
    assert reason(service, token) == "invalid_token"


@pytest.mark.parametrize("garbage", ["", "garbage", "a.b.c", "..", "\ud800.x.y", "é" * 50])
def test_garbage_is_invalid(service: TokenService, garbage: str) -> None:
    assert reason(service, garbage) == "invalid_token"


@pytest.mark.parametrize(
    "change",
    [
        {"sub": None},
        {"sub": ""},
        {"sub": 3},
        {"role": "root"},
        {"role": None},
        {"role": ["admin"]},
        {"role": {"admin": 1}},
        {"boxes": None},
        {"boxes": "3"},
        {"boxes": [3, "4"]},
        {"boxes": [True]},
        {"boxes": [3.0]},
        {"boxes": [10000]},
        {"boxes": [-1]},
        {"exp": None},
        {"exp": "soon"},
        {"exp": 1.5e12},
        {"iat": None},
        {"iat": True},
        {"sid": None},
        {"sid": ""},
        {"sid": 3},
        {"sid": "s" * 257},
        {"uid": ""},
        {"uid": ["admin"]},
        {"ep": 0},
    ],
)
def test_bad_or_missing_claims_are_invalid(service: TokenService, clock: FakeClock, change: dict) -> None:
    payload = {k: v for k, v in (good_payload(clock) | change).items() if v is not None}
    assert reason(service, signed(payload)) == "invalid_token"


def test_decode_uses_the_injected_clock_not_the_wall_clock(clock: FakeClock) -> None:
    far_future = FakeClock(4_000_000_000.0)
    service = TokenService(SECRET, TTL, clock=far_future)
    assert service.decode(service.issue("admin", "admin", [])).iat == 4_000_000_000
    past = TokenService(SECRET, TTL, clock=FakeClock(1_000.0))
    assert past.decode(past.issue("admin", "admin", [])).exp == 1_000 + TTL


def test_renewal_starts_once_less_than_half_the_lifetime_is_left(service: TokenService, clock: FakeClock) -> None:
    claims = service.decode(service.issue("admin", "admin", []))
    assert not service.should_renew(claims)
    clock.advance(TTL / 2)
    assert not service.should_renew(claims), "exactly half left: not yet"
    clock.advance(1)
    assert service.should_renew(claims)
    renewed = service.decode(service.reissue(claims))
    assert renewed.exp > claims.exp and not service.should_renew(renewed)


def test_renewal_keeps_the_session_the_account_and_its_epoch(service: TokenService, clock: FakeClock) -> None:
    claims = service.decode(service.issue("Box 3", "judge", [3], uid="3", ep="e-7"))
    clock.advance(TTL * 0.75)
    renewed = service.decode(service.reissue(claims))
    assert (renewed.sid, renewed.uid, renewed.ep, renewed.sub, renewed.boxes) == \
        (claims.sid, "3", "e-7", "Box 3", (3,))
    assert renewed.iat == int(clock()) and renewed.exp == int(clock()) + TTL


def test_only_a_logout_may_read_an_expired_token(service: TokenService, clock: FakeClock) -> None:
    token = service.issue("admin", "admin", [], uid="admin", ep="")
    clock.advance(TTL)
    assert reason(service, token) == "token_expired"
    assert service.decode(token, allow_expired=True).sub == "admin"


def test_no_renewal_of_a_session_can_outlive_its_last_possible_expiry(service: TokenService, clock: FakeClock) -> None:
    claims = service.decode(service.issue("admin", "admin", [], uid="admin", ep=""))
    clock.advance(TTL * 0.9)
    bound = service.last_possible_exp(claims)
    renewed = service.decode(service.reissue(claims))  # a renewal in flight while the session is revoked
    assert renewed.exp <= bound and claims.exp <= bound


def test_spectator_token_lasts_24_hours_and_is_never_renewed(service: TokenService, clock: FakeClock) -> None:
    token, expires_in = service.issue_spectator()
    assert expires_in == 86400
    claims = service.decode(token)
    assert claims.as_json() == {"sub": "spectator", "role": "spectator", "boxes": [],
                                "iat": int(clock()), "exp": int(clock()) + 86400}
    clock.advance(86400 - 1)
    assert not service.should_renew(service.decode(token))
    clock.advance(1)
    assert reason(service, token) == "token_expired"


def test_unknown_role_or_empty_secret_are_programming_errors(service: TokenService) -> None:
    with pytest.raises(ValueError):
        service.issue("x", "root", [])
    with pytest.raises(ValueError):
        service.issue("x", "spectator", [])
    with pytest.raises(ValueError):
        TokenService("", TTL)


# --- the signing secret ---------------------------------------------------------------------

posix_only = pytest.mark.skipif(sys.platform == "win32", reason="POSIX permission bits")


@posix_only
def test_secret_file_is_created_0600_and_reused(tmp_path: Path) -> None:
    storage = tmp_path / "data"
    first = load_or_create_secret(storage, None)
    path = storage / "jwt_secret"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text() == first and not is_weak_secret(first)
    assert load_or_create_secret(storage, None) == first, "sessions survive a restart"
    assert sorted(p.name for p in storage.iterdir()) == ["jwt_secret"], "no temp file left behind"


def test_environment_secret_wins_and_touches_no_file(tmp_path: Path) -> None:
    assert load_or_create_secret(tmp_path, "from-the-environment") == "from-the-environment"
    assert not (tmp_path / "jwt_secret").exists()


def test_empty_environment_value_counts_as_unset(tmp_path: Path) -> None:
    assert load_or_create_secret(tmp_path, "") == (tmp_path / "jwt_secret").read_text()


@posix_only
def test_existing_secret_is_stripped_and_its_loose_permissions_tightened(tmp_path: Path) -> None:
    path = tmp_path / "jwt_secret"
    path.write_text("kept-across-restarts\n")
    os.chmod(path, 0o644)
    assert load_or_create_secret(tmp_path, None) == "kept-across-restarts"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


@posix_only
def test_stale_temp_file_with_loose_permissions_is_not_reused(tmp_path: Path) -> None:
    stale = tmp_path / "jwt_secret.tmp"
    stale.write_text("half")
    os.chmod(stale, 0o666)
    secret = load_or_create_secret(tmp_path, None)
    assert stat.S_IMODE((tmp_path / "jwt_secret").stat().st_mode) == 0o600
    assert (tmp_path / "jwt_secret").read_text() == secret and not stale.exists()


@pytest.mark.parametrize(
    "weak", [None, "", "secret", "changeme", "change-me", "dev-secret-change-me", "x" * 31]
)
def test_weak_secrets(weak: str | None) -> None:
    assert is_weak_secret(weak)


def test_generated_length_secret_is_not_weak() -> None:
    assert not is_weak_secret("x" * 32)
