"""Behind a trusted reverse proxy, X-Forwarded-For names the client for the login throttle, the
rate limits and the audit; from anyone else it is ignored; hostile values never cause a 500."""
from __future__ import annotations

from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient

from tests.conftest import ADMIN_PASSWORD, make_config, serving
from tests.transport.test_live_protocol import init_route, state
from transport.app import create_app
from transport.config import ConfigError, load_config

PROXY = "127.0.0.1"  # the tests' own address: the role nginx plays in production
CLIENT = "203.0.113.9"
OTHER = "198.51.100.4"


def behind_proxy(tmp_path: Path, trusted: str = PROXY) -> serving:
    return serving(create_app(make_config(tmp_path / "data", trusted_proxies=trusted)))


async def audited_address(client: TestClient, *forwarded: str) -> str:
    """The address the audit records for a command sent with these X-Forwarded-For headers."""
    headers = [("X-Forwarded-For", value) for value in forwarded]
    response = await client.post("/api/cmd", json=init_route(0), headers=headers)
    assert response.status == 200, await response.text()
    events = await (await client.get("/api/admin/audit/events", params={"limit": "1"})).json()
    return events[0]["actorIp"]


async def test_without_trusted_proxies_the_header_is_ignored(client: TestClient) -> None:
    assert await audited_address(client, CLIENT) == "127.0.0.1"


async def test_a_peer_that_is_not_a_trusted_proxy_is_not_believed(tmp_path: Path) -> None:
    async with behind_proxy(tmp_path, "10.0.0.1, 192.168.0.0/16") as client:
        assert await audited_address(client, CLIENT) == "127.0.0.1"


async def test_behind_a_trusted_proxy_the_audit_records_the_right_most_untrusted_address(tmp_path: Path) -> None:
    async with behind_proxy(tmp_path, "127.0.0.0/8") as client:
        # The client wrote the left part itself; the proxy appended what it saw.
        assert await audited_address(client, f"{OTHER}, {CLIENT}") == CLIENT
        assert await audited_address(client, f"{OTHER}, {CLIENT}, 127.0.0.5") == CLIENT


# (X-Forwarded-For headers, the address that counts). The peer is the trusted proxy 127.0.0.1.
HOSTILE = [
    ((f"  {CLIENT}\t",), CLIENT),
    (("garbage",), PROXY),  # nothing an address: the proxy's own
    ((f"{CLIENT}, garbage",), PROXY),  # the walk stops at the first hop it cannot read
    ((f"garbage, {CLIENT}",), CLIENT),
    ((",,, ,",), PROXY),
    (("",), PROXY),
    (("unknown",), PROXY),
    (("2001:db8::7",), "2001:db8::7"),
    (("[2001:db8::7]:4711",), "2001:db8::7"),
    (("[2001:db8::7",), PROXY),
    ((f"{CLIENT}:4711",), CLIENT),
    ((f"::ffff:{CLIENT}",), CLIENT),  # a dual-stack view of an IPv4 client is that client
    (("fe80::1%eth0",), "fe80::1%eth0"),
    (("999.1.1.1",), PROXY),
    ((f"{CLIENT}\u00e9",), PROXY),
    ((OTHER, CLIENT), CLIENT),  # several headers are one list, in order
    ((f"{CLIENT}, " + ", ".join([PROXY] * 100),), PROXY),  # past 16 hops it stops, at a proxy
    ((", ".join(["1.2.3.4"] * 800),), "1.2.3.4"),
    (("x" * 8000,), PROXY),
]


async def test_hostile_forwarded_headers_never_fail_and_never_name_a_made_up_client(tmp_path: Path) -> None:
    async with behind_proxy(tmp_path) as client:
        for headers, expected in HOSTILE:
            assert await audited_address(client, *headers) == expected, headers


async def test_five_bad_passwords_from_one_client_behind_the_proxy_do_not_lock_out_another(tmp_path: Path) -> None:
    async with behind_proxy(tmp_path) as client:
        bad = {"username": "admin", "password": "wrong"}
        for _ in range(5):
            response = await client.post("/api/auth/login", json=bad, headers={"X-Forwarded-For": CLIENT})
            assert response.status == 401
        locked = await client.post("/api/auth/login", json=bad, headers={"X-Forwarded-For": CLIENT})
        assert locked.status == 429
        good = {"username": "admin", "password": ADMIN_PASSWORD}
        other = await client.post("/api/auth/login", json=good, headers={"X-Forwarded-For": OTHER})
        assert other.status == 200


async def test_without_trust_every_client_behind_the_proxy_shares_one_lock(anonymous: TestClient) -> None:
    bad = {"username": "admin", "password": "wrong"}
    for _ in range(5):
        await anonymous.post("/api/auth/login", json=bad, headers={"X-Forwarded-For": CLIENT})
    good = {"username": "admin", "password": ADMIN_PASSWORD}
    other = await anonymous.post("/api/auth/login", json=good, headers={"X-Forwarded-For": OTHER})
    assert other.status == 429


async def test_rate_limits_count_each_client_behind_the_proxy_apart(tmp_path: Path) -> None:
    async with behind_proxy(tmp_path) as client:
        await client.post("/api/cmd", json=init_route(0))
        sync = {"boxId": 0, "type": "TIMER_SYNC", "remaining": 100, "sessionId": (await state(client))["sessionId"]}
        statuses = [(await client.post("/api/cmd", json=sync, headers={"X-Forwarded-For": CLIENT})).status
                    for _ in range(40)]
        assert 429 in statuses
        other = await client.post("/api/cmd", json=sync, headers={"X-Forwarded-For": OTHER})
        assert other.status == 200


def test_trusted_proxies_are_read_from_the_environment_and_checked() -> None:
    config = load_config(None, {"TRUSTED_PROXIES": "10.0.0.5, 192.168.1.0/24 ::1"})
    assert [str(network) for network in config.trusted_networks] == ["10.0.0.5/32", "192.168.1.0/24", "::1/128"]
    assert load_config(None, {}).trusted_networks == ()
    for wrong in ("nginx.local", "10.0.0.300", "10.0.0.0/33"):
        with pytest.raises(ConfigError, match="TRUSTED_PROXIES"):
            load_config(None, {"TRUSTED_PROXIES": wrong})
