"""CORS with credentials on every response, errors included; preflights before auth and limits."""
from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient

ALLOWED = ["http://127.0.0.1:4173", "http://localhost:5173", "http://scoreboard.local:8080",
           "http://192.168.1.20:5173", "http://10.0.0.7"]
REFUSED = ["http://evil.example", "http://127.0.0.1.evil.example", "null", "http://192.168.1.20.nip.io"]


async def test_preflight_from_an_allowed_origin_is_answered_before_auth(anonymous: TestClient) -> None:
    for origin in ALLOWED:
        response = await anonymous.options("/api/cmd", headers={
            "Origin": origin, "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type"})
        assert response.status == 204, origin
        assert response.headers["Access-Control-Allow-Origin"] == origin
        assert response.headers["Access-Control-Allow-Credentials"] == "true"
        assert "POST" in response.headers["Access-Control-Allow-Methods"]
        assert response.headers["Access-Control-Allow-Headers"].lower() == "content-type"


async def test_refused_origins_get_no_cors_headers(anonymous: TestClient) -> None:
    for origin in REFUSED:
        preflight = await anonymous.options("/api/cmd", headers={"Origin": origin,
                                                                 "Access-Control-Request-Method": "POST"})
        assert "Access-Control-Allow-Origin" not in preflight.headers, origin
        plain = await anonymous.get("/api/health", headers={"Origin": origin})
        assert "Access-Control-Allow-Origin" not in plain.headers, origin


@pytest.mark.parametrize("method,path,body,status", [
    ("GET", "/api/health", None, 200),
    ("GET", "/api/state/1", None, 401),
    ("GET", "/api/nowhere", None, 404),
    ("POST", "/api/auth/login", {"username": "x", "password": "y"}, 401),
    ("POST", "/api/auth/magic-login", {}, 410),
    ("PUT", "/api/cmd", {}, 405),
])
async def test_every_response_carries_cors_headers(anonymous: TestClient, method: str, path: str,
                                                   body: dict | None, status: int) -> None:
    origin = "http://127.0.0.1:4173"
    response = await anonymous.request(method, path, json=body, headers={"Origin": origin})
    assert response.status == status
    assert response.headers["Access-Control-Allow-Origin"] == origin
    assert response.headers["Access-Control-Allow-Credentials"] == "true"
    assert "Origin" in response.headers.getall("Vary")


async def test_cors_on_413_and_429(client: TestClient) -> None:
    origin = "http://192.168.0.10:5173"
    big = await client.post("/api/cmd", data=b"x" * (2 << 20), headers={"Origin": origin})
    assert big.status == 413 and big.headers["Access-Control-Allow-Origin"] == origin
    for _ in range(10):
        response = await client.post("/api/auth/login", json={"username": "ghost", "password": "x"},
                                     headers={"Origin": origin})
    assert response.status == 429 and response.headers["Access-Control-Allow-Origin"] == origin


FOREIGN = "https://fan-site.example"


@pytest.mark.parametrize("method,path,status", [
    ("GET", "/api/public/rankings", 200),
    ("POST", "/api/public/token", 200),  # a foreign page may get a spectator token
    ("GET", "/api/public/boxes", 401),  # errors too
    ("GET", "/api/public/nowhere", 404),
])
async def test_spectator_routes_answer_any_origin_without_credentials(anonymous: TestClient, method: str,
                                                                      path: str, status: int) -> None:
    response = await anonymous.request(method, path, headers={"Origin": FOREIGN})
    assert response.status == status
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert "Access-Control-Allow-Credentials" not in response.headers


async def test_a_spectator_preflight_from_any_origin_is_answered_without_credentials(anonymous: TestClient) -> None:
    response = await anonymous.options("/api/public/officials", headers={
        "Origin": FOREIGN, "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "authorization"})
    assert response.status == 204
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert response.headers["Access-Control-Allow-Headers"].lower() == "authorization"
    assert "Access-Control-Allow-Credentials" not in response.headers


async def test_a_spectator_token_from_a_foreign_page_works_on_the_spectator_routes(anonymous: TestClient) -> None:
    token = (await (await anonymous.post("/api/public/token", headers={"Origin": FOREIGN})).json())["access_token"]
    boxes = await anonymous.get("/api/public/boxes", params={"token": token}, headers={"Origin": FOREIGN})
    assert boxes.status == 200 and boxes.headers["Access-Control-Allow-Origin"] == "*"


async def test_an_allowed_origin_keeps_its_credentialed_answer_on_the_spectator_routes(anonymous: TestClient) -> None:
    origin = "http://192.168.1.20:5173"
    response = await anonymous.get("/api/public/rankings", headers={"Origin": origin})
    assert response.headers["Access-Control-Allow-Origin"] == origin
    assert response.headers["Access-Control-Allow-Credentials"] == "true"


@pytest.mark.parametrize("path", ["/api/cmd", "/api/auth/login", "/api/publicity", "/api/public"])
async def test_other_routes_keep_refusing_a_foreign_origin(anonymous: TestClient, path: str) -> None:
    response = await anonymous.post(path, json={}, headers={"Origin": FOREIGN})
    assert response.status == 403
    assert "Access-Control-Allow-Origin" not in response.headers
    preflight = await anonymous.options(path, headers={"Origin": FOREIGN, "Access-Control-Request-Method": "POST"})
    assert "Access-Control-Allow-Origin" not in preflight.headers
