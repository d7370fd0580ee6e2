"""Competition officials: persisted, in every snapshot, pushed to subscribers when they change."""
from __future__ import annotations

from pathlib import Path

import orjson

from tests.conftest import make_config, serving
from tests.transport.test_live_protocol import init_route, next_of, post, state
from transport.app import create_app


async def test_officials_are_saved_shown_and_pushed(tmp_path: Path) -> None:
    config = make_config(tmp_path / "data")
    async with serving(create_app(config)) as client:
        await post(client, init_route(0))
        ws = await client.ws_connect("/api/ws/0")
        await next_of(ws, {"STATE_SNAPSHOT"})
        body = {"judgeChief": "  Ana   Pop ", "competitionDirector": "Ștefan Ionescu", "chiefRoutesetter": None}
        response = await client.post("/api/admin/competition_officials", json=body)
        assert await response.json() == {"status": "ok", "judgeChief": "Ana Pop",
                                         "competitionDirector": "Ștefan Ionescu", "chiefRoutesetter": ""}
        pushed = await next_of(ws, {"STATE_SNAPSHOT"})
        assert pushed["judgeChief"] == "Ana Pop" and pushed["competitionDirector"] == "Ștefan Ionescu"
        assert (await state(client, 0))["judgeChief"] == "Ana Pop"
        bad = await client.post("/api/admin/competition_officials", json={"judgeChief": 5})
        assert bad.status == 400
        await ws.close()
    saved = orjson.loads((tmp_path / "data" / "competition_officials.json").read_bytes())
    assert saved["judgeChief"] == "Ana Pop"

    async with serving(create_app(config)) as client:
        got = await (await client.get("/api/admin/competition_officials")).json()
        assert got["competitionDirector"] == "Ștefan Ionescu"
        token = (await (await client.post("/api/public/token")).json())["access_token"]
        public = await (await client.get(f"/api/public/officials?token={token}")).json()
        assert public == {"judgeChief": "Ana Pop", "competitionDirector": "Ștefan Ionescu", "chiefRoutesetter": ""}
