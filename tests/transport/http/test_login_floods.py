"""Logins under attack, over real sockets from several loopback addresses (all of 127.0.0.0/8 is
loopback on Linux): a judge's spellings share one count of tries, ever-new names are throttled, a
flood of bad logins is refused before it queues hashes, and the real users still get in."""
from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import ClientSession, CookieJar, TCPConnector
from aiohttp.test_utils import TestClient

from actors.accounts.hashing import MAX_IN_FLIGHT, MAX_PER_CLIENT
from tests.conftest import ADMIN_PASSWORD, login, make_config, serving
from transport.app import create_app
from transport.keys import HASHING

JUDGE_PASSWORD = "fete-16"


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[TestClient]:
    """Box 2's judge is "U16 Fete"; the test client itself is anonymous, on 127.0.0.1."""
    async with serving(create_app(make_config(tmp_path / "data")), as_admin=False) as client:
        async with from_address(client, "127.0.0.200") as admin:
            assert (await post_login(client, admin, "admin", ADMIN_PASSWORD))[0] == 200
            async with admin.post(client.make_url("/api/admin/auth/boxes/2/password"),
                                  json={"password": JUDGE_PASSWORD, "username": "U16 Fete"}) as response:
                assert response.status == 200, await response.text()
        yield client


def from_address(client: TestClient, address: str) -> ClientSession:
    """A client whose connections come from `address`; limit=0: no client-side queue of its own."""
    return ClientSession(connector=TCPConnector(local_addr=(address, 0), limit=0), cookie_jar=CookieJar(unsafe=True))


async def post_login(client: TestClient, session: ClientSession, username: str, password: str) -> tuple[int, dict, str]:
    async with session.post(client.make_url("/api/auth/login"), json={"username": username, "password": password}) as r:
        return r.status, await r.json(), r.headers.get("Retry-After", "")


async def test_every_spelling_of_a_judge_shares_one_count_of_tries(server: TestClient) -> None:
    async with from_address(server, "127.0.0.2") as attacker:
        for spelling in ("Box 2", "2", "box 2", "U16 Fete", "u16\u00a0fete"):
            assert (await post_login(server, attacker, spelling, "guess"))[0] == 401
        status, body, retry = await post_login(server, attacker, "BOX 2", JUDGE_PASSWORD)
        assert status == 429 and "rate limit" in body["detail"] and int(retry) >= 1
    async with from_address(server, "127.0.0.3") as tablet:
        status, body, _ = await post_login(server, tablet, "2", JUDGE_PASSWORD)
        assert status == 200 and body["boxes"] == [2], "the judge's own tablet is not locked out"


async def test_leading_zeros_and_non_ascii_digits_name_no_judge(server: TestClient) -> None:
    async with from_address(server, "127.0.0.4") as tablet:
        for spelling in ("02", "0002", "Box 02", "٢", "２"):
            refused = (401, {"detail": "invalid_credentials"}, "")
            assert await post_login(server, tablet, spelling, JUDGE_PASSWORD) == refused
        assert (await post_login(server, tablet, "Box 2", JUDGE_PASSWORD))[0] == 200


async def test_ever_new_names_from_one_address_are_throttled_and_nobody_else_is(server: TestClient) -> None:
    async with from_address(server, "127.0.0.5") as prober:
        statuses = [(await post_login(server, prober, f"nobody-{n}", "guess"))[0] for n in range(25)]
        assert statuses[:20] == [401] * 20 and statuses[20:] == [429] * 5
        assert (await post_login(server, prober, "admin", ADMIN_PASSWORD))[0] == 429, "that address, for every name"
    async with from_address(server, "127.0.0.6") as laptop:
        assert (await post_login(server, laptop, "admin", ADMIN_PASSWORD))[0] == 200


async def test_a_flood_of_bad_logins_from_one_address_does_not_keep_the_admin_out(server: TestClient) -> None:
    hashing = server.app[HASHING]
    async with from_address(server, "127.0.0.7") as attacker, from_address(server, "127.0.0.8") as laptop:
        flood = [asyncio.create_task(post_login(server, attacker, secrets.token_hex(6), "guess")) for _ in range(200)]
        while not any(task.done() for task in flood):  # the flood is under way
            await asyncio.sleep(0.001)
        status, body, _ = await post_login(server, laptop, "admin", ADMIN_PASSWORD)
        replies = await asyncio.gather(*flood)
    assert status == 200 and body["role"] == "admin"
    refused = [(body, retry) for status, body, retry in replies if status == 429]
    assert {status for status, _, _ in replies} <= {401, 429}
    assert len(refused) >= 200 - 20 - MAX_PER_CLIENT, "beyond the address's failures nothing is hashed"
    assert all("rate limit" in body["detail"] and int(retry) >= 1 for body, retry in refused)
    assert hashing.peak_per_client <= MAX_PER_CLIENT and hashing.peak <= MAX_IN_FLIGHT
    assert hashing.in_flight == 0


async def test_concurrent_guesses_cannot_outrun_the_five_tries(server: TestClient) -> None:
    # Every guess used to pass the throttle before any had failed: 100 at once were 100 tries.
    async with from_address(server, "127.0.0.12") as attacker:
        replies = await asyncio.gather(*(post_login(server, attacker, "admin", f"guess-{n}") for n in range(100)))
    checked = sum(status == 401 for status, _, _ in replies)
    assert checked <= 5 + MAX_PER_CLIENT
    assert {status for status, _, _ in replies} <= {401, 429}


async def test_many_addresses_together_cannot_pass_the_servers_total(server: TestClient) -> None:
    hashing = server.app[HASHING]
    sessions = [from_address(server, f"127.0.1.{n}") for n in range(1, 41)]  # 40 addresses x 3 = 120 at once
    try:
        replies = await asyncio.gather(*(post_login(server, session, secrets.token_hex(6), "guess")
                                         for session in sessions for _ in range(3)))
    finally:
        await asyncio.gather(*(session.close() for session in sessions))
    assert {status for status, _, _ in replies} <= {401, 429}
    assert any(status == 429 for status, _, _ in replies)
    assert hashing.peak <= MAX_IN_FLIGHT and hashing.peak_per_client <= MAX_PER_CLIENT
    async with from_address(server, "127.0.0.9") as laptop:
        assert (await post_login(server, laptop, "admin", ADMIN_PASSWORD))[0] == 200


async def test_a_dozen_tablets_logging_in_at_once_all_get_in(server: TestClient) -> None:
    await login(server)  # as admin, from 127.0.0.1, to set the judges' passwords
    for box in range(12):
        response = await server.post(f"/api/admin/auth/boxes/{box}/password", json={"password": f"judge-{box:02}"})
        assert response.status == 200, await response.text()
    tablets = [from_address(server, f"127.0.2.{box + 1}") for box in range(12)]
    try:
        replies = await asyncio.gather(*(post_login(server, tablet, f"Box {box}", f"judge-{box:02}")
                                         for box, tablet in enumerate(tablets)))
    finally:
        await asyncio.gather(*(tablet.close() for tablet in tablets))
    assert [(status, body["boxes"]) for status, body, _ in replies] == [(200, [box]) for box in range(12)]


async def test_setting_judge_passwords_is_bounded_like_logins(server: TestClient) -> None:
    await login(server)
    hashing = server.app[HASHING]
    replies = await asyncio.gather(*(server.post(f"/api/admin/auth/boxes/{box}/password",
                                                 json={"password": f"judge-{box:02}"}) for box in range(20)))
    statuses = [response.status for response in replies]
    assert set(statuses) <= {200, 429} and 429 in statuses
    for response in replies:
        if response.status == 429:
            assert "rate limit" in (await response.json())["detail"]
    assert hashing.peak_per_client <= MAX_PER_CLIENT


@pytest.mark.parametrize("password", ["1", "12345", "123456", "password", "Password", "U16 Fete", " " * 3 + "abcde"])
async def test_the_api_refuses_a_weak_judge_password_and_says_the_rule(server: TestClient, password: str) -> None:
    await login(server)
    response = await server.post("/api/admin/auth/boxes/2/password",
                                 json={"password": password, "username": "U16 Fete"})
    detail = (await response.json())["detail"]
    assert response.status == 422
    assert "at least 6 characters" in detail and "well-known default" in detail
    async with from_address(server, "127.0.0.10") as tablet:
        assert (await post_login(server, tablet, "2", JUDGE_PASSWORD))[0] == 200, "the old password still works"


async def test_six_characters_are_enough_for_a_judge(server: TestClient) -> None:
    await login(server)
    response = await server.post("/api/admin/auth/boxes/2/password", json={"password": "k3-x9q"})
    assert response.status == 200
    async with from_address(server, "127.0.0.11") as tablet:
        assert (await post_login(server, tablet, "Box 2", "k3-x9q"))[0] == 200
