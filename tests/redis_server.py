"""A real Redis for tests: `redis-server` from the installed binary, started on a free port in a
temporary directory, or the one BELAY_TEST_REDIS_URL names (then it cannot be killed or
restarted). Missing both, tests skip with the reason, except under CI=true, where they fail.

Use the `redis_server` fixture (import it into a conftest or a test module). Helper 19B's nginx
test and the edge tests share it.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

REDIS_URL_ENV = "BELAY_TEST_REDIS_URL"
START_TIMEOUT_S = 20.0
EDGE_USER = "belay-edge"
EDGE_PASSWORD = "edge-password-for-tests"


def edge_acl(prefix: str, user: str = EDGE_USER, password: str = EDGE_PASSWORD) -> list[str]:
    """The README's ACL line for an edge, as ACL SETUSER arguments: read and subscribe under the
    prefix, nothing else."""
    return [user, "reset", "on", f">{password}", f"~{prefix}:*", f"&{prefix}:*", "-@all", "+get", "+mget",
            "+psubscribe", "+punsubscribe", "+subscribe", "+unsubscribe", "+ping"]


CORE_USER = "belay-core"
CORE_PASSWORD = "core-password-for-tests"


def core_acl(prefix: str) -> list[str]:
    """The README's ACL line for the core: what its publisher needs under the prefix."""
    return [CORE_USER, "reset", "on", f">{CORE_PASSWORD}", f"~{prefix}:*", f"&{prefix}:*", "-@all", "+get", "+set",
            "+del", "+mget", "+scan", "+eval", "+publish", "+multi", "+exec", "+discard", "+ping"]


class RedisServer:
    """One Redis. `restartable` is False for an external one (BELAY_TEST_REDIS_URL)."""

    def __init__(self, url: str, directory: Path | None = None, port: int | None = None) -> None:
        self.url = url
        self._directory = directory
        self._port = port
        self._proc: subprocess.Popen[bytes] | None = None
        self._acl: list[list[str]] = []  # accounts to create again after a restart (nothing is saved)
        self.prefix = f"t{uuid.uuid4().hex[:12]}"  # each test its own keys, even on a shared Redis

    @property
    def restartable(self) -> bool:
        return self._port is not None

    def url_for(self, user: str, password: str) -> str:
        """This Redis's URL with another account's credentials."""
        scheme, rest = self.url.split("://", 1)
        return f"{scheme}://{user}:{password}@{rest.split('@')[-1]}"

    def start(self) -> None:
        assert self._directory is not None and self._port is not None
        binary = shutil.which("redis-server")
        assert binary is not None
        self._log = open(self._directory / "redis.log", "ab")  # noqa: SIM115 - closed by stop()
        self._proc = subprocess.Popen(
            [binary, "--port", str(self._port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self._directory)],
            stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"redis-server exited: {(self._directory / 'redis.log').read_text()}")
            try:
                with self.client() as admin:
                    admin.ping()
                    for rule in self._acl:
                        admin.execute_command("ACL", "SETUSER", *rule)
                return
            except redis.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start in time")

    def kill(self) -> None:
        """SIGKILL: nothing saved (it saves nothing anyway), every connection cut."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.send_signal(signal.SIGKILL)
            self._proc.wait(10)
        self._proc = None
        if hasattr(self, "_log"):
            self._log.close()

    def client(self, url: str | None = None) -> redis.Redis:
        return redis.Redis.from_url(url or self.url, socket_timeout=5, socket_connect_timeout=5)

    def add_edge_account(self) -> str:
        """Creates the edges' account (the README's ACL line) and returns the URL that uses it."""
        self._add_account(edge_acl(self.prefix))
        return self.url_for(EDGE_USER, EDGE_PASSWORD)

    def add_core_account(self) -> str:
        self._add_account(core_acl(self.prefix))
        return self.url_for(CORE_USER, CORE_PASSWORD)

    def _add_account(self, rule: list[str]) -> None:
        with self.client() as admin:
            admin.execute_command("ACL", "SETUSER", *rule)
        self._acl.append(rule)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def unavailable(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} (CI=true: tests that need Redis must run)")
    pytest.skip(reason)


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    external = os.environ.get(REDIS_URL_ENV)
    if external:
        server = RedisServer(external)
        try:
            server.client().ping()
        except redis.RedisError as exc:
            unavailable(f"{REDIS_URL_ENV}={external} does not answer: {exc}")
        yield server
        with server.client() as cleanup:
            keys = list(cleanup.scan_iter(match=f"{server.prefix}:*"))
            if keys:
                cleanup.delete(*keys)
            cleanup.execute_command("ACL", "DELUSER", EDGE_USER, CORE_USER)
        return
    if shutil.which("redis-server") is None:
        unavailable(f"redis-server is not installed and {REDIS_URL_ENV} is not set")
    directory = tmp_path / "redis"
    directory.mkdir()
    port = free_port()
    server = RedisServer(f"redis://127.0.0.1:{port}/0", directory, port)
    server.start()
    try:
        yield server
    finally:
        server.kill()
