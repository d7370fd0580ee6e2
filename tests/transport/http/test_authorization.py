"""Every role against every route (reference-backend §6.6), decided in one place: transport/http/auth.py."""
from __future__ import annotations

import itertools
import time
from collections.abc import AsyncIterator
from pathlib import Path

import orjson
import pytest
from aiohttp import WSMsgType
from aiohttp.test_utils import TestClient

from actors.accounts.tokens import TokenService
from tests.conftest import make_config, serving
from transport.app import create_app
from transport.keys import ACCOUNTS, CONFIG, SPECTATOR_TOKENS, TOKENS

ROLES = ("admin", "judge1", "judge2", "viewer_all", "viewer2", "spectator", "anonymous")


ACCOUNT_OF_ROLE = {"admin": "admin", "judge1": "Box 1", "judge2": "Box 2", "viewer_all": "tv", "viewer2": "tv2"}


@pytest.fixture
async def anon(tmp_path: Path) -> AsyncIterator[TestClient]:
    """A server with an account behind every role (a token must match a current account)."""
    data = tmp_path / "data"
    data.mkdir()
    accounts = {"Box 1": ("judge", [1]), "Box 2": ("judge", [2]), "tv": ("viewer", []), "tv2": ("viewer", [2])}
    (data / "users.json").write_bytes(orjson.dumps({
        name: {"username": name, "password_hash": "not-a-login", "role": role, "assigned_boxes": boxes}
        for name, (role, boxes) in accounts.items()}))
    async with serving(create_app(make_config(data)), as_admin=False) as client:
        yield client


def token_for(client: TestClient, role: str) -> str | None:
    """A fresh login token of the role's account as it is now (as a login would issue it)."""
    tokens = client.app[TOKENS]
    if role == "spectator":
        return client.app[SPECTATOR_TOKENS].issue_spectator()[0]
    if role == "anonymous":
        return None
    key = ACCOUNT_OF_ROLE[role]
    record = client.app[ACCOUNTS].users[key]
    return tokens.issue(key, record["role"], record["assigned_boxes"], uid=key, ep=record["token_epoch"])


def bearer(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


def cookie(token: str | None) -> dict[str, str]:
    return {"Cookie": f"escalada_token={token}"} if token else {}


INIT = {"boxId": 1, "type": "INIT_ROUTE", "routeIndex": 1, "holdsCount": 10, "competitors": [{"nume": "Ana"}]}

# (method, path, json body, expected status per role in ROLES order)
HTTP_MATRIX = [
    ("POST", "/api/cmd", INIT, (200, 200, 403, 403, 403, 403, 401)),
    ("GET", "/api/state/1", None, (200, 200, 403, 200, 403, 403, 401)),
    ("GET", "/api/admin/audit/events", None, (200, 403, 403, 403, 403, 403, 401)),
    ("GET", "/api/admin/competition_officials", None, (200, 403, 403, 403, 403, 403, 401)),
    ("POST", "/api/admin/competition_officials", {"judgeChief": "Ana"}, (200, 403, 403, 403, 403, 403, 401)),
    ("POST", "/api/admin/auth/boxes/1/password", {"password": "judge-pass-1"}, (200, 403, 403, 403, 403, 403, 401)),
    ("POST", "/api/admin/auth/boxes/1/magic-token", {}, (410, 403, 403, 403, 403, 403, 401)),
    ("POST", "/api/admin/upload", None, (400, 403, 403, 403, 403, 403, 401)),
    ("GET", "/api/auth/me", None, (200, 200, 200, 200, 200, 403, 401)),
    ("POST", "/api/public/token", None, (200, 200, 200, 200, 200, 200, 200)),
    ("GET", "/api/public/rankings", None, (200, 200, 200, 200, 200, 200, 200)),
    ("GET", "/api/health", None, (200, 200, 200, 200, 200, 200, 200)),
    ("GET", "/metrics", None, (200, 403, 403, 403, 403, 403, 401)),
    ("POST", "/api/auth/magic-login", {}, (410, 410, 410, 410, 410, 410, 410)),
]


@pytest.mark.parametrize("method,path,body,expected", HTTP_MATRIX, ids=[f"{m} {p}" for m, p, _b, _e in HTTP_MATRIX])
async def test_http_route_by_role(anon: TestClient, method: str, path: str, body: dict | None,
                                  expected: tuple[int, ...]) -> None:
    for (role, status), carry in itertools.product(zip(ROLES, expected), (bearer, cookie)):
        response = await anon.request(method, path, json=body, headers=carry(token_for(anon, role)))
        assert response.status == status, (role, carry.__name__, await response.text())
        reply = await response.json() if response.content_type == "application/json" else None
        if status >= 400:
            assert isinstance(reply["detail"], str)
        if status == 401 and path != "/api/auth/magic-login":
            assert reply["detail"] == "not_authenticated"


async def test_forbidden_reasons_are_the_ones_the_ui_knows(anon: TestClient) -> None:
    async def detail(role: str, method: str, path: str, body: dict | None = None) -> str:
        response = await anon.request(method, path, json=body, headers=bearer(token_for(anon, role)))
        return (await response.json())["detail"]

    assert await detail("judge2", "POST", "/api/cmd", INIT) == "forbidden_box"
    assert await detail("viewer_all", "POST", "/api/cmd", INIT) == "forbidden_role"
    assert await detail("judge1", "GET", "/api/admin/audit/events") == "forbidden_role"
    # Authorization comes before body validation: a judge never learns what a bad body looks like.
    assert await detail("judge2", "POST", "/api/cmd", {"boxId": "abc", "type": "START_TIMER"}) == "forbidden_box"


@pytest.mark.parametrize("query_role,expected", [("spectator", 200), ("admin", 403), (None, 401)])
async def test_spectator_routes_need_a_spectator_token(anon: TestClient, query_role: str | None,
                                                       expected: int) -> None:
    token = token_for(anon, query_role) if query_role else None
    for path in ("/api/public/boxes", "/api/public/officials"):
        url = f"{path}?token={token}" if token else path
        response = await anon.get(url)
        assert response.status == expected, path
        if expected == 401:
            assert (await response.json())["detail"] == "token_required"
        if expected == 403:
            assert (await response.json())["detail"] == "spectator_token_required"


@pytest.mark.parametrize("role,code", [("admin", None), ("judge1", None), ("judge2", 4403), ("viewer_all", None),
                                       ("viewer2", 4403), ("spectator", 4403), ("anonymous", 4401)])
async def test_box_socket_by_role(anon: TestClient, role: str, code: int | None) -> None:
    token = token_for(anon, role)
    url = f"/api/ws/1?token={token}" if token else "/api/ws/1"
    ws = await anon.ws_connect(url)
    message = await ws.receive(timeout=5)
    if code is None:
        assert message.type == WSMsgType.TEXT and orjson.loads(message.data)["type"] == "STATE_SNAPSHOT"
    else:
        assert message.type == WSMsgType.CLOSE and message.data == code, message
    await ws.close()


@pytest.mark.parametrize("role,accepted", [("spectator", True), ("admin", False), ("anonymous", False)])
async def test_public_box_socket_needs_a_spectator_token(anon: TestClient, role: str, accepted: bool) -> None:
    token = token_for(anon, role)
    ws = await anon.ws_connect(f"/api/public/ws/1?token={token}" if token else "/api/public/ws/1")
    message = await ws.receive(timeout=5)
    if accepted:
        snapshot = orjson.loads(message.data)
        assert snapshot["type"] == "STATE_SNAPSHOT" and snapshot["initiated"] is False
    else:
        assert message.type == WSMsgType.CLOSE and message.data == 4401
    await ws.close()


async def test_public_aggregate_socket_is_open_with_or_without_token(anon: TestClient) -> None:
    for url in ("/api/public/ws", f"/api/public/ws?token={token_for(anon, 'spectator')}"):
        ws = await anon.ws_connect(url)
        assert orjson.loads((await ws.receive(timeout=5)).data)["type"] == "PUBLIC_STATE_SNAPSHOT"
        await ws.close()


async def test_expired_and_tampered_tokens_are_refused_with_their_reason(anon: TestClient) -> None:
    tokens = anon.app[TOKENS]
    good = tokens.issue("admin", "admin", [])
    tampered = good[:-4] + ("AAAA" if not good.endswith("AAAA") else "BBBB")
    response = await anon.get("/api/state/1", headers=bearer(tampered))
    assert (response.status, (await response.json())["detail"]) == (401, "invalid_token")
    response = await anon.get("/api/state/1", headers=bearer("not.a.jwt"))
    assert (response.status, (await response.json())["detail"]) == (401, "invalid_token")

    past = TokenService(tokens_secret(anon), 60, clock=lambda: time.time() - 3600)
    expired = past.issue("admin", "admin", [])
    response = await anon.get("/api/state/1", headers=bearer(expired))
    assert (response.status, (await response.json())["detail"]) == (401, "token_expired")
    ws = await anon.ws_connect(f"/api/ws/1?token={expired}")
    closing = await ws.receive(timeout=5)
    assert closing.type == WSMsgType.CLOSE and closing.data == 4401 and closing.extra == "token_expired"


def tokens_secret(client: TestClient) -> str:
    return (client.app[CONFIG].storage_dir / "jwt_secret").read_text().strip()


@pytest.mark.parametrize("role,code", [("admin", None), ("judge1", 4403), ("viewer_all", 4403), ("spectator", 4403),
                                       ("anonymous", 4401)])
async def test_ops_socket_by_role(anon: TestClient, role: str, code: int | None) -> None:
    for carry in ("query", "cookie"):
        token = token_for(anon, role)
        if carry == "query":
            ws = await anon.ws_connect(f"/api/ops/ws?token={token}" if token else "/api/ops/ws")
        else:
            ws = await anon.ws_connect("/api/ops/ws", headers=cookie(token))
        message = await ws.receive(timeout=5)
        if code is None:
            assert message.type == WSMsgType.TEXT and orjson.loads(message.data)["type"] == "OPS_SUMMARY"
        else:
            assert message.type == WSMsgType.CLOSE and message.data == code, (carry, message)
        await ws.close()
