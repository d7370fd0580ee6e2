"""The escalada wire protocol over real sockets: commands, echoes, snapshots, errors, audit."""
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import WSMsgType
from aiohttp.test_utils import TestClient

from tests.conftest import make_config, serving
from tests.persistence.postgres.database import new_schema
from transport.app import create_app

COMPETITORS = [{"nume": "Ana Pop"}, {"nume": "Bogdan Ionescu"}, {"nume": "Cris O'Connor"}]


@pytest.fixture(params=["json", "postgres"])
async def client(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[TestClient]:
    """Every test here runs in both storage modes: the protocol does not depend on storage."""
    config = make_config(tmp_path / "data")
    if request.param == "postgres":
        config = config.replace(storage_mode="postgres", database_url=request.getfixturevalue("postgres_url"),
                                database_schema=new_schema())
    async with serving(create_app(config)) as test_client:
        yield test_client


def init_route(box_id: int = 0, **extra: Any) -> dict[str, Any]:
    return {"boxId": box_id, "type": "INIT_ROUTE", "routeIndex": 1, "holdsCount": 20, "routesCount": 2,
            "holdsCounts": [20, 25], "competitors": COMPETITORS, "timerPreset": "05:00",
            "categorie": "U16-Boys", **extra}


async def post(client: TestClient, body: Any) -> tuple[int, Any]:
    response = await client.post("/api/cmd", json=body)
    return response.status, await response.json()


async def state(client: TestClient, box_id: int = 0) -> dict[str, Any]:
    response = await client.get(f"/api/state/{box_id}")
    assert response.status == 200
    return await response.json()


async def command(client: TestClient, box_id: int, kind: str, **fields: Any) -> tuple[int, Any]:
    snapshot = await state(client, box_id)
    body = {"boxId": box_id, "type": kind, "sessionId": snapshot["sessionId"],
            "boxVersion": snapshot["boxVersion"], **fields}
    return await post(client, body)


async def next_json(ws, timeout: float = 5.0) -> dict[str, Any]:
    message = await ws.receive(timeout=timeout)
    assert message.type == WSMsgType.TEXT, f"expected a TEXT frame, got {message.type}"
    return orjson.loads(message.data)


async def next_of(ws, kinds: set[str], timeout: float = 5.0) -> dict[str, Any]:
    """The next frame whose type is in `kinds`, skipping PINGs."""
    while True:
        frame = await next_json(ws, timeout)
        if frame.get("type") in kinds:
            return frame


async def test_command_echo_then_snapshot_reach_two_subscribers_in_order(client: TestClient) -> None:
    sockets = [await client.ws_connect("/api/ws/0") for _ in range(2)]
    for ws in sockets:
        first = await next_json(ws)
        assert first["type"] == "STATE_SNAPSHOT" and first["initiated"] is False

    assert await post(client, init_route()) == (200, {"status": "ok"})
    for ws in sockets:
        echo = await next_json(ws)
        assert echo["type"] == "INIT_ROUTE"
        assert echo["boxVersion"] == 1
        assert [c["nume"] for c in echo["competitors"]] == ["Ana Pop", "Bogdan Ionescu", "Cris O'Connor"]
        snapshot = await next_json(ws)
        assert snapshot["type"] == "STATE_SNAPSHOT"
        assert snapshot["boxVersion"] == 1 and snapshot["initiated"] is True
        assert snapshot["currentClimber"] == "Ana Pop" and snapshot["preparingClimber"] == "Bogdan Ionescu"
        assert echo["sessionId"] == snapshot["sessionId"]

    assert (await command(client, 0, "PROGRESS_UPDATE", delta=1))[0] == 200
    for ws in sockets:
        echo = await next_json(ws)
        assert (echo["type"], echo["holdCount"], echo["boxVersion"]) == ("PROGRESS_UPDATE", 1, 2)
        snapshot = await next_json(ws)
        assert (snapshot["type"], snapshot["holdCount"], snapshot["boxVersion"]) == ("STATE_SNAPSHOT", 1, 2)
    for ws in sockets:
        await ws.close()


async def test_request_state_over_the_socket_answers_only_that_socket(client: TestClient) -> None:
    await post(client, init_route())
    asker = await client.ws_connect("/api/ws/0")
    other = await client.ws_connect("/api/ws/0")
    await next_json(asker)
    await next_json(other)
    await asker.send_str(orjson.dumps({"type": "REQUEST_STATE", "boxId": 0}).decode())
    await asker.send_str("not json at all")
    await asker.send_str(orjson.dumps({"type": "STATE_SNAPSHOT", "boxId": 0}).decode())
    answer = await next_json(asker)
    assert answer["type"] == "STATE_SNAPSHOT" and answer["initiated"] is True
    with_timeout = asyncio.wait_for(other.receive(), 0.3)
    try:
        extra = await with_timeout
        raise AssertionError(f"the other socket got {extra!r}")
    except TimeoutError:
        pass
    await asker.close()
    await other.close()


async def test_stale_session_and_stale_version_are_ignored(client: TestClient) -> None:
    await post(client, init_route())
    snapshot = await state(client)
    await command(client, 0, "PROGRESS_UPDATE", delta=1)
    stale_version = {"boxId": 0, "type": "PROGRESS_UPDATE", "delta": 1,
                     "sessionId": snapshot["sessionId"], "boxVersion": snapshot["boxVersion"]}
    assert await post(client, stale_version) == (200, {"status": "ignored", "reason": "stale_version"})
    stale_session = {**stale_version, "sessionId": "not-the-session", "boxVersion": 99}
    assert await post(client, stale_session) == (200, {"status": "ignored", "reason": "stale_session"})
    assert (await state(client))["holdCount"] == 1


async def test_unknown_box_is_not_created_by_reads_and_its_provisional_session_works(client: TestClient) -> None:
    first = await state(client, 42)
    again = await state(client, 42)
    assert first["sessionId"] == again["sessionId"] and first["initiated"] is False
    health = await (await client.get("/api/health")).json()
    assert health["boxes_loaded"] == 0

    ws = await client.ws_connect("/api/ws/77")
    provisional = await next_json(ws)
    body = {"boxId": 77, "type": "SET_TIMER_PRESET", "timerPreset": "04:00",
            "sessionId": provisional["sessionId"], "boxVersion": provisional["boxVersion"]}
    assert await post(client, body) == (200, {"status": "ok"})
    echo = await next_json(ws)
    snapshot = await next_json(ws)
    assert echo["type"] == "SET_TIMER_PRESET"
    assert snapshot["sessionId"] == provisional["sessionId"] and snapshot["timerPreset"] == "04:00"
    await ws.close()


async def test_action_id_retry_is_applied_once(client: TestClient) -> None:
    await post(client, init_route())
    snapshot = await state(client)
    body = {"boxId": 0, "type": "PROGRESS_UPDATE", "delta": 1, "sessionId": snapshot["sessionId"],
            "boxVersion": snapshot["boxVersion"], "actionId": "tablet-3-0001"}
    assert await post(client, body) == (200, {"status": "ok"})
    assert await post(client, body) == (200, {"status": "ok"})
    after = await state(client)
    assert after["holdCount"] == 1 and after["boxVersion"] == snapshot["boxVersion"] + 1


async def test_timer_sync_and_relays_do_not_bump_the_version(client: TestClient) -> None:
    await post(client, init_route())
    ws = await client.ws_connect("/api/ws/0")
    await next_json(ws)
    before = await state(client)
    assert (await command(client, 0, "TIMER_SYNC", remaining=250, competitor="tab-1"))[0] == 200
    echo = await next_of(ws, {"TIMER_SYNC"})
    assert echo["remaining"] == 250 and echo["competitor"] == "tab-1"
    assert (await command(client, 0, "ACTIVE_CLIMBER", competitor="Ana Pop"))[0] == 200
    relay = await next_of(ws, {"ACTIVE_CLIMBER", "STATE_SNAPSHOT"})
    assert relay["type"] == "ACTIVE_CLIMBER" and relay["competitor"] == "Ana Pop"
    assert (await command(client, 0, "REQUEST_ACTIVE_COMPETITOR"))[0] == 200
    assert (await next_of(ws, {"REQUEST_ACTIVE_COMPETITOR", "STATE_SNAPSHOT"}))["type"] == "REQUEST_ACTIVE_COMPETITOR"
    after = await state(client)
    assert after["boxVersion"] == before["boxVersion"]
    assert after["remaining"] == 250
    audit = await (await client.get("/api/admin/audit/events?limit=10")).json()
    assert [e["action"] for e in audit] == ["TIMER_SYNC", "INIT_ROUTE"]
    await ws.close()


async def test_bad_requests_get_a_clear_4xx(client: TestClient) -> None:
    cases = [
        (b"{not json", 400),
        (b"[1,2,3]", 400),
        (orjson.dumps({"boxId": 0, "type": "FLY_AWAY", "sessionId": "x"}), 400),
        (orjson.dumps({"boxId": "abc", "type": "START_TIMER", "sessionId": "x"}), 400),
        (orjson.dumps({"boxId": 10000, "type": "START_TIMER", "sessionId": "x"}), 400),
        (orjson.dumps({"boxId": 0, "type": "START_TIMER"}), 400),
        (orjson.dumps({"boxId": 0, "type": "PROGRESS_UPDATE", "delta": 0, "sessionId": "x"}), 400),
        (b"\xff\xfe{}", 400),
    ]
    for raw, status in cases:
        response = await client.post("/api/cmd", data=raw, headers={"Content-Type": "application/json"})
        body = await response.json()
        assert response.status == status, (raw, body)
        assert isinstance(body["detail"], str) and body["detail"], raw
    missing = await client.post("/api/cmd", data=orjson.dumps({"boxId": 0, "type": "START_TIMER"}),
                                headers={"Content-Type": "application/json"})
    assert (await missing.json())["detail"] == "sessionId required for all commands except INIT_ROUTE"


async def test_out_of_range_index_is_400_not_500(client: TestClient) -> None:
    await post(client, init_route())
    status, body = await command(client, 0, "SUBMIT_SCORE", idx=50, score=5)
    assert status == 400 and "idx" in body["detail"]
    status, body = await command(client, 0, "SUBMIT_SCORE", competitorIdx=1, score=7.1)
    assert status == 200
    assert (await state(client))["scoresByName"]["Bogdan Ionescu"][0] == 7.1


async def test_oversized_body_is_413_json(client: TestClient) -> None:
    big = b'{"boxId":0,"type":"INIT_ROUTE","pad":"' + b"x" * (1 << 20) + b'"}'
    response = await client.post("/api/cmd", data=big, headers={"Content-Type": "application/json"})
    assert response.status == 413
    assert (await response.json())["detail"]


async def test_bad_paths_and_queries_are_400(client: TestClient) -> None:
    for path in ("/api/state/abc", "/api/state/10000", "/api/state/-1",
                 "/api/admin/audit/events?limit=0", "/api/admin/audit/events?limit=2001",
                 "/api/admin/audit/events?limit=ten", "/api/admin/audit/events?boxId=x"):
        response = await client.get(path)
        assert response.status == 400, path
        assert (await response.json())["detail"], path
    missing = await client.get("/api/nothing-here")
    assert missing.status == 404 and (await missing.json())["detail"]


async def test_audit_is_newest_first_with_and_without_payload(client: TestClient) -> None:
    await post(client, init_route(0))
    await post(client, init_route(1))
    for _ in range(3):
        await command(client, 0, "PROGRESS_UPDATE", delta=1)
    events = await (await client.get("/api/admin/audit/events?limit=200")).json()
    assert [(e["boxId"], e["action"], e["boxVersion"]) for e in events] == [
        (0, "PROGRESS_UPDATE", 4), (0, "PROGRESS_UPDATE", 3), (0, "PROGRESS_UPDATE", 2),
        (1, "INIT_ROUTE", 1), (0, "INIT_ROUTE", 1)]
    assert all(e["payload"] is None for e in events)
    assert set(events[0]) == {"id", "createdAt", "competitionId", "boxId", "action", "actionId", "boxVersion",
                              "sessionId", "actorUsername", "actorRole", "actorIp", "actorUserAgent", "payload"}
    with_payload = await (await client.get("/api/admin/audit/events?limit=2&includePayload=1&boxId=0")).json()
    assert [e["boxVersion"] for e in with_payload] == [4, 3]
    assert with_payload[0]["payload"]["type"] == "PROGRESS_UPDATE"
    assert with_payload[0]["payload"]["holdCount"] == 3
    box1 = await (await client.get("/api/admin/audit/events?boxId=1")).json()
    assert [e["action"] for e in box1] == ["INIT_ROUTE"]


async def test_running_clock_reaching_zero_sends_a_snapshot(client: TestClient) -> None:
    await post(client, init_route(timerPreset="00:01"))
    ws = await client.ws_connect("/api/ws/0")
    await next_json(ws)
    assert (await command(client, 0, "START_TIMER"))[0] == 200
    started = await next_of(ws, {"STATE_SNAPSHOT"})
    assert started["timerState"] == "running" and 0 < started["remaining"] <= 1
    at_zero = await next_of(ws, {"STATE_SNAPSHOT"}, timeout=5)
    assert at_zero["timerState"] == "running"
    assert at_zero["remaining"] == 0
    assert at_zero["boxVersion"] == started["boxVersion"]
    await ws.close()


async def test_health_endpoints_report_storage(client: TestClient) -> None:
    await post(client, init_route())
    for path in ("/health", "/status/summary", "/api/health", "/api/health/ready", "/api/health/live"):
        response = await client.get(path)
        assert response.status == 200, path
    report = await (await client.get("/api/health")).json()
    assert report["storage"]["mode"] in ("json", "postgres") and report["storage"]["degraded"] is False
    assert report["storage"]["last_durable_write"] is not None
    assert (await (await client.get("/api/health/ready")).json())["status"] == "ready"


async def test_public_aggregate_socket_gets_box_updates(client: TestClient) -> None:
    ws = await client.ws_connect("/api/public/ws")
    first = await next_json(ws)
    assert first == {"type": "PUBLIC_STATE_SNAPSHOT", "boxes": []}
    await post(client, init_route(2))
    update = await next_of(ws, {"BOX_STATUS_UPDATE"})
    assert update["box"]["boxId"] == 2 and update["box"]["initiated"] is True
    await command(client, 2, "PROGRESS_UPDATE", delta=1)
    flow = await next_of(ws, {"BOX_FLOW_UPDATE"})
    assert flow["box"]["boxId"] == 2
    await ws.close()
