"""Spectator tokens have their own key (SPECTATOR_JWT_SECRET): what an edge holds signs nothing else."""
from __future__ import annotations

from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient

from actors.accounts.setup import StartupRefused
from actors.accounts.tokens import TokenService
from tests.conftest import make_config, serving
from transport.app import create_app
from transport.keys import CONFIG

SPECTATOR_KEY = "spectator-key-of-this-competition-0123456789"


async def test_a_token_signed_with_the_spectators_key_is_never_a_login(tmp_path: Path) -> None:
    config = make_config(tmp_path / "data", spectator_jwt_secret=SPECTATOR_KEY)
    async with serving(create_app(config), as_admin=False) as client:
        forged = TokenService(SPECTATOR_KEY, 3600).issue("admin", "admin", [], uid="admin", ep="")
        for path in ("/api/state/1", "/api/auth/me", "/api/admin/audit/events"):
            response = await client.get(path, headers={"Authorization": f"Bearer {forged}"})
            assert (response.status, (await response.json())["detail"]) == (403, "forbidden_role"), path
        response = await client.get(f"/api/public/boxes?token={forged}")
        assert (response.status, (await response.json())["detail"]) == (403, "spectator_token_required")


async def test_spectator_tokens_of_the_same_key_work_everywhere_and_others_nowhere(tmp_path: Path) -> None:
    config = make_config(tmp_path / "data", spectator_jwt_secret=SPECTATOR_KEY)
    async with serving(create_app(config), as_admin=False) as client:
        from_an_edge = TokenService(SPECTATOR_KEY, 3600).issue_spectator()[0]
        assert (await client.get(f"/api/public/officials?token={from_an_edge}")).status == 200
        elsewhere = TokenService("another-competitions-spectator-key-000000", 3600).issue_spectator()[0]
        response = await client.get(f"/api/public/officials?token={elsewhere}")
        assert (response.status, (await response.json())["detail"]) == (401, "invalid_token")


async def test_without_the_variable_the_core_keeps_a_spectator_key_of_its_own(client: TestClient) -> None:
    token = (await (await client.post("/api/public/token")).json())["access_token"]
    assert (await client.get(f"/api/public/boxes?token={token}")).status == 200
    storage_dir = client.app[CONFIG].storage_dir
    kept = (storage_dir / "spectator_jwt_secret").read_text().strip()
    assert kept != (storage_dir / "jwt_secret").read_text().strip()
    assert TokenService(kept, 60).decode(token).role == "spectator"


def test_the_spectators_key_must_differ_from_the_login_key(tmp_path: Path) -> None:
    with pytest.raises(StartupRefused, match="SPECTATOR_JWT_SECRET must differ from JWT_SECRET"):
        create_app(make_config(tmp_path / "data", jwt_secret=SPECTATOR_KEY, spectator_jwt_secret=SPECTATOR_KEY))
