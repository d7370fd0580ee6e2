"""The ops page's data: the summary an admin's /api/ops/ws receives (boxes, tablets, screens,
storage, backups, audit, charts), the page's own files, and the two small measuring parts."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
from aiohttp import ClientWebSocketResponse, WSMsgType
from aiohttp.test_utils import TestClient

from tests.conftest import make_config, serving
from tests.transport.ws.tablet_helpers import judge_token, tablet, until
from transport.app import create_app
from transport.ops.history import OpsHistory
from transport.ws.keys import OPS_FEED

INIT = {"type": "INIT_ROUTE", "routeIndex": 2, "routesCount": 3, "holdsCount": 25, "categorie": "Youth A",
        "competitors": [{"nume": "Ana Pop"}, {"nume": "Ion Ionescu"}]}


async def next_summary(ws: ClientWebSocketResponse) -> dict[str, Any]:
    while True:
        message = await ws.receive(timeout=10)
        assert message.type in (WSMsgType.TEXT, WSMsgType.PING), message
        if message.type == WSMsgType.TEXT and (frame := orjson.loads(message.data))["type"] == "OPS_SUMMARY":
            return frame


async def summary_where(ws: ClientWebSocketResponse, check: Any) -> dict[str, Any]:
    """The first pushed summary that satisfies `check` (one comes every second)."""
    for _ in range(20):
        summary = await next_summary(ws)
        if check(summary):
            return summary
    raise AssertionError("no summary satisfied the check")


async def test_the_summary_shows_each_box_its_tablet_and_who_follows_it(tmp_path: Path) -> None:
    async with serving(create_app(make_config(tmp_path / "data"))) as client:
        for box in (1, 2):
            assert (await client.post("/api/cmd", json={"boxId": box, **INIT})).status == 200
        ops = await client.ws_connect("/api/ops/ws")
        first = await next_summary(ops)
        boxes = {box["boxId"]: box for box in first["boxes"]}
        assert set(boxes) == {1, 2}
        assert boxes[1] | {"heardAgoS": None} == {
            "boxId": 1, "tablets": 0, "online": False, "heardAgoS": None, "scoreboards": 0, "spectators": 0,
            "unavailable": None, "category": "Youth A", "initiated": True, "routeIndex": 2, "routesCount": 3,
            "climber": "Ana Pop", "timerState": "idle", "remaining": None, "version": 1}
        assert first["offlineBoxes"] == [1, 2]
        assert "Box 1: judge tablet not connected" in first["problems"]

        token = await judge_token(client, 1)
        panel = await client.ws_connect("/api/ws/1")  # the admin's control panel: a screen, not a tablet
        spectator_token = (await (await client.post("/api/public/token")).json())["access_token"]
        spectator = await client.ws_connect(f"/api/public/ws/1?token={spectator_token}")
        async with tablet(client, 1, token):
            summary = await summary_where(ops, lambda s: s["offlineBoxes"] == [2])
            box1 = next(box for box in summary["boxes"] if box["boxId"] == 1)
            assert (box1["tablets"], box1["online"], box1["scoreboards"], box1["spectators"]) == (1, True, 1, 1)
            assert box1["heardAgoS"] is not None and box1["heardAgoS"] < 15
            assert summary["problems"] == ["Box 2: judge tablet not connected"]
            assert summary["server"]["screens"] == 3  # tablet, control panel, spectator; not the ops page
        summary = await summary_where(ops, lambda s: s["offlineBoxes"] == [1, 2])
        assert next(box for box in summary["boxes"] if box["boxId"] == 1)["tablets"] == 0
        for ws in (panel, spectator, ops):
            await ws.close()


async def test_the_summary_shows_storage_audit_and_a_backup_taken_from_the_page(tmp_path: Path) -> None:
    async with serving(create_app(make_config(tmp_path / "data"))) as client:
        assert (await client.post("/api/cmd", json={"boxId": 0, **INIT})).status == 200
        ops = await client.ws_connect("/api/ops/ws")
        first = await next_summary(ops)
        server = first["server"]
        assert server["storageMode"] == "json" and server["degraded"] is False and server["lastError"] is None
        assert server["lastDurableAgoS"] is not None and server["committedEvents"] >= 1
        assert server["diskFreeBytes"] > 0 and isinstance(server["diskLow"], bool)
        assert [event["action"] for event in first["audit"]] == ["INIT_ROUTE"]
        assert first["audit"][0]["actorUsername"] == "admin"
        assert first["backups"]["newestFile"] is None and first["backups"]["lastResult"] is None

        response = await client.post("/api/admin/ops/backup/now")
        assert response.status == 200
        written = (await response.json())["filename"]
        summary = await summary_where(ops, lambda s: s["backups"]["newestFile"] == written)
        backups = summary["backups"]
        assert backups["lastResult"] == "ok" and backups["newestSize"] > 0 and backups["newestAgoS"] < 60
        assert backups["taken"] == 1 and backups["late"] is False  # automatic backups are off here
        await ops.close()


async def test_a_chart_sample_holds_the_commands_p99_and_the_screens(tmp_path: Path) -> None:
    async with serving(create_app(make_config(tmp_path / "data"))) as client:
        board = client.app[OPS_FEED]
        panel = await client.ws_connect("/api/ws/3")
        for _ in range(5):
            assert (await client.post("/api/cmd", json={"boxId": 3, **INIT})).status == 200
        await until(lambda: _joined(client))
        await board.sample()  # type: ignore[attr-defined]  # the OpsBoard behind the feed
        await board.sample()  # type: ignore[attr-defined]  # no command since the last one
        summary = orjson.loads(await board.fresh())
        (_at, p99, screens), (_at2, idle_p99, idle_screens) = summary["history"]["points"]
        assert p99 > 0 and screens == 1
        assert idle_p99 is None and idle_screens == 1
        await panel.close()


async def _joined(client: TestClient) -> bool:
    summary = orjson.loads(await client.app[OPS_FEED].fresh())
    return bool(summary["boxes"]) and summary["server"]["screens"] == 1


async def test_the_page_and_its_files_are_served_with_a_policy_that_allows_only_this_server(
        tmp_path: Path) -> None:
    async with serving(create_app(make_config(tmp_path / "data")), as_admin=False) as client:
        page = await client.get("/ops")
        assert page.status == 200 and page.content_type == "text/html"
        policy = page.headers["Content-Security-Policy"]
        assert "default-src 'none'" in policy and "connect-src 'self'" in policy
        html = await page.text()
        assert 'src="/ops/static/ops.js"' in html and "http" not in html.replace("http-equiv", "")
        for name in ("ops.js", "ops.css"):
            asset = await client.get(f"/ops/static/{name}")
            assert asset.status == 200
            assert "https://" not in await asset.text()  # nothing fetched from elsewhere
        assert (await client.get("/ops/static/../../app.py")).status in (403, 404)


async def test_health_keeps_its_keys_and_adds_the_offline_boxes(tmp_path: Path) -> None:
    async with serving(create_app(make_config(tmp_path / "data"))) as client:
        await client.post("/api/cmd", json={"boxId": 5, **INIT})
        body = await (await client.get("/api/health")).json()
        assert {"status", "boxes_loaded", "audit_file_mb", "storage", "timestamp", "offline_boxes"} <= set(body)
        assert body["status"] == "ok" and body["offline_boxes"] == [5]  # a missing tablet is not a storage fault


async def test_a_chart_point_gives_the_p99_of_the_commands_since_the_last_one(tmp_path: Path) -> None:
    app = create_app(make_config(tmp_path / "data"))
    async with serving(app) as client:
        board = app[OPS_FEED]
        await board.sample()  # the start of the window
        for _ in range(3):
            assert (await client.post("/api/cmd", json={"boxId": 5, **INIT})).status == 200
        await board.sample()
        await board.sample()  # no command since the last point
        points = board.history.as_json()["points"]
        assert points[-2][1] is not None and 0 < points[-2][1] <= 2500.0  # ms, inside the histogram
        assert points[-1][1] is None


def test_the_history_keeps_the_last_window_only() -> None:
    history = OpsHistory(sample_s=5.0, window_s=15.0)
    for at in range(5):
        history.add(float(at), at * 1.5 if at % 2 else None, at)
    assert history.as_json() == {"sampleS": 5.0, "windowS": 15.0,
                                 "points": [[2.0, None, 2], [3.0, 4.5, 3], [4.0, None, 4]]}
