"""The health routes answer anyone on the LAN: without an admin login they name no paths."""
from __future__ import annotations

import errno
from pathlib import Path

from persistence.fs import FaultyFileSystem
from tests.conftest import login, make_config, serving
from tests.transport.test_live_protocol import command, init_route, post
from transport.app import create_app

HEALTH_ROUTES = ("/health", "/status/summary", "/api/health", "/api/health/ready", "/api/health/live")


async def test_health_without_login_shows_no_paths(tmp_path: Path) -> None:
    async with serving(create_app(make_config(tmp_path / "data")), as_admin=False) as anonymous:
        for path in HEALTH_ROUTES:
            response = await anonymous.get(path)
            text = await response.text()
            assert response.status == 200, (path, text)
            assert str(tmp_path) not in text and str(tmp_path.resolve()) not in text, (path, text)
            assert '"directory"' not in text, (path, text)


async def test_an_admin_sees_the_storage_directory(tmp_path: Path) -> None:
    async with serving(create_app(make_config(tmp_path / "data"))) as admin:
        for path, key in (("/api/health", "storage"), ("/health", "details")):
            report = (await (await admin.get(path)).json())[key]
            assert report["directory"] == str((tmp_path / "data").resolve()), path
        # A bearer token counts as much as the cookie; a judge or a spectator is not an admin.
        token = (await login(admin))["access_token"]
        admin.session.cookie_jar.clear()
        report = (await (await admin.get("/api/health", headers={"Authorization": f"Bearer {token}"})).json())
        assert "directory" in report["storage"]
        assert "directory" not in (await (await admin.get("/api/health")).json())["storage"]


async def test_the_last_storage_error_is_shown_without_its_path_to_anonymous(tmp_path: Path) -> None:
    fs = FaultyFileSystem()
    async with serving(create_app(make_config(tmp_path / "data"), fs=fs)) as client:
        assert (await post(client, init_route()))[0] == 200
        fs.inject("write_all", errno.ENOSPC, path_contains="events.ndjson")
        assert (await command(client, 0, "PROGRESS_UPDATE", delta=1))[0] == 503
        admin_view = (await (await client.get("/api/health")).json())["storage"]
        assert "events.ndjson" in admin_view["last_error"]
        client.session.cookie_jar.clear()
        for path, key in (("/api/health", "storage"), ("/health", "details")):
            response = await client.get(path)
            text = await response.text()
            assert str(tmp_path) not in text and "events.ndjson" not in text, (path, text)
            report = (await response.json())[key]
            assert report["degraded"] is True and report["last_error"] == "storage_unavailable", path
