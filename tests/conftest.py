"""Shared fixtures: an in-process server on a real socket, and run.py in a subprocess."""
from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from aiohttp import ClientSession, web
from aiohttp.test_utils import TestClient, TestServer

from tests.persistence.postgres.database import fresh_database
from tests.redis_server import redis_server  # noqa: F401 - a fixture for every test (a real redis-server)
from transport.app import create_app
from transport.config import Config

ROOT = Path(__file__).resolve().parent.parent


ADMIN_PASSWORD = "admin-password-for-tests"


def make_config(storage_dir: Path, **overrides: object) -> Config:
    # Backups stay beside the storage dir in tmp, and only when a test asks for one.
    settings: dict[str, object] = {"default_admin_password": ADMIN_PASSWORD,
                                   "backup_dir": storage_dir.parent / "backups", "backup_interval_min": 0, **overrides}
    return Config(host="127.0.0.1", port=0, storage_dir=storage_dir, **settings)  # type: ignore[arg-type]


async def assert_silent(ws, seconds: float = 0.3) -> None:
    """Nothing arrives on the socket within `seconds` (a failed command broadcasts nothing)."""
    try:
        frame = await asyncio.wait_for(ws.receive(), seconds)
    except TimeoutError:
        return
    raise AssertionError(f"nothing may be broadcast for a failed command, got {frame.type}: {frame.data!r}")


async def login(client: TestClient, username: str = "admin", password: str = ADMIN_PASSWORD) -> dict:
    """Log in; the client's cookie jar keeps the escalada_token cookie for later requests."""
    response = await client.post("/api/auth/login", json={"username": username, "password": password})
    assert response.status == 200, await response.text()
    return await response.json()


@contextlib.asynccontextmanager
async def serving(app: web.Application, *, as_admin: bool = True) -> AsyncIterator[TestClient]:
    """The app on a real socket (127.0.0.1, OS-assigned port), logged in as admin by default."""
    async with TestClient(TestServer(app, host="127.0.0.1", port=0)) as test_client:
        if as_admin:
            await login(test_client)
        yield test_client


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test run (tests/persistence/postgres/database.py)."""
    yield from fresh_database()


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[TestClient]:
    async with serving(create_app(make_config(tmp_path / "data"))) as test_client:
        yield test_client


@pytest.fixture
async def anonymous(tmp_path: Path) -> AsyncIterator[TestClient]:
    async with serving(create_app(make_config(tmp_path / "data")), as_admin=False) as test_client:
        yield test_client


class ServerProcess:
    """`python run.py` on an OS-assigned port; stdout is read until it says where it listens."""

    def __init__(self, storage_dir: Path, *extra: str, env: dict[str, str] | None = None,
                 command: tuple[str, ...] | None = None) -> None:
        """`command`: other run.py arguments than the server's (an edge: `("edge", ...)`)."""
        self.storage_dir = storage_dir
        self.log_path = storage_dir.parent / f"server-{time.monotonic_ns()}.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - the server writes to it until stop() closes it
        full_env = {**os.environ, "PYTHONUNBUFFERED": "1", "DEFAULT_ADMIN_PASSWORD": ADMIN_PASSWORD,
                    "BACKUP_DIR": str(storage_dir.parent / "backups"), "BACKUP_INTERVAL_MIN": "0", **(env or {})}
        arguments = command or ("--host", "127.0.0.1", "--port", "0", "--storage-dir", str(storage_dir), *extra)
        self.proc = subprocess.Popen(
            [sys.executable, str(ROOT / "run.py"), *arguments],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=self._log, env=full_env,
        )
        self.url = self._wait_for_url()

    def _wait_for_url(self, timeout: float = 30.0) -> str:
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline().decode()
            if not line:
                raise RuntimeError(f"server exited early: {self.log()}")
            match = re.match(r"listening on (http://\S+)", line)
            if match:
                return match.group(1)
        raise RuntimeError("server did not start in time")

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def terminate(self, timeout: float = 30.0) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(10)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.kill()
        if self.proc.stdout:
            self.proc.stdout.close()
        self._log.close()


@pytest.fixture
def spawn_server(tmp_path: Path) -> Iterator:
    started: list[ServerProcess] = []

    def spawn(storage_dir: Path | None = None, *extra: str, env: dict[str, str] | None = None,
              command: tuple[str, ...] | None = None) -> ServerProcess:
        server = ServerProcess(storage_dir or tmp_path / "data", *extra, env=env, command=command)
        started.append(server)
        return server

    yield spawn
    for server in started:
        server.close()


@pytest.fixture
async def http() -> AsyncIterator[ClientSession]:
    async with ClientSession() as session:
        yield session


class FakeClock:
    """A clock the tests move by hand, for every time-dependent auth part (tokens, limits, throttles)."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(1_700_000_000.0)
