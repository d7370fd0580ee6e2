"""The example nginx configuration (docs/deploy/nginx-belay.conf), rendered with free ports and temp
paths, in front of `run.py` processes: spectators from anywhere, everything else from the venue
network only, and the client's own address reaching the core through --trusted-proxies.

Loopback stands in for the networks: nginx listens on 127.0.0.1 and reaches the core from there
(the one trusted proxy), the venue is 127.0.0.2-3, and 127.0.0.9 is a phone on the internet.
"""
from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import ssl
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import orjson
import pytest
from aiohttp import ClientSession, TCPConnector, WSMsgType

from tests.conftest import ADMIN_PASSWORD, ROOT, ServerProcess
from tests.transport.test_live_protocol import init_route

TEMPLATE = ROOT / "docs" / "deploy" / "nginx-belay.conf"
PROXY, JUDGE, GUESSER, PHONE = "127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.9"
VENUE_NETWORK = "127.0.0.2/31"  # JUDGE and GUESSER, not PHONE
INDEX_HTML = "<!doctype html><title>Belay UI build</title>"
MIME_TYPES = Path("/etc/nginx/mime.types")


def _binary(name: str) -> str:
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")
    if found is None:
        reason = f"{name} is not installed (apt-get install -y nginx; .ci/run does)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{reason}, and CI=true forbids skipping")
        pytest.skip(reason)
    return found


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def render_site(values: dict[str, str]) -> str:
    """What envsubst does with the README's command: only the BELAY_ names are replaced."""
    text = TEMPLATE.read_text()
    for name, value in values.items():
        text = text.replace("${" + name + "}", value)
    left = re.findall(r"\$\{BELAY_[A-Z0-9_]+\}", text)
    assert not left, f"the example names values the test does not fill: {left}"
    return text


def self_signed_certificate(folder: Path) -> tuple[Path, Path]:
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run([_binary("openssl"), "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"], check=True, capture_output=True)
    return cert, key


class Nginx:
    """nginx in the foreground with its prefix, pid and logs in a temp folder."""

    def __init__(self, folder: Path, site: str) -> None:
        folder.mkdir()
        (folder / "belay.conf").write_text(site)
        user = "user root;\n" if os.geteuid() == 0 else ""  # workers must read the temp folder
        temp_paths = "".join(f"    {kind}_temp_path {folder / kind};\n"
                             for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
        # As Debian's nginx.conf does around the sites it includes (the UI's scripts need their type).
        mime = f"    include {MIME_TYPES};\n" if MIME_TYPES.exists() else ""
        (folder / "nginx.conf").write_text(
            f"daemon off;\n{user}worker_processes 1;\npid {folder / 'nginx.pid'};\n"
            f"error_log {folder / 'error.log'} info;\nevents {{ worker_connections 256; }}\n"
            f"http {{\n    access_log {folder / 'access.log'};\n{temp_paths}{mime}"
            "    default_type application/octet-stream;\n"
            f"    include {folder / 'belay.conf'};\n}}\n")
        command = [_binary("nginx"), "-p", f"{folder}/", "-c", str(folder / "nginx.conf"),
                   "-e", str(folder / "error.log")]
        checked = subprocess.run([*command, "-t"], check=False, capture_output=True, text=True)
        assert checked.returncode == 0, checked.stderr
        self.proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def wait_for(self, *ports: int, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        for port in ports:
            while True:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"nginx exited: {self.proc.stderr.read().decode() if self.proc.stderr else ''}")
                with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"nginx did not listen on {port}")
                time.sleep(0.05)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        if self.proc.stderr:
            self.proc.stderr.close()


class Deployment:
    def __init__(self, core: ServerProcess, ui_port: int, api_port: int, cert: Path) -> None:
        self.core = core
        self.ui = f"https://127.0.0.1:{ui_port}"
        self.api = f"https://127.0.0.1:{api_port}"
        self.tls = ssl.create_default_context(cafile=str(cert))

    def client_from(self, address: str) -> ClientSession:
        """A browser at `address`, trusting the test's certificate."""
        return ClientSession(connector=TCPConnector(ssl=self.tls, local_addr=(address, 0)))


@pytest.fixture
def deployment(tmp_path: Path) -> Iterator[Deployment]:
    nginx_binary = _binary("nginx")  # skip before anything starts
    assert nginx_binary
    cert, key = self_signed_certificate(tmp_path)
    ui_root = tmp_path / "ui"
    ui_root.mkdir()
    (ui_root / "index.html").write_text(INDEX_HTML)
    (ui_root / "assets").mkdir()
    (ui_root / "assets" / "index-3f9a.js").write_text("export {};\n")
    core = ServerProcess(tmp_path / "data", "--trusted-proxies", PROXY)
    proxy = None
    try:
        core_address = core.url.removeprefix("http://")
        ui_port, api_port = free_port(), free_port()
        proxy = Nginx(tmp_path / "nginx", render_site({
            "BELAY_SERVER_NAME": "localhost", "BELAY_UI_LISTEN": f"127.0.0.1:{ui_port}",
            "BELAY_API_LISTEN": f"127.0.0.1:{api_port}", "BELAY_TLS_CERT": str(cert), "BELAY_TLS_KEY": str(key),
            "BELAY_UI_ROOT": str(ui_root), "BELAY_CORE": core_address,
            # Until edges exist the spectator upstream is the core (twice, as two edges would be).
            "BELAY_EDGE_1": core_address, "BELAY_EDGE_2": core_address,
            "BELAY_VENUE_NETWORK": VENUE_NETWORK}))
        proxy.wait_for(ui_port, api_port)
        yield Deployment(core, ui_port, api_port, cert)
    finally:
        if proxy is not None:
            proxy.stop()
        core.close()


@contextlib.asynccontextmanager
async def admin_at(deployment: Deployment, address: str) -> AsyncIterator[ClientSession]:
    async with deployment.client_from(address) as session:
        response = await session.post(f"{deployment.api}/api/auth/login",
                                      json={"username": "admin", "password": ADMIN_PASSWORD})
        assert response.status == 200, await response.text()
        token = (await response.json())["access_token"]
        session.headers["Authorization"] = f"Bearer {token}"
        yield session


async def next_message(ws, timeout: float = 10.0) -> dict:
    message = await ws.receive(timeout=timeout)
    assert message.type == WSMsgType.TEXT, message
    return orjson.loads(message.data)


async def test_a_phone_on_the_internet_follows_a_box_through_nginx(deployment: Deployment) -> None:
    async with deployment.client_from(PHONE) as phone, admin_at(deployment, JUDGE) as judge:
        ui = await phone.get(f"{deployment.ui}/public/live-climbing/0")  # a route of the UI's router
        assert ui.status == 200 and await ui.text() == INDEX_HTML
        script = await phone.get(f"{deployment.ui}/assets/index-3f9a.js")
        assert script.status == 200
        assert script.headers.getall("Cache-Control") == ["public, max-age=31536000, immutable"]
        if MIME_TYPES.exists():
            assert script.content_type.endswith("javascript")
        # A page of any origin (a fan site, a broadcaster) may follow the results, without credentials.
        minted = await phone.post(f"{deployment.api}/api/public/token", headers={"Origin": "https://fans.example"})
        assert minted.status == 200 and minted.headers["Access-Control-Allow-Origin"] == "*"
        token = (await minted.json())["access_token"]
        boxes = await phone.get(f"{deployment.api}/api/public/boxes", params={"token": token})
        assert boxes.status == 200 and await boxes.json() == {"boxes": []}

        ws = await phone.ws_connect(f"{deployment.api.replace('https', 'wss')}/api/public/ws?token={token}")
        assert (await next_message(ws))["type"] == "PUBLIC_STATE_SNAPSHOT"
        assert (await judge.post(f"{deployment.api}/api/cmd", json=init_route(0))).status == 200
        update = await next_message(ws)
        assert update["type"].startswith("BOX_") and update["box"]["boxId"] == 0, update
        box_page = await phone.ws_connect(f"{deployment.api.replace('https', 'wss')}/api/public/ws/0?token={token}")
        assert (await next_message(box_page))["type"] == "STATE_SNAPSHOT"
        await box_page.close()
        await ws.close()


async def test_only_the_venue_network_reaches_the_non_public_routes(deployment: Deployment) -> None:
    async with deployment.client_from(PHONE) as phone:
        for method, path in (("POST", "/api/auth/login"), ("POST", "/api/cmd"), ("GET", "/api/state/0"),
                             ("GET", "/api/health"), ("GET", "/api/ws/0")):
            response = await phone.request(method, f"{deployment.api}{path}", json={})
            assert response.status == 403, path
            assert "venue network" in (await response.json())["detail"]
        assert (await phone.get(f"{deployment.api}/api/public/rankings")).status == 200
    async with deployment.client_from(GUESSER) as venue:
        assert (await venue.get(f"{deployment.api}/api/state/0")).status == 401  # Belay's own answer


async def test_the_core_sees_each_clients_address_through_nginx(deployment: Deployment) -> None:
    async with admin_at(deployment, JUDGE) as judge:
        # A forged header is kept to the left of the address nginx appends, and ignored.
        response = await judge.post(f"{deployment.api}/api/cmd", json=init_route(0),
                                    headers={"X-Forwarded-For": "203.0.113.66"})
        assert response.status == 200
        events = await (await judge.get(f"{deployment.api}/api/admin/audit/events", params={"limit": "1"})).json()
        assert events[0]["actorIp"] == JUDGE

    async with deployment.client_from(GUESSER) as guesser:
        for _ in range(5):
            wrong = await guesser.post(f"{deployment.api}/api/auth/login", json={"username": "admin", "password": "x"})
            assert wrong.status == 401
        locked = await guesser.post(f"{deployment.api}/api/auth/login",
                                    json={"username": "admin", "password": ADMIN_PASSWORD})
        assert locked.status == 429
    async with admin_at(deployment, JUDGE):
        pass  # the guesser's lock is the guesser's alone


def test_the_examples_header_sets_every_value_the_example_names() -> None:
    text = TEMPLATE.read_text()
    names = set(re.findall(r"\$\{(BELAY_[A-Z0-9_]+)\}", text))
    header = text.split("\n\n", 1)[0]  # the comment block with the export lines
    assert names, "the example is a template"
    assert not [name for name in names if f" {name}=" not in header], names
