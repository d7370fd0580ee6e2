"""Sessions end: logout ends one session, an account change ends all of the account's sessions and
closes its sockets; revocations survive a restart; renewal never outlives them (issue 16, item 6)."""
from __future__ import annotations

import logging
import stat
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import jwt
import orjson
import pytest
from aiohttp import WSMsgType
from aiohttp.test_utils import TestClient

from actors.accounts.tokens import TokenService
from persistence.backup import read_zip
from tests.conftest import ADMIN_PASSWORD, make_config, serving
from tests.transport.test_live_protocol import init_route
from transport.app import create_app
from transport.keys import ACCOUNTS, CONFIG, SPECTATOR_TOKENS, TOKENS

JUDGE_PASSWORD = "judge-one-secret"


@pytest.fixture
async def anon(tmp_path: Path) -> AsyncIterator[TestClient]:
    async with serving(create_app(make_config(tmp_path / "data")), as_admin=False) as client:
        yield client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def token_of(client: TestClient, username: str, password: str) -> str:
    """A login as from another device: the token only, nothing left in the client's cookie jar."""
    response = await client.post("/api/auth/login", json={"username": username, "password": password})
    assert response.status == 200, await response.text()
    client.session.cookie_jar.clear()
    return (await response.json())["access_token"]


async def status_of(client: TestClient, token: str, path: str = "/api/state/1") -> tuple[int, Any]:
    response = await client.get(path, headers=bearer(token))
    return response.status, await response.json()


async def as_admin(client: TestClient, method: str, path: str, body: dict | None = None) -> tuple[int, Any]:
    token = await token_of(client, "admin", ADMIN_PASSWORD)
    response = await client.request(method, path, json=body, headers=bearer(token))
    return response.status, await response.json()


async def set_judge(client: TestClient, box_id: int, username: str | None = None,
                    password: str = JUDGE_PASSWORD) -> tuple[int, Any]:
    return await as_admin(client, "POST", f"/api/admin/auth/boxes/{box_id}/password",
                          {"password": password, "username": username})


async def socket_of(client: TestClient, token: str, box_id: int = 1, path: str = "/api/ws"):  # type: ignore[no-untyped-def]
    # No automatic pong: answering a ping that arrived just before the close frame on a connection
    # the server has already closed would make aiohttp's client raise instead of showing the close.
    ws = await client.ws_connect(f"{path}/{box_id}?token={token}", autoping=False)
    assert (await next_of(ws, {"STATE_SNAPSHOT"}))["boxId"] == box_id
    return ws


async def next_of(ws, kinds: set[str]) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """The next TEXT frame whose type is in `kinds`, skipping pings of either kind."""
    while True:
        message = await ws.receive(timeout=10)
        assert message.type in (WSMsgType.TEXT, WSMsgType.PING), message
        if message.type == WSMsgType.TEXT and (frame := orjson.loads(message.data)).get("type") in kinds:
            return frame


async def close_of(ws) -> tuple[int, str]:  # type: ignore[no-untyped-def]
    """Frames until the close frame: (code, reason)."""
    while True:
        message = await ws.receive(timeout=10)
        if message.type == WSMsgType.CLOSE:
            return message.data, message.extra
        assert message.type in (WSMsgType.TEXT, WSMsgType.PING), message


async def still_open(client: TestClient, ws, box_id: int = 1) -> None:  # type: ignore[no-untyped-def]
    """The socket receives the next change of its box."""
    status, _ = await as_admin(client, "POST", "/api/cmd", init_route(box_id))
    assert status == 200
    assert (await next_of(ws, {"INIT_ROUTE"}))["boxId"] == box_id


# -- logout ---------------------------------------------------------------------------------------

async def test_logout_revokes_the_token_for_new_requests_and_new_sockets(anon: TestClient) -> None:
    token = await token_of(anon, "admin", ADMIN_PASSWORD)
    assert (await status_of(anon, token))[0] == 200
    anon.session.cookie_jar.update_cookies({"escalada_token": token})
    out = await anon.post("/api/auth/logout")
    assert (out.status, await out.json()) == (200, {"status": "logged_out"})
    assert out.cookies["escalada_token"]["max-age"] == "0"
    assert await status_of(anon, token) == (401, {"detail": "token_revoked"})
    assert await status_of(anon, token, "/api/auth/me") == (401, {"detail": "token_revoked"})
    ws = await anon.ws_connect(f"/api/ws/1?token={token}", autoping=False)
    assert await close_of(ws) == (4401, "token_revoked")


async def test_logout_keeps_the_same_users_other_devices_logged_in(anon: TestClient) -> None:
    tablet = await token_of(anon, "admin", ADMIN_PASSWORD)
    laptop = await token_of(anon, "admin", ADMIN_PASSWORD)
    await anon.post("/api/auth/logout", headers=bearer(tablet))
    assert (await status_of(anon, tablet))[0] == 401
    assert (await status_of(anon, laptop))[0] == 200


async def test_logout_leaves_open_sockets_open(anon: TestClient) -> None:
    """The judge page logs out on mount when it holds another role; the projector's contest page
    in the same browser must stay connected."""
    token = await token_of(anon, "admin", ADMIN_PASSWORD)
    ws = await socket_of(anon, token)
    await anon.post("/api/auth/logout", headers=bearer(token))
    await still_open(anon, ws)
    await ws.close()


@pytest.mark.parametrize("carry", ["nothing", "garbage", "spectator", "expired-elsewhere"])
async def test_logout_without_a_valid_token_still_answers_200_and_deletes_the_cookie(anon: TestClient,
                                                                                     carry: str) -> None:
    headers: dict[str, str] = {}
    if carry == "garbage":
        headers = {"Cookie": "escalada_token=not.a.token"}
    elif carry == "spectator":
        headers = bearer(anon.app[TOKENS].issue_spectator()[0])
    elif carry == "expired-elsewhere":
        headers = bearer(TokenService("another-secret-of-some-other-server-000000000", 60).issue(
            "admin", "admin", [], uid="admin", ep=""))
    # The UI's own call: no body, no content type.
    out = await anon.post("/api/auth/logout", headers=headers)
    assert (out.status, await out.json()) == (200, {"status": "logged_out"})
    assert out.cookies["escalada_token"]["max-age"] == "0"
    assert not (anon.app[CONFIG].storage_dir / "revoked_sessions.json").exists()


async def test_renewal_never_outlives_a_logout(anon: TestClient) -> None:
    """A stolen copy of an old cookie, logged out after the owner's cookie was renewed: the renewed
    token belongs to the same session and ends with it, and a logged-out token is never renewed."""
    config = anon.app[CONFIG]
    ttl = int(config.token_ttl_min * 60)
    secret = (config.storage_dir / "jwt_secret").read_text().strip()
    epoch = anon.app[ACCOUNTS].users["admin"]["token_epoch"]
    aging = TokenService(secret, ttl, clock=lambda: time.time() - ttl * 0.6).issue(
        "admin", "admin", [], uid="admin", ep=epoch)
    anon.session.cookie_jar.update_cookies({"escalada_token": aging})
    renewed_response = await anon.get("/api/state/0")
    renewed = renewed_response.cookies["escalada_token"].value
    assert renewed != aging

    anon.session.cookie_jar.clear()  # the thief logs out with the old token alone
    await anon.post("/api/auth/logout", headers=bearer(aging))
    assert (await status_of(anon, renewed))[0] == 401
    anon.session.cookie_jar.clear()
    anon.session.cookie_jar.update_cookies({"escalada_token": aging})
    refused = await anon.get("/api/state/0")
    assert refused.status == 401 and "escalada_token" not in refused.cookies


async def test_a_session_ended_by_its_own_request_gets_no_renewed_cookie(tmp_path: Path) -> None:
    """The check before renewal runs again when the answer leaves: the handler may have ended it."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "users.json").write_bytes(orjson.dumps({
        name: {"password_hash": "not-a-login", "role": "admin", "token_epoch": "e"} for name in ("boss", "chief")}))
    async with serving(create_app(make_config(data)), as_admin=False) as client:
        config = client.app[CONFIG]
        ttl = int(config.token_ttl_min * 60)
        secret = (config.storage_dir / "jwt_secret").read_text().strip()
        aging = TokenService(secret, ttl, clock=lambda: time.time() - ttl * 0.6).issue(
            "boss", "admin", [], uid="boss", ep="e")
        client.session.cookie_jar.update_cookies({"escalada_token": aging})
        response = await client.post("/api/admin/users/disable", json={"username": "boss"})
        assert response.status == 200 and "escalada_token" not in response.cookies


async def test_logout_of_an_expired_token_still_ends_its_renewed_sibling(anon: TestClient) -> None:
    config = anon.app[CONFIG]
    ttl = int(config.token_ttl_min * 60)
    secret = (config.storage_dir / "jwt_secret").read_text().strip()
    epoch = anon.app[ACCOUNTS].users["admin"]["token_epoch"]
    current = anon.app[TOKENS].issue("admin", "admin", [], uid="admin", ep=epoch)
    sid = anon.app[TOKENS].decode(current).sid
    expired = TokenService(secret, ttl, clock=lambda: time.time() - 2 * ttl).issue(
        "admin", "admin", [], uid="admin", ep=epoch, sid=sid)
    assert (await status_of(anon, expired))[1] == {"detail": "token_expired"}
    await anon.post("/api/auth/logout", headers=bearer(expired))
    assert await status_of(anon, current) == (401, {"detail": "token_revoked"})


async def test_logged_out_sessions_stay_revoked_after_a_restart(tmp_path: Path) -> None:
    data = tmp_path / "data"
    async with serving(create_app(make_config(data)), as_admin=False) as client:
        token = await token_of(client, "admin", ADMIN_PASSWORD)
        kept = await token_of(client, "admin", ADMIN_PASSWORD)
        await client.post("/api/auth/logout", headers=bearer(token))
    assert stat.S_IMODE((data / "revoked_sessions.json").stat().st_mode) == 0o600
    async with serving(create_app(make_config(data)), as_admin=False) as client:
        assert await status_of(client, token) == (401, {"detail": "token_revoked"})
        assert (await status_of(client, kept))[0] == 200


async def test_a_backup_keeps_the_logged_out_sessions(anon: TestClient) -> None:
    token = await token_of(anon, "admin", ADMIN_PASSWORD)
    await anon.post("/api/auth/logout", headers=bearer(token))
    status, reply = await as_admin(anon, "POST", "/api/admin/ops/backup/now")
    assert status == 200, reply
    contents = read_zip(anon.app[CONFIG].backup_dir / reply["filename"])  # every entry name and checksum checked
    assert anon.app[TOKENS].decode(token).sid in orjson.loads(contents.files["revoked_sessions.json"])["sessions"]


async def test_a_login_token_from_before_sessions_is_refused(anon: TestClient) -> None:
    secret = (anon.app[CONFIG].storage_dir / "jwt_secret").read_text().strip()
    now = int(time.time())
    old_style = jwt.encode({"sub": "admin", "role": "admin", "boxes": [], "iat": now, "exp": now + 600}, secret,
                           algorithm="HS256")
    assert await status_of(anon, old_style) == (401, {"detail": "invalid_token"})


# -- account changes ------------------------------------------------------------------------------

async def test_setting_a_boxs_judge_password_ends_all_its_judges_sessions_and_closes_their_sockets(
        anon: TestClient) -> None:
    assert (await set_judge(anon, 1, "Lead"))[0] == 200
    as_lead = await token_of(anon, "Lead", JUDGE_PASSWORD)
    as_one = await token_of(anon, "1", JUDGE_PASSWORD)
    judge_ws = await socket_of(anon, as_lead)
    admin_ws = await socket_of(anon, await token_of(anon, "admin", ADMIN_PASSWORD))
    spectator_ws = await socket_of(anon, anon.app[SPECTATOR_TOKENS].issue_spectator()[0], path="/api/public/ws")

    assert (await set_judge(anon, 1, "Lead", password="judge-one-new-secret"))[0] == 200
    assert await close_of(judge_ws) == (4401, "token_revoked")
    for token in (as_lead, as_one):
        assert await status_of(anon, token) == (401, {"detail": "token_revoked"})
    await still_open(anon, admin_ws)
    assert (await next_of(spectator_ws, {"STATE_SNAPSHOT"}))["initiated"] is True
    assert (await status_of(anon, await token_of(anon, "Lead", "judge-one-new-secret")))[0] == 200
    for ws in (admin_ws, spectator_ws):
        await ws.close()


async def test_disabling_a_user_ends_its_sessions_and_enabling_needs_a_new_login(anon: TestClient) -> None:
    assert (await set_judge(anon, 1))[0] == 200
    token = await token_of(anon, "Box 1", JUDGE_PASSWORD)
    ws = await socket_of(anon, token)
    status, reply = await as_admin(anon, "POST", "/api/admin/users/disable", {"username": "box 1"})
    assert status == 200 and reply["username"] == "Box 1" and sorted(reply["changed"]) == ["1", "Box 1"]
    assert await close_of(ws) == (4401, "token_revoked")
    assert await status_of(anon, token) == (401, {"detail": "token_revoked"})
    login = await anon.post("/api/auth/login", json={"username": "1", "password": JUDGE_PASSWORD})
    assert (login.status, await login.json()) == (401, {"detail": "invalid_credentials"})

    assert (await as_admin(anon, "POST", "/api/admin/users/enable", {"username": "1"}))[0] == 200
    assert (await status_of(anon, token))[0] == 401, "an old token never comes back"
    assert (await status_of(anon, await token_of(anon, "1", JUDGE_PASSWORD)))[0] == 200


async def test_removing_a_user_ends_its_sessions_and_a_new_account_of_that_name_does_not_revive_them(
        anon: TestClient) -> None:
    assert (await set_judge(anon, 1))[0] == 200
    token = await token_of(anon, "Box 1", JUDGE_PASSWORD)
    ws = await socket_of(anon, token)
    status, reply = await as_admin(anon, "POST", "/api/admin/users/remove", {"username": "Box 1"})
    assert status == 200 and sorted(reply["removed"]) == ["1", "Box 1"]
    assert await close_of(ws) == (4401, "token_revoked")
    assert (await set_judge(anon, 1))[0] == 200  # the same names and password again
    assert await status_of(anon, token) == (401, {"detail": "token_revoked"})


async def test_account_routes_refuse_the_last_admin_unknown_names_bad_bodies_and_non_admins(
        anon: TestClient) -> None:
    for action in ("disable", "remove"):
        assert await as_admin(anon, "POST", f"/api/admin/users/{action}", {"username": "admin"}) == \
            (409, {"detail": "last_active_admin"})
        assert await as_admin(anon, "POST", f"/api/admin/users/{action}", {"username": "ghost"}) == \
            (404, {"detail": "user_not_found"})
        for body in ({}, {"username": ""}, {"username": 3}, {"username": "x" * 300}):
            assert (await as_admin(anon, "POST", f"/api/admin/users/{action}", body))[0] == 400
    assert (await set_judge(anon, 1))[0] == 200
    judge = await token_of(anon, "Box 1", JUDGE_PASSWORD)
    refused = await anon.post("/api/admin/users/remove", json={"username": "admin"}, headers=bearer(judge))
    assert (refused.status, await refused.json()) == (403, {"detail": "forbidden_role"})
    assert (await as_admin(anon, "GET", "/api/auth/me"))[0] == 200, "admin untouched"


async def test_a_token_must_match_the_accounts_current_role_and_boxes(tmp_path: Path) -> None:
    """A hand edit of users.json (server stopped) that keeps the epoch still ends old tokens."""
    data = tmp_path / "data"
    async with serving(create_app(make_config(data)), as_admin=False) as client:
        assert (await set_judge(client, 1))[0] == 200
        token = await token_of(client, "Box 1", JUDGE_PASSWORD)
    users = orjson.loads((data / "users.json").read_bytes())
    users["Box 1"]["assigned_boxes"] = [2]
    (data / "users.json").write_bytes(orjson.dumps(users))
    async with serving(create_app(make_config(data)), as_admin=False) as client:
        assert await status_of(client, token) == (401, {"detail": "token_revoked"})
        assert (await status_of(client, await token_of(client, "Box 1", JUDGE_PASSWORD), "/api/state/2"))[0] == 200


# -- item 10: a judge name moves between boxes ----------------------------------------------------

async def test_setting_a_password_moves_a_judge_name_from_another_box(anon: TestClient, caplog) -> None:
    assert (await set_judge(anon, 1, "Lead"))[0] == 200
    old = await token_of(anon, "Lead", JUDGE_PASSWORD)
    ws = await socket_of(anon, old)
    with caplog.at_level(logging.WARNING, logger="belay.accounts"):
        status, reply = await set_judge(anon, 2, "Lead", password="judge-two-secret")
    assert status == 200
    assert reply == {"status": "ok", "boxId": 2, "username": "Lead", "alias": "Box 2", "id_alias": "2",
                     "movedFrom": 1}
    assert any("'Lead' moved to box 2" in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    assert await close_of(ws) == (4401, "token_revoked")
    assert await status_of(anon, old) == (401, {"detail": "token_revoked"})
    lead = await anon.post("/api/auth/login", json={"username": "Lead", "password": "judge-two-secret"})
    assert (await lead.json())["boxes"] == [2]
    box_one = await anon.post("/api/auth/login", json={"username": "Box 1", "password": JUDGE_PASSWORD})
    assert (await box_one.json())["boxes"] == [1], "box 1 keeps its other names"

    status, events = await as_admin(anon, "GET", "/api/admin/audit/events?includePayload=1&boxId=2")
    moved = [e for e in events if e["action"] == "JUDGE_NAME_MOVED"]
    assert len(moved) == 1 and moved[0]["payload"] == {"username": "Lead", "fromBoxes": [1]}
    assert moved[0]["actorUsername"] == "admin" and moved[0]["boxVersion"] is None
    assert [e["action"] for e in events][:2] == ["JUDGE_PASSWORD_SET", "JUDGE_NAME_MOVED"]


async def test_a_judge_name_held_by_a_viewer_stays_a_409(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "users.json").write_bytes(orjson.dumps({"Coach": {"password_hash": "not-a-login", "role": "viewer"}}))
    async with serving(create_app(make_config(data)), as_admin=False) as client:
        assert await set_judge(client, 2, "coach") == (409, {"detail": "username_taken"})
        assert client.app[ACCOUNTS].users["Coach"]["role"] == "viewer"


async def test_account_events_do_not_disturb_the_boxes_at_restart(tmp_path: Path) -> None:
    data = tmp_path / "data"
    async with serving(create_app(make_config(data)), as_admin=False) as client:
        assert (await as_admin(client, "POST", "/api/cmd", init_route(1)))[0] == 200
        assert (await set_judge(client, 1, "Lead"))[0] == 200
        assert (await set_judge(client, 2, "Lead"))[0] == 200
        before = await as_admin(client, "GET", "/api/state/1")
    async with serving(create_app(make_config(data)), as_admin=False) as client:
        after = await as_admin(client, "GET", "/api/state/1")
    assert after == before and before[1]["boxVersion"] == 1
