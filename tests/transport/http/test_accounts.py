"""Accounts over real sockets: login, cookie, logout, judges, imported hashes, throttling, renewal."""
from __future__ import annotations

import base64
import hashlib
import stat
import time
from collections.abc import AsyncIterator
from pathlib import Path

import orjson
import pytest
from aiohttp import ClientSession, TCPConnector
from aiohttp.test_utils import TestClient

from actors.accounts.setup import StartupRefused
from actors.accounts.tokens import TokenService
from tests.conftest import ADMIN_PASSWORD, login, make_config, serving
from transport.app import create_app
from transport.keys import ACCOUNTS, CONFIG


@pytest.fixture
async def anon(tmp_path: Path) -> AsyncIterator[TestClient]:
    async with serving(create_app(make_config(tmp_path / "data")), as_admin=False) as client:
        yield client


async def attempt(client: TestClient, username: str, password: str) -> tuple[int, dict]:
    response = await client.post("/api/auth/login", json={"username": username, "password": password})
    return response.status, await response.json()


async def test_login_sets_an_httponly_cookie_as_long_as_the_token(anon: TestClient) -> None:
    response = await anon.post("/api/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD})
    body = await response.json()
    assert response.status == 200
    assert body["role"] == "admin" and body["boxes"] == [] and body["token_type"] == "bearer"
    cookie = response.cookies["escalada_token"]
    assert cookie.value == body["access_token"]
    assert cookie["httponly"] and cookie["path"] == "/" and cookie["samesite"].lower() == "lax"
    assert int(cookie["max-age"]) == 720 * 60
    me = await (await anon.get("/api/auth/me")).json()
    assert me["sub"] == "admin" and me["role"] == "admin" and me["exp"] - me["iat"] == 720 * 60

    out = await anon.post("/api/auth/logout")
    assert (await out.json()) == {"status": "logged_out"}
    assert out.cookies["escalada_token"]["max-age"] == "0"
    assert (await anon.get("/api/auth/me")).status == 401


async def test_wrong_password_and_unknown_user_look_the_same(anon: TestClient) -> None:
    assert await attempt(anon, "admin", "nope") == (401, {"detail": "invalid_credentials"})
    assert await attempt(anon, "nobody", "nope") == (401, {"detail": "invalid_credentials"})
    bad = await anon.post("/api/auth/login", data=b"not json", headers={"Content-Type": "application/json"})
    assert bad.status == 400


async def test_judge_password_works_under_the_custom_name_box_n_and_n(anon: TestClient) -> None:
    await login(anon)
    response = await anon.post("/api/admin/auth/boxes/0/password",
                               json={"password": "judge-zero-pass", "username": "U16 Fete"})
    assert await response.json() == {"status": "ok", "boxId": 0, "username": "U16 Fete", "alias": "Box 0",
                                     "id_alias": "0"}
    blank = await anon.post("/api/admin/auth/boxes/0/password", json={"password": "   "})
    assert (blank.status, (await blank.json())["detail"]) == (422, "password_required")
    for name in ("U16 Fete", "u16\u00a0fete", "Box 0", "box 0", "0"):
        status, body = await attempt(anon, name, "judge-zero-pass")
        assert status == 200, name
        assert body["role"] == "judge" and body["boxes"] == [0]
    # Now logged in as the judge (cookie): box 0 yes, box 1 no, admin routes no.
    init = {"type": "INIT_ROUTE", "routeIndex": 1, "holdsCount": 5, "competitors": [{"nume": "Ana"}]}
    assert (await anon.post("/api/cmd", json={"boxId": 0, **init})).status == 200
    refused = await anon.post("/api/cmd", json={"boxId": 1, **init})
    assert (refused.status, (await refused.json())["detail"]) == (403, "forbidden_box")
    assert (await anon.get("/api/admin/audit/events")).status == 403


def passlib_style_hash(password: str, salt: bytes, rounds: int = 29000) -> str:
    """The escalada backend's users.json format ($pbkdf2-sha256$, passlib's adapted base64)."""
    def ab64(raw: bytes) -> str:
        return base64.b64encode(raw).decode().rstrip("=").replace("+", ".")

    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, rounds, 32)
    return f"$pbkdf2-sha256${rounds}${ab64(salt)}${ab64(digest)}"


async def test_users_from_the_escalada_backend_log_in_and_are_rehashed(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    old_hash = passlib_style_hash("old-judge-pass", b"\x01" * 16)
    (data / "users.json").write_bytes(orjson.dumps({"Box 3": {
        "username": "Box 3", "password_hash": old_hash, "role": "judge", "assigned_boxes": [3],
        "is_active": True, "created_at": "2026-01-01T00:00:00+00:00", "updated_at": "2026-01-01T00:00:00+00:00"}}))
    async with serving(create_app(make_config(data)), as_admin=False) as client:
        assert (await attempt(client, "3", "old-judge-pass"))[0] == 200
        assert (await attempt(client, "3", "wrong"))[0] == 401
        users = orjson.loads((data / "users.json").read_bytes())
        assert users["Box 3"]["password_hash"].startswith("$scrypt$")
        assert "admin" in users and users["admin"]["password_hash"].startswith("$scrypt$")
        assert stat.S_IMODE((data / "users.json").stat().st_mode) == 0o600
        assert (await attempt(client, "Box 3", "old-judge-pass"))[0] == 200


async def test_repeated_failures_are_throttled_per_user_and_address(anon: TestClient) -> None:
    for _ in range(5):
        assert (await attempt(anon, "admin", "guess"))[0] == 401
    response = await anon.post("/api/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD})
    assert response.status == 429
    assert "rate limit" in (await response.json())["detail"]
    assert int(response.headers["Retry-After"]) >= 1
    # The admin on another device (another address) is not locked out by the attacker.
    async with ClientSession(connector=TCPConnector(local_addr=("127.0.0.2", 0))) as other:
        async with other.post(f"http://127.0.0.1:{anon.port}/api/auth/login",
                              json={"username": "admin", "password": ADMIN_PASSWORD}) as other_response:
            assert other_response.status == 200


async def test_a_token_in_use_is_renewed_before_it_expires(anon: TestClient) -> None:
    config = anon.app[CONFIG]
    secret = (config.storage_dir / "jwt_secret").read_text().strip()
    ttl = int(config.token_ttl_min * 60)
    epoch = anon.app[ACCOUNTS].users["admin"]["token_epoch"]
    aging = TokenService(secret, ttl, clock=lambda: time.time() - ttl * 0.6).issue("admin", "admin", [], uid="admin",
                                                                                   ep=epoch)
    fresh = TokenService(secret, ttl).issue("admin", "admin", [], uid="admin", ep=epoch)
    anon.session.cookie_jar.update_cookies({"escalada_token": fresh})
    kept = await anon.get("/api/state/0")
    assert kept.status == 200 and "escalada_token" not in kept.cookies
    anon.session.cookie_jar.update_cookies({"escalada_token": aging})
    renewed = await anon.get("/api/state/0")
    assert renewed.status == 200
    new_token = renewed.cookies["escalada_token"].value
    assert new_token != aging and int(renewed.cookies["escalada_token"]["max-age"]) == ttl


async def test_without_a_default_password_a_random_one_is_made_and_only_its_hash_kept(tmp_path: Path, caplog) -> None:
    data = tmp_path / "data"
    config = make_config(data, default_admin_password=None)
    with caplog.at_level("WARNING", logger="belay.accounts"):
        async with serving(create_app(config), as_admin=False) as client:
            message = next(r.getMessage() for r in caplog.records if "generated password" in r.getMessage())
            password = message.split("generated password ")[1].split(" ")[0]
            assert (await attempt(client, "admin", password))[0] == 200
    assert password.encode() not in (data / "users.json").read_bytes()
    assert stat.S_IMODE((data / "jwt_secret").stat().st_mode) == 0o600


@pytest.mark.parametrize("settings", [{"default_admin_password": "admin"}, {"default_admin_password": "12345678"},
                                      {"jwt_secret": "dev-secret-change-me"}])
def test_production_mode_refuses_weak_settings(tmp_path: Path, settings: dict) -> None:
    with pytest.raises(StartupRefused):
        create_app(make_config(tmp_path / "data", production=True, **settings))


async def test_a_judge_cannot_take_the_admins_name(client: TestClient) -> None:
    response = await client.post("/api/admin/auth/boxes/2/password",
                                 json={"password": "judge-two-pass", "username": "Admin"})
    assert (response.status, (await response.json())["detail"]) == (409, "username_taken")
    assert (await attempt(client, "admin", ADMIN_PASSWORD))[0] == 200
