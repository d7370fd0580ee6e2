"""The example nginx configuration (docs/deploy/nginx-belay.conf), rendered with free ports and temp
paths, in front of a big event's processes: the core (`run.py`) and two edges (`run.py edge`) fed
by a real redis-server. Spectators from anywhere reach the edges, everything else only from the
venue network reaches the core, and the client's own address reaches the core through
--trusted-proxies (the edges take the same flag).

Loopback stands in for the networks: nginx listens on 127.0.0.1 and reaches the core and the edges
from there (the one trusted proxy), the venue is 127.0.0.2-3, and 127.0.0.9 is a phone on the
internet. nginx's access log names the upstream of every request, so the tests see where each went.
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
from typing import NamedTuple

import orjson
import pytest
from aiohttp import ClientSession, TCPConnector, WSMsgType

from tests.conftest import ADMIN_PASSWORD, ROOT, ServerProcess
from tests.redis_server import RedisServer
from tests.system.edge_cluster import Cluster, Spectator, get_json, health, progress, until
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


class Routed(NamedTuple):
    """One line of nginx's access log."""
    client: str
    method: str
    path: str
    status: str
    upstream: str  # "host:port" of the server that answered; "-" when nginx answered itself


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
        self.access_log = folder / "access.log"
        (folder / "nginx.conf").write_text(
            f"daemon off;\n{user}worker_processes 1;\npid {folder / 'nginx.pid'};\n"
            f"error_log {folder / 'error.log'} info;\nevents {{ worker_connections 256; }}\n"
            f"http {{\n    log_format routed '$remote_addr $request_method $uri $status $upstream_addr';\n"
            f"    access_log {self.access_log} routed;\n{temp_paths}{mime}"
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

    def routed(self) -> list[Routed]:
        """Every request finished so far (a socket's once it closed), with where nginx sent it."""
        if not self.access_log.exists():
            return []
        return [Routed(*line.split(" ", 4)) for line in self.access_log.read_text().splitlines()]

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
    def __init__(self, core: ServerProcess, edges: list[ServerProcess], proxy: Nginx, ui_port: int, api_port: int,
                 cert: Path) -> None:
        self.core = core
        self.edges = edges
        self.proxy = proxy
        self.ui = f"https://127.0.0.1:{ui_port}"
        self.api = f"https://127.0.0.1:{api_port}"
        self.tls = ssl.create_default_context(cafile=str(cert))

    def client_from(self, address: str) -> ClientSession:
        """A browser at `address`, trusting the test's certificate."""
        return ClientSession(connector=TCPConnector(ssl=self.tls, local_addr=(address, 0)))


def address_of(server: ServerProcess) -> str:
    return server.url.removeprefix("http://")


@pytest.fixture
def deployment(tmp_path: Path, redis_server: RedisServer, spawn_server) -> Iterator[Deployment]:
    """The processes stop with spawn_server's teardown, before redis_server's."""
    nginx_binary = _binary("nginx")  # skip before anything starts
    assert nginx_binary
    cert, key = self_signed_certificate(tmp_path)
    ui_root = tmp_path / "ui"
    ui_root.mkdir()
    (ui_root / "index.html").write_text(INDEX_HTML)
    (ui_root / "assets").mkdir()
    (ui_root / "assets" / "index-3f9a.js").write_text("export {};\n")
    cluster = Cluster(redis_server, tmp_path, spawn_server)
    core = cluster.start_core(TRUSTED_PROXIES=PROXY)
    edges = [cluster.start_edge(TRUSTED_PROXIES=PROXY) for _ in range(2)]
    ui_port, api_port = free_port(), free_port()
    proxy = Nginx(tmp_path / "nginx", render_site({
        "BELAY_SERVER_NAME": "localhost", "BELAY_UI_LISTEN": f"127.0.0.1:{ui_port}",
        "BELAY_API_LISTEN": f"127.0.0.1:{api_port}", "BELAY_TLS_CERT": str(cert), "BELAY_TLS_KEY": str(key),
        "BELAY_UI_ROOT": str(ui_root), "BELAY_CORE": address_of(core),
        "BELAY_EDGE_1": address_of(edges[0]), "BELAY_EDGE_2": address_of(edges[1]),
        "BELAY_VENUE_NETWORK": VENUE_NETWORK}))
    try:
        proxy.wait_for(ui_port, api_port)
        yield Deployment(core, edges, proxy, ui_port, api_port, cert)
    finally:
        proxy.stop()


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


async def test_phones_on_the_internet_follow_a_box_on_both_edges_through_nginx(deployment: Deployment,
                                                                               http: ClientSession) -> None:
    wss = deployment.api.replace("https", "wss", 1)
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

        # least_conn sends the second box page to the edge that has no socket yet: one on each edge.
        pages = [Spectator(phone, deployment.api, 0, token) for _ in deployment.edges]
        for page in pages:
            await page.__aenter__()
        await until(lambda: _spectators_per_edge(deployment, http, [1, 1]), "a box page on each edge")
        rankings = await phone.ws_connect(f"{wss}/api/public/ws", compress=15)
        try:
            assert rankings.compress == 15, "permessage-deflate is negotiated through nginx"
            assert (await next_message(rankings))["type"] == "PUBLIC_STATE_SNAPSHOT"
            assert (await judge.post(f"{deployment.api}/api/cmd", json=init_route(0))).status == 200
            await progress(judge, deployment.api, 0, 2)
            for page in pages:
                final = await page.until(lambda s: s["holdCount"] == 2)
                assert final["initiated"] and final["categorie"] == "U16-Boys"
                assert page.versions() == sorted(page.versions()), "a box never goes back"
            update: dict = {}
            while not update.get("box", {}).get("initiated"):
                update = await next_message(rankings)
                assert update["type"] == "PING" or update["box"]["boxId"] == 0, update
        finally:
            await rankings.close()
            for page in pages:
                await page.__aexit__()

        async def box_listed() -> bool:
            status, listed = await get_json(phone, f"{deployment.api}/api/public/boxes?token={token}")
            return status == 200 and [box["categorie"] for box in listed["boxes"]] == ["U16-Boys"]

        await until(box_listed, "the box in /api/public/boxes through nginx")
        status, ranked = await get_json(phone, f"{deployment.api}/api/public/rankings")
        assert status == 200 and ranked["boxes"][0]["initiated"]

    # Where nginx sent each request (a socket is logged once it has closed).
    edges = {address_of(edge) for edge in deployment.edges}
    sockets = await until(lambda: _logged(deployment.proxy, {"/api/public/ws": 1, "/api/public/ws/0": 2}),
                          "nginx's log of the three spectator sockets")
    assert {line.upstream for line in sockets if line.path == "/api/public/ws/0"} == edges
    api = [line for line in deployment.proxy.routed() if line.path.startswith("/api/")]
    assert {line.upstream for line in api if line.path.startswith("/api/public/")} <= edges
    assert {line.upstream for line in api if not line.path.startswith("/api/public/")} == {address_of(deployment.core)}


async def _spectators_per_edge(deployment: Deployment, http: ClientSession, expected: list[int]) -> bool:
    """Straight to each edge, past nginx: how many sockets it serves."""
    return [(await health(http, edge.url))["spectators"] for edge in deployment.edges] == expected


async def _logged(proxy: Nginx, expected: dict[str, int]) -> list[Routed]:
    """The log's lines for these paths once each has its number of lines (nginx logs a request
    just after answering it), else an empty list."""
    lines = [line for line in proxy.routed() if line.path in expected]
    counts = {path: sum(line.path == path for line in lines) for path in expected}
    return lines if counts == expected else []


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


async def test_a_command_through_nginx_reaches_the_core_never_an_edge(deployment: Deployment,
                                                                      http: ClientSession) -> None:
    edge = deployment.edges[0].url
    async with http.post(f"{edge}/api/cmd", json=init_route(0)) as direct:  # what an edge says to a command
        assert direct.status == 421 and "commands go to the core" in (await direct.json())["detail"]
    async with deployment.client_from(PHONE) as phone:
        refused = await phone.post(f"{deployment.api}/api/cmd", json=init_route(0))
        assert refused.status == 403 and "venue network" in (await refused.json())["detail"]  # nginx's, not 421
        # Only /api/public/ reaches the edges; whatever there is not a spectator route, the edge refuses.
        stray = await phone.post(f"{deployment.api}/api/public/cmd", json=init_route(0))
        assert stray.status == 421 and "commands go to the core" in (await stray.json())["detail"]
    async with admin_at(deployment, JUDGE) as judge:
        assert (await judge.post(f"{deployment.api}/api/cmd", json=init_route(0))).status == 200
    routed = await until(lambda: _logged(deployment.proxy, {"/api/cmd": 2}), "nginx's log of both commands")
    assert [(line.status, line.upstream) for line in routed] == [("403", "-"), ("200", address_of(deployment.core))]


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
