"""X-Forwarded-For from hell, behind a trusted proxy: addresses of both families with and without
ports and brackets, garbage, empty hops, stray spaces and commas, several headers. Every reply is
2xx or 4xx with {"detail"}; no traceback is logged; and the address the audit records is always
the proxy's or one of the header's own hops, never something made up from the garbage."""
from __future__ import annotations

from collections.abc import AsyncIterator
from ipaddress import ip_address
from pathlib import Path

import orjson
import pytest
from hypothesis import strategies as st

from tests.conftest import login, serving
from tests.hostile.conftest import Hostile, hostile_config
from tests.hostile.figures import record
from tests.hostile.harness import ErrorTrap, Verdicts, fuzz, send
from tests.hostile.strategies import SETUP
from transport.app import create_app

PROXY = "127.0.0.1"
ADDRESSES = st.ip_addresses().map(str)
HOPS = st.one_of(
    ADDRESSES,
    st.tuples(st.ip_addresses(v=4), st.integers(0, 99999)).map(lambda t: f"{t[0]}:{t[1]}"),
    st.tuples(st.ip_addresses(v=6), st.integers(0, 99999)).map(lambda t: f"[{t[0]}]:{t[1]}"),
    st.ip_addresses(v=4).map(lambda a: f"::ffff:{a}"),
    st.sampled_from(["", " ", "unknown", "_hidden", "[", "]", "[::1", "1.2.3", "::::", "1.2.3.4.5", "0x7f.1"]),
    st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters=","), max_size=40),
)
HEADERS = st.lists(
    st.tuples(st.lists(HOPS, min_size=0, max_size=24), st.sampled_from([",", ", ", " ,\t", ",,"]))
    .map(lambda t: t[1].join(t[0])),
    min_size=1, max_size=3)


@pytest.fixture
async def behind_proxy(tmp_path: Path) -> AsyncIterator[Hostile]:
    with ErrorTrap() as trap:
        app = create_app(hostile_config(tmp_path, trusted_proxies=PROXY))
        async with serving(app, as_admin=False) as client:
            token = (await login(client))["access_token"]
            yield Hostile(client, app, token, trap, tmp_path)


async def test_forwarded_headers_from_hell_never_fail_and_never_invent_a_client(behind_proxy: Hostile) -> None:
    hostile = behind_proxy
    verdicts = Verdicts("X-Forwarded-For")
    auth = {"Authorization": f"Bearer {hostile.token}"}

    async def forwarded(values: list[str]) -> None:
        headers = [("X-Forwarded-For", value) for value in values]
        status, _ = await send(verdicts, hostile.client, "command", "POST", "/api/cmd", values,
                               json={**SETUP, "boxId": 0}, headers=[*headers, *auth.items()])
        if status != 200:
            return
        async with hostile.client.get("/api/admin/audit/events", params={"limit": "1"}, headers=auth) as response:
            recorded = orjson.loads(await response.read())[0]["actorIp"]
        if recorded != PROXY and str(ip_address(recorded)) not in _hop_addresses(values):
            verdicts.violate("command", f"audit names {recorded!r}, not a hop of the header", values)

    await fuzz(HEADERS, forwarded)
    record("hostile.fuzz", target=verdicts.target, cases=verdicts.cases, server_errors=verdicts.server_errors,
           violations=len(verdicts.violations))
    assert not verdicts.violations, verdicts.report()
    hostile.assert_no_tracebacks()
    await hostile.assert_still_serving()


def _hop_addresses(values: list[str]) -> set[str]:
    """Every address a hop of the headers could name, in its canonical spelling."""
    found = set()
    for hop in ",".join(values).split(","):
        text = hop.strip(" \t").lstrip("[")
        for candidate in (text, text.partition("]")[0], text.rpartition(":")[0]):
            try:
                address = ip_address(candidate)
            except ValueError:
                continue
            found.add(str(getattr(address, "ipv4_mapped", None) or address))
    return found
