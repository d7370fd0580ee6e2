"""The bench mints its own admin tokens: a server started on a seeded directory must accept them."""
from __future__ import annotations

from pathlib import Path

from aiohttp import ClientSession

from bench.credentials import SERVER_ENV, admin_headers, seed_admin


async def test_a_server_on_a_seeded_directory_accepts_the_benchs_admin_token(spawn_server, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    seed_admin(data)
    server = spawn_server(data, env=SERVER_ENV)
    async with ClientSession(headers=admin_headers()) as session:
        async with session.get(f"{server.url}/api/admin/audit/events") as response:
            assert response.status == 200, await response.text()
