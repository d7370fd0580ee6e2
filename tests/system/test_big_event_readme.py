"""The README's "Big events" story as written: its redis.conf lines (TLS only, the two accounts) run
in a real redis-server, the core and an edge reach it over rediss://, and the edges' account is
refused a write by redis-cli, as the README shows.

Only what a test must change is changed: the port, the certificate's paths, and `bind` (tests bind
only 127.0.0.1). The certificate is the test's own, so the URLs carry `?ssl_ca_certs=`, as the
README says for a certificate of one's own CA.
"""
from __future__ import annotations

import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from aiohttp import ClientSession

from tests.conftest import ROOT
from tests.redis_server import CORE_USER, EDGE_USER, START_TIMEOUT_S, core_acl, edge_acl, free_port, unavailable
from tests.system.edge_cluster import admin_session, get_json, health, init_boxes, spectator_token, until
from tests.system.test_behind_nginx import self_signed_certificate

README = (ROOT / "README.md").read_text()
SECTION = README[README.index("## Big events"):]
SECTION = SECTION[:SECTION.index("\n## ", 1)]
PREFIX = "final2026"  # the README's
CORE_PW, EDGE_PW = "core-password-from-the-readme-test", "edge-password-from-the-readme-test"
SPECTATOR_SECRET = "spectator-secret-for-the-readme-test-0123456789"


def readme_redis_conf() -> str:
    """The README's redis.conf block."""
    blocks = re.findall(r"^```[a-z]*\n(.*?)^```$", SECTION, re.DOTALL | re.MULTILINE)
    [conf] = [block for block in blocks if block.startswith("bind ")]
    return conf


def test_the_readmes_account_lines_are_the_ones_the_edge_tests_run() -> None:
    users = {line.split()[1]: line.split()[2:] for line in readme_redis_conf().splitlines()
             if line.startswith("user belay-")}
    for user, placeholder, rule in ((CORE_USER, "CORE_PW", core_acl(PREFIX)), (EDGE_USER, "EDGE_PW", edge_acl(PREFIX))):
        expected = [word for word in rule[1:] if word != "reset"]  # the tests' rule starts from a clean account
        expected[1] = f">{placeholder}"  # the tests' own password
        assert users[user] == expected, user


class TlsRedis:
    """redis-server started from the README's lines."""

    def __init__(self, folder: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            unavailable("redis-server is not installed")
        self.cert, key = self_signed_certificate(folder)
        self.port = free_port()
        conf = (readme_redis_conf()
                .replace("bind 0.0.0.0 ::", "bind 127.0.0.1")
                .replace("tls-port 6380", f"tls-port {self.port}")
                .replace("/etc/redis/tls/fullchain.pem", str(self.cert))
                .replace("/etc/redis/tls/privkey.pem", str(key))
                .replace(">CORE_PW", f">{CORE_PW}").replace(">EDGE_PW", f">{EDGE_PW}"))
        (folder / "redis.conf").write_text(conf + f'dir {folder}\nsave ""\n')
        self._log = open(folder / "redis.log", "wb")  # noqa: SIM115 - closed by stop()
        self.proc = subprocess.Popen([binary, str(folder / "redis.conf")], stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                with redis.Redis.from_url(self.url(CORE_USER, CORE_PW), socket_timeout=5) as client:
                    client.ping()
                return
            except redis.ConnectionError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"redis-server did not start: {(folder / 'redis.log').read_text()}") from None
                time.sleep(0.05)

    def url(self, user: str, password: str) -> str:
        return f"rediss://{user}:{password}@localhost:{self.port}/0?ssl_ca_certs={self.cert}"

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait(10)
        self._log.close()


@pytest.fixture
def tls_redis(tmp_path: Path) -> Iterator[TlsRedis]:
    folder = tmp_path / "redis"
    folder.mkdir()
    server = TlsRedis(folder)
    try:
        yield server
    finally:
        server.stop()


async def test_the_core_and_an_edge_follow_the_readme_over_tls(tls_redis: TlsRedis, tmp_path: Path, spawn_server,
                                                               http: ClientSession) -> None:
    common = {"REDIS_PREFIX": PREFIX, "SPECTATOR_JWT_SECRET": SPECTATOR_SECRET}
    core = spawn_server(tmp_path / "data", env={"REDIS_URL": tls_redis.url(CORE_USER, CORE_PW), **common})
    edge = spawn_server(tmp_path / "edge", command=("edge", "--host", "127.0.0.1", "--port", "0"),
                        env={"REDIS_URL": tls_redis.url(EDGE_USER, EDGE_PW), **common})
    assert (await health(http, edge.url))["redis"]["connected"]
    async with await admin_session(core.url) as admin:
        await init_boxes(admin, core.url, range(1))
    token = await spectator_token(http, edge.url)

    async def listed() -> bool:
        status, body = await get_json(http, f"{edge.url}/api/public/boxes?token={token}")
        return status == 200 and [box["boxId"] for box in body["boxes"]] == [0]

    await until(listed, "the core's box on the edge, through Redis over TLS")
    status, core_health = await get_json(http, f"{core.url}/health")
    assert status == 200 and core_health["details"]["redis"]["connected"]

    cli = shutil.which("redis-cli")
    if cli is not None:  # the README's check of the edges' account, with the test's own CA
        probe = subprocess.run([cli, "--tls", "--cacert", str(tls_redis.cert), "-u",
                                tls_redis.url(EDGE_USER, EDGE_PW).split("?")[0], "SET", f"{PREFIX}:probe", "1"],
                               capture_output=True, text=True, timeout=30, check=False)
        assert "NOPERM this user has no permissions to run the 'set' command" in probe.stdout, probe
