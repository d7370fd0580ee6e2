"""A box's versions since the last reset, and rollback to one, over real sockets and real files."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestClient

from tests.conftest import make_config, serving
from tests.transport.test_live_protocol import command, init_route, next_of, post, state
from transport.app import create_app


async def history(client: TestClient, query: str = "", box: int = 0) -> dict[str, Any]:
    response = await client.get(f"/api/admin/boxes/{box}/history{query}")
    assert response.status == 200, await response.text()
    return await response.json()


async def rollback(client: TestClient, body: Any, box: int = 0) -> tuple[int, Any]:
    response = await client.post(f"/api/admin/boxes/{box}/rollback", json=body)
    return response.status, await response.json()


async def scores_then_replaced(client: TestClient) -> None:
    """Versions 1-3: a category with two scores (and a clock sync that keeps version 3); version 4:
    another control panel initiates another category on the same box."""
    assert (await post(client, init_route(0)))[0] == 200
    assert (await command(client, 0, "SUBMIT_SCORE", competitor="Ana Pop", score=7))[0] == 200
    assert (await command(client, 0, "SUBMIT_SCORE", competitor="Bogdan Ionescu", score=9.1))[0] == 200
    assert (await command(client, 0, "TIMER_SYNC", remaining=120))[0] == 200
    assert (await post(client, init_route(0, categorie="U18-Girls", competitors=[{"nume": "Ioana"}])))[0] == 200


async def test_history_lists_each_version_newest_first_with_what_it_left(client: TestClient) -> None:
    await scores_then_replaced(client)

    body = await history(client)
    assert body["boxId"] == 0 and body["nextBefore"] is None
    found = body["versions"]
    assert [(v["boxVersion"], v["action"], v["categorie"], v["routeIndex"], v["scores"]) for v in found] == [
        (4, "INIT_ROUTE", "U18-Girls", 1, 0),
        (3, "SUBMIT_SCORE", "U16-Boys", 1, 2),  # the clock sync kept version 3: one entry
        (2, "SUBMIT_SCORE", "U16-Boys", 1, 1),
        (1, "INIT_ROUTE", "U16-Boys", 1, 0),
    ]
    assert all(v["actorUsername"] == "admin" and v["actorRole"] == "admin" and v["restorable"] for v in found)
    assert all(isinstance(v["createdAt"], str) and v["problem"] is None for v in found)

    first = await history(client, "?limit=2")
    assert [v["boxVersion"] for v in first["versions"]] == [4, 3] and first["nextBefore"] == 3
    rest = await history(client, f"?limit=2&before={first['nextBefore']}")
    assert [v["boxVersion"] for v in rest["versions"]] == [2, 1] and rest["nextBefore"] is None
    assert [v["boxVersion"] for v in (await history(client, "?action=SUBMIT_SCORE"))["versions"]] == [3, 2]
    picked = await history(client, "?action=INIT_ROUTE,RESTORE&limit=1")
    assert [v["boxVersion"] for v in picked["versions"]] == [4] and picked["nextBefore"] == 4
    assert (await history(client, box=9))["versions"] == []  # a box without history


@pytest.mark.parametrize("query", [
    "?limit=0", "?limit=501", "?limit=abc", "?limit=-1", "?limit=1.5", "?limit=" + "9" * 5000,
    "?before=-1", "?before=x", "?before=" + "9" * 5000, "?before=9007199254740992",
    "?action=NOPE", "?action=SUBMIT_SCORE,NOPE", "?action=" + ",".join(["SUBMIT_SCORE"] * 40),
])
async def test_history_queries_are_checked_and_answered_400(client: TestClient, query: str) -> None:
    response = await client.get(f"/api/admin/boxes/0/history{query}")
    assert response.status == 400, query
    assert (await response.json())["detail"]


@pytest.mark.parametrize("body", [{}, {"boxVersion": "3"}, {"boxVersion": True}, {"boxVersion": -1},
                                  {"boxVersion": 1.5}, {"boxVersion": 2**53}, {"boxVersion": None}, [3]])
async def test_rollback_refuses_a_version_that_is_not_a_version(client: TestClient, body: Any) -> None:
    await post(client, init_route(0))
    status, answer = await rollback(client, body)
    assert status == 400 and answer["detail"], body


async def test_rollback_to_a_version_the_box_never_had_is_404(client: TestClient) -> None:
    await post(client, init_route(0))
    assert await rollback(client, {"boxVersion": 7}) == (
        404, {"detail": "box 0 has no version 7 since the last reset"})
    assert (await rollback(client, {"boxVersion": 1}, box=5))[0] == 404


async def test_rollback_puts_a_replaced_box_back_as_an_audited_restore_pushed_to_every_screen(
        tmp_path: Path) -> None:
    config = make_config(tmp_path / "data")
    async with serving(create_app(config)) as client:
        await scores_then_replaced(client)
        replaced = await state(client)
        ws = await client.ws_connect("/api/ws/0")
        await next_of(ws, {"STATE_SNAPSHOT"})

        status, body = await rollback(client, {"boxVersion": 3})
        assert status == 200, body
        assert body["status"] == "ok" and body["rolledBackTo"] == 3 and body["boxVersion"] == 5
        pushed = await next_of(ws, {"STATE_SNAPSHOT"})
        back = await state(client)
        assert pushed["boxVersion"] == back["boxVersion"] == 5
        assert back["sessionId"] != replaced["sessionId"] and back["categorie"] == "U16-Boys"
        assert back["scoresByName"] == {"Ana Pop": [7.0], "Bogdan Ionescu": [9.1]}
        # No tab of the replaced category can write on top of it.
        stale = {"boxId": 0, "type": "PROGRESS_UPDATE", "delta": 1, "sessionId": replaced["sessionId"]}
        assert await post(client, stale) == (200, {"status": "ignored", "reason": "stale_session"})
        audit = await (await client.get("/api/admin/audit/events?boxId=0&limit=1&includePayload=1")).json()
        assert audit[0]["action"] == "RESTORE" and audit[0]["actorUsername"] == "admin"
        assert audit[0]["payload"]["source"] == "rollback to version 3"
        newest = (await history(client, "?limit=1"))["versions"][0]
        assert (newest["boxVersion"], newest["action"], newest["scores"]) == (5, "RESTORE", 2)
        await ws.close()
    async with serving(create_app(config)) as client:  # the RESTORE event replays
        assert await state(client) == {**back, "remaining": back["remaining"]}


async def test_an_init_route_without_session_that_replaces_scores_is_logged_as_a_warning(
        client: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="belay.box")
    assert (await post(client, init_route(0)))[0] == 200
    assert (await post(client, init_route(0, routeIndex=1)))[0] == 200  # no scores yet: nothing to say
    assert (await command(client, 0, "SUBMIT_SCORE", competitor="Ana Pop", score=7))[0] == 200
    assert (await post(client, init_route(0, routeIndex=2, holdsCount=25)))[0] == 200  # next route keeps them
    assert not [r for r in caplog.records if r.name == "belay.box"]

    assert (await post(client, init_route(0, categorie="U18-Girls")))[0] == 200
    [record] = [r for r in caplog.records if r.name == "belay.box"]
    assert record.levelno == logging.WARNING
    assert "INIT_ROUTE without a sessionId" in record.getMessage()
    assert "replaced 'U16-Boys' with 1 score(s) by 'U18-Girls'" in record.getMessage()
    assert "version 4 still holds them" in record.getMessage()


async def test_rollback_brings_back_a_box_whose_log_has_a_hole(tmp_path: Path) -> None:
    config = make_config(tmp_path / "data")
    async with serving(create_app(config)) as client:
        await post(client, init_route(0))
        for _ in range(3):
            await command(client, 0, "PROGRESS_UPDATE", delta=1)
    data = tmp_path / "data"
    (data / "boxes" / "0.json").unlink()
    lines = (data / "events.ndjson").read_bytes().splitlines(keepends=True)
    lines[2] = b"not an event\n"  # seq 3 is gone: versions 3 and 4 cannot be rebuilt
    (data / "events.ndjson").write_bytes(b"".join(lines))

    async with serving(create_app(config)) as client:
        assert (await client.get("/api/state/0")).status == 503
        found = (await history(client))["versions"]
        assert [(v["boxVersion"], v["restorable"]) for v in found] == [(4, False), (2, True), (1, True)]
        assert "the log lacks seq 3" in found[0]["problem"]
        status, body = await rollback(client, {"boxVersion": 4})
        assert status == 409 and "cannot be rebuilt" in body["detail"]

        status, body = await rollback(client, {"boxVersion": 2})
        assert status == 200 and body["boxVersion"] == 5  # above the last version the log holds
        back = await state(client)
        assert back["holdCount"] == 1 and back["boxVersion"] == 5
        health = await (await client.get("/api/health")).json()
        assert health["status"] == "ok" and health["storage"]["unavailable_boxes"] == []
    (data / "boxes" / "0.json").unlink()
    async with serving(create_app(config)) as client:  # rebuilt from the restore event past the hole
        assert await state(client) == {**back, "remaining": back["remaining"]}
    events = [orjson.loads(line) for line in (data / "events.ndjson").read_bytes().splitlines()[3:]]
    assert [e["seq"] for e in events] == [4, 5]  # the restore went on after the log's last seq
