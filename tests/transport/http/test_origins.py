"""Cross-site requests: a page on a foreign origin cannot act with the admin's cookie.

CORS only hides answers from a foreign page; these tests prove the requests themselves are refused
(state-changing ones outright, cookie-authenticated sockets with close code 4403), that the UI's
own origins, the server's own origin and clients without an Origin (curl, scripts) are served as
before, and that JSON is only read when it is sent as JSON.
"""
from __future__ import annotations

import logging
import re
from pathlib import Path

import orjson
import pytest
from aiohttp import WSMsgType
from aiohttp.test_utils import TestClient

from tests.conftest import login, make_config, serving
from transport.app import create_app
from transport.config import DEFAULT_ORIGIN_REGEX

EVIL = "http://evil.example"
UI = "http://192.168.1.20:5173"
INIT = {"boxId": 0, "type": "INIT_ROUTE", "routeIndex": 1, "holdsCount": 10,
        "competitors": [{"nume": "Ana Pop"}], "categorie": "U16"}


async def test_a_cross_site_text_plain_command_with_the_admins_cookie_is_refused(client: TestClient) -> None:
    """The issue's reproduction: a form-like request (no preflight) carrying the admin's cookie."""
    response = await client.post("/api/cmd", data=orjson.dumps(INIT),
                                 headers={"Origin": EVIL, "Content-Type": "text/plain"})
    assert response.status == 403
    assert await response.json() == {"detail": f"origin not allowed: {EVIL}"}
    assert "Access-Control-Allow-Origin" not in response.headers
    state = await (await client.get("/api/state/0")).json()
    assert state["initiated"] is False, "the refused command must not have run"


async def test_a_cross_site_json_command_is_refused_too(client: TestClient) -> None:
    response = await client.post("/api/cmd", json=INIT, headers={"Origin": EVIL})
    assert response.status == 403
    assert (await (await client.get("/api/state/0")).json())["initiated"] is False


@pytest.mark.parametrize("path", [
    "/api/cmd", "/api/auth/login", "/api/auth/logout", "/api/admin/competition_officials",
    "/api/admin/auth/boxes/1/password", "/api/save_ranking", "/api/admin/upload", "/api/admin/restore",
    "/api/admin/ops/backup/now", "/api/admin/ops/drill/backup_restore",
])
async def test_every_state_changing_route_refuses_a_foreign_origin(client: TestClient, path: str) -> None:
    """All but the spectator routes, which any origin may use (test_cors.py)."""
    response = await client.post(path, data=b"{}", headers={"Origin": EVIL, "Content-Type": "application/json"})
    assert response.status == 403, path
    assert (await response.json())["detail"].startswith("origin not allowed")
    assert "Set-Cookie" not in response.headers, "a refused logout must not clear the cookie"


async def test_a_refused_logout_leaves_the_session_working(client: TestClient) -> None:
    assert (await client.post("/api/auth/logout", headers={"Origin": EVIL})).status == 403
    assert (await client.get("/api/auth/me")).status == 200


@pytest.mark.parametrize("origin", [UI, "http://localhost:5173", "http://scoreboard.local:8080", None])
async def test_allowed_origins_and_clients_without_an_origin_are_served(client: TestClient,
                                                                        origin: str | None) -> None:
    headers = {"Origin": origin} if origin else {}
    response = await client.post("/api/cmd", json=INIT, headers=headers)
    assert response.status == 200, await response.text()


async def test_the_servers_own_origin_is_always_allowed(tmp_path: Path) -> None:
    """A page served by Belay itself (or by a proxy in front of it on the same host and port)."""
    app = create_app(make_config(tmp_path / "data", allowed_origins="", allowed_origin_regex=""))
    async with serving(app) as client:
        own = f"http://127.0.0.1:{client.port}"
        assert (await client.post("/api/cmd", json=INIT, headers={"Origin": own})).status == 200
        other_port = f"http://127.0.0.1:{client.port + 1 if client.port < 65535 else client.port - 1}"
        assert (await client.post("/api/cmd", json=INIT, headers={"Origin": other_port})).status == 403
        # Host names compare without case, and a default port may be spelt out or left out.
        https_own = await client.post("/api/cmd", json=INIT, headers={"Origin": "https://belay.example",
                                                                      "Host": "BELAY.example:443"})
        assert https_own.status == 200, await https_own.text()


async def test_a_refused_origin_is_logged_once_naming_the_setting(client: TestClient,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="belay.http")
    for _ in range(3):
        await client.post("/api/cmd", json=INIT, headers={"Origin": EVIL})
    await client.post("/api/cmd", json=INIT, headers={"Origin": "http://other.example"})
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and "origin" in r.getMessage()]
    assert len(warnings) == 2, warnings
    assert EVIL in warnings[0] and "ALLOWED_ORIGINS" in warnings[0] and "--allowed-origins" in warnings[0]
    assert "http://other.example" in warnings[1]


async def test_the_refusal_warning_cannot_be_split_into_fake_log_lines(client: TestClient,
                                                                        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="belay.http")
    await client.post("/api/x%0A2026-01-01 ERROR forged", headers={"Origin": "http://evil.example\tforged"})
    warnings = [r.getMessage() for r in caplog.records if "origin" in r.getMessage()]
    assert len(warnings) == 1 and "\n" not in warnings[0] and "\t" not in warnings[0], warnings


async def test_the_cookie_does_not_count_for_a_foreign_origins_read(client: TestClient) -> None:
    response = await client.get("/api/state/0", headers={"Origin": EVIL})
    assert response.status == 403
    assert (await response.json())["detail"] == f"origin not allowed: {EVIL}"
    assert (await client.get("/api/state/0", headers={"Origin": UI})).status == 200


async def test_a_cookie_websocket_from_a_foreign_origin_is_closed_with_4403(client: TestClient) -> None:
    ws = await client.ws_connect("/api/ws/0", origin=EVIL)
    message = await ws.receive(timeout=5)
    assert message.type == WSMsgType.CLOSE
    assert ws.close_code == 4403
    assert "origin not allowed" in (message.extra or "")


async def test_a_websocket_from_the_ui_origin_with_the_cookie_gets_its_snapshot(client: TestClient) -> None:
    ws = await client.ws_connect("/api/ws/0", origin=UI)
    message = await ws.receive(timeout=5)
    assert message.type == WSMsgType.TEXT and orjson.loads(message.data)["type"] == "STATE_SNAPSHOT"
    await ws.close()


async def test_a_websocket_with_a_token_in_the_query_works_from_any_origin(anonymous: TestClient) -> None:
    """A page that holds the token itself is not riding on the browser's cookie."""
    token = (await login(anonymous))["access_token"]
    anonymous.session.cookie_jar.clear()
    ws = await anonymous.ws_connect(f"/api/ws/0?token={token}", origin=EVIL)
    message = await ws.receive(timeout=5)
    assert message.type == WSMsgType.TEXT and orjson.loads(message.data)["type"] == "STATE_SNAPSHOT"
    await ws.close()


async def test_a_long_foreign_origin_still_closes_the_socket_cleanly(client: TestClient) -> None:
    """A close frame's reason is at most 123 bytes; a longer one would fail the socket in a browser."""
    origin = "http://" + "é" * 150 + ".example"
    ws = await client.ws_connect("/api/ws/0", headers={"Origin": origin})
    message = await ws.receive(timeout=5)
    assert message.type == WSMsgType.CLOSE and ws.close_code == 4403
    assert len((message.extra or "").encode()) <= 123


async def test_spectator_reads_and_sockets_take_any_origin(anonymous: TestClient) -> None:
    token = (await (await anonymous.post("/api/public/token")).json())["access_token"]
    boxes = await anonymous.get(f"/api/public/boxes?token={token}", headers={"Origin": EVIL})
    assert boxes.status == 200
    assert (await anonymous.get("/api/public/rankings", headers={"Origin": EVIL})).status == 200
    ws = await anonymous.ws_connect("/api/public/ws", origin=EVIL)
    message = await ws.receive(timeout=5)
    assert message.type == WSMsgType.TEXT
    await ws.close()
    ws = await anonymous.ws_connect(f"/api/public/ws/0?token={token}", origin=EVIL)
    assert (await ws.receive(timeout=5)).type == WSMsgType.TEXT
    await ws.close()


@pytest.mark.parametrize("path,body", [
    ("/api/cmd", INIT),
    ("/api/auth/login", {"username": "admin", "password": "x"}),
    ("/api/admin/competition_officials", {"chiefRoutesetter": "A"}),
    ("/api/admin/auth/boxes/1/password", {"password": "judge-pass-123"}),
    ("/api/save_ranking", {"categorie": "U16", "route_count": 1, "scores": {"Ana": [10]}}),
])
async def test_routes_that_read_json_require_the_json_content_type(client: TestClient, path: str,
                                                                   body: dict) -> None:
    for content_type in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", None):
        headers = {"Content-Type": content_type} if content_type else {}
        response = await client.post(path, data=orjson.dumps(body), headers=headers)
        assert response.status == 415, (path, content_type, await response.text())
        assert "application/json" in (await response.json())["detail"]
    response = await client.post(path, data=orjson.dumps(body),
                                 headers={"Content-Type": "application/json; charset=utf-8"})
    assert response.status != 415, (path, await response.text())


async def test_bodiless_and_upload_routes_need_no_json_content_type(client: TestClient) -> None:
    assert (await client.post("/api/public/token", headers={"Content-Type": "text/plain"})).status == 200
    assert (await client.post("/api/admin/ops/backup/now", headers={"Origin": UI})).status == 200
    assert (await client.post("/api/admin/ops/drill/backup_restore", headers={"Origin": UI})).status == 200
    assert (await client.post("/api/auth/logout", data=b"", headers={"Content-Type": "text/plain",
                                                                      "Origin": UI})).status == 200


@pytest.mark.parametrize("host,allowed", [
    ("172.16.0.1", True), ("172.20.10.5", True), ("172.31.255.254", True),
    ("172.15.0.1", False), ("172.32.0.1", False), ("172.160.0.1", False), ("172.16.0.1.evil.example", False),
])
def test_the_default_origins_cover_the_172_16_private_range_exactly(host: str, allowed: bool) -> None:
    for origin in (f"http://{host}", f"http://{host}:5173"):
        assert bool(re.fullmatch(DEFAULT_ORIGIN_REGEX, origin, re.IGNORECASE)) is allowed, origin


async def test_a_ui_on_the_172_16_range_is_served(client: TestClient) -> None:
    origin = "http://172.17.0.2:5173"  # e.g. Docker's default bridge network
    response = await client.post("/api/cmd", json=INIT, headers={"Origin": origin})
    assert response.status == 200
    assert response.headers["Access-Control-Allow-Origin"] == origin
