"""One in-process server per test (never one per example), with a trap on the server's ERROR logs."""
from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from tests.conftest import login, make_config, serving
from tests.hostile.harness import ErrorTrap
from transport.app import create_app
from transport.keys import REGISTRY
from transport.ws.keys import HUB


@dataclass
class Hostile:
    client: TestClient
    app: web.Application
    token: str
    trap: ErrorTrap
    tmp_path: Path
    touched: set[int] = field(default_factory=set)

    @property
    def hub(self):
        return self.app[HUB]

    async def assert_still_serving(self) -> None:
        """Every box (loaded or touched) still builds a snapshot, and a valid command still works."""
        registry = self.app[REGISTRY]
        for box_id in sorted(set(registry.box_ids()) | self.touched | {0}):
            response = await self.client.get(f"/api/state/{box_id}")
            assert response.status == 200, (box_id, await response.text())
        probe = 4321
        init = {"boxId": probe, "type": "INIT_ROUTE", "routeIndex": 1, "holdsCount": 10,
                "competitors": [{"nume": "Ana Pop"}, {"nume": "Ștefan O'Connor"}], "categorie": "after-fuzz"}
        response = await self.client.post("/api/cmd", json=init)
        assert response.status == 200, await response.text()
        state = await (await self.client.get(f"/api/state/{probe}")).json()
        response = await self.client.post("/api/cmd", json={"boxId": probe, "type": "PROGRESS_UPDATE", "delta": 1,
                                                            "sessionId": state["sessionId"],
                                                            "boxVersion": state["boxVersion"]})
        assert response.status == 200, await response.text()
        assert (await (await self.client.get(f"/api/state/{probe}")).json())["holdCount"] == 1

    def assert_no_tracebacks(self) -> None:
        """No ERROR with a traceback and no "unhandled error" line. (A plain ERROR line without a
        traceback, e.g. the scratch recovery of an uploaded zip, is allowed and reported.)"""
        bad = self.trap.with_traceback()
        assert not bad, "server logged tracebacks for input:\n" + "\n".join(self.trap.describe())


def hostile_config(tmp_path: Path, **overrides: object):
    return make_config(tmp_path / "data", rate_limits=False, **overrides)


@pytest.fixture
async def hostile(tmp_path: Path) -> AsyncIterator[Hostile]:
    with ErrorTrap() as trap:
        app = create_app(hostile_config(tmp_path))
        async with serving(app, as_admin=False) as client:
            token = (await login(client))["access_token"]
            yield Hostile(client, app, token, trap, tmp_path)
