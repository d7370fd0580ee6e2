"""--metrics-port: /metrics without a login for a scraper, on loopback unless told otherwise."""
from __future__ import annotations

import asyncio
import re
import socket
import time
from pathlib import Path

import pytest
from aiohttp import ClientSession
from prometheus_client.parser import text_string_to_metric_families

from transport.config import ConfigError, load_config


def metrics_url(server) -> str:
    """The address the server logged for its open /metrics (it logs before `listening on`)."""
    match = re.search(r"metrics without a login on (http://\S+/metrics)", server.log())
    assert match, server.log()
    return match.group(1)


def other_local_address() -> str | None:
    """An address of this machine that is not loopback, if it has one (no packet is sent)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # TEST-NET-1: only picks the outgoing interface
        except OSError:
            return None
        address = probe.getsockname()[0]
    return None if address.startswith("127.") or address == "0.0.0.0" else address


async def test_the_metrics_port_serves_without_a_login_on_loopback(spawn_server, tmp_path: Path,
                                                                   http: ClientSession) -> None:
    server = spawn_server(tmp_path / "data", "--metrics-port", "0")
    url = metrics_url(server)
    assert url.startswith("http://127.0.0.1:")
    port = int(url.split(":")[2].split("/")[0])
    async with http.get(f"{server.url}/metrics") as response:  # the main port still wants an admin
        assert response.status == 401
    deadline = time.monotonic() + 10
    while True:  # the collector routine runs every 0.1 s; its first young collection shows up
        async with http.get(url) as response:
            assert response.status == 200
            text = await response.text()
        families = {family.name: family for family in text_string_to_metric_families(text)}
        young = [s.value for s in families["belay_gc_pause_seconds"].samples
                 if s.name.endswith("_count") and s.labels == {"generation": "young"}]
        if young[0] > 0 or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.1)
    assert young[0] > 0
    assert "belay_commands" in families and "process_cpu_seconds" in families
    async with http.get(url.replace("/metrics", "/api/health")) as response:  # only /metrics is open
        assert response.status == 404
        assert (await response.json())["detail"] == "not found"
    address = other_local_address()
    if address is not None:
        with socket.socket() as outside:
            outside.settimeout(2)
            with pytest.raises(OSError):
                outside.connect((address, port))
    assert server.terminate() == 0


def test_the_metrics_host_defaults_to_loopback_and_the_ports_must_differ() -> None:
    config = load_config(None, {"METRICS_PORT": "9100"})
    assert (config.metrics_host, config.metrics_port) == ("127.0.0.1", 9100)
    assert load_config(None, {}).metrics_port is None
    with pytest.raises(ConfigError):
        load_config(None, {"METRICS_PORT": "8000", "PORT": "8000"})
    with pytest.raises(ConfigError):
        load_config(None, {"METRICS_PORT": "70000"})
