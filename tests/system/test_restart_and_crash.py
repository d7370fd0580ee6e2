"""`run.py` in a subprocess: a clean restart brings every box back; SIGKILL loses nothing acknowledged."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import orjson
from aiohttp import ClientSession

from tests.reliability.crash_soak import admin_session, get_state, init_body, post, run_rounds
from tests.reliability.figures import record

CRASH_ROUNDS = int(os.environ.get("BELAY_CRASH_ROUNDS", "5"))


async def send(session: ClientSession, url: str, box: int, kind: str, **fields: Any) -> tuple[int, dict[str, Any]]:
    snapshot = await get_state(session, url, box)
    return await post(session, url, {"boxId": box, "type": kind, "sessionId": snapshot["sessionId"],
                                     "boxVersion": snapshot["boxVersion"], **fields})


def comparable(snapshot: dict[str, Any]) -> dict[str, Any]:
    """A running clock's `remaining` moves with time; everything else must be identical."""
    return {k: v for k, v in snapshot.items() if k != "remaining"}


async def test_sigterm_then_restart_brings_every_box_back_identical(spawn_server, tmp_path: Path) -> None:
    data = tmp_path / "data"
    server = spawn_server(data)
    async with await admin_session(server.url) as session:
        for box in range(5):
            assert (await post(session, server.url, init_body(box)))[0] == 200
            for _ in range(box + 1):
                assert (await send(session, server.url, box, "PROGRESS_UPDATE", delta=1))[0] == 200
        assert (await send(session, server.url, 1, "SUBMIT_SCORE", competitor="Ana Pop", score=12.1,
                           registeredTime=61.5))[0] == 200
        assert (await send(session, server.url, 2, "START_TIMER"))[0] == 200
        assert (await send(session, server.url, 3, "SET_TIME_CRITERION", timeCriterionEnabled=True))[0] == 200
        assert (await send(session, server.url, 4, "TIMER_SYNC", remaining=123))[0] == 200
        retried = {"boxId": 0, "type": "PROGRESS_UPDATE", "delta": 1, "actionId": "judge-0-42",
                   "sessionId": (await get_state(session, server.url, 0))["sessionId"]}
        assert (await post(session, server.url, retried))[0] == 200
        before = {box: await get_state(session, server.url, box) for box in range(5)}

    assert server.terminate() == 0
    assert "restored 0 box" in server.log()
    server = spawn_server(data)
    assert "restored 5 box(es)" in server.log()
    async with await admin_session(server.url) as session:
        after = {box: await get_state(session, server.url, box) for box in range(5)}
        for box in range(5):
            assert comparable(after[box]) == comparable(before[box]), box
        assert after[2]["timerState"] == "running" and 0 < after[2]["remaining"] <= 240
        assert after[4]["remaining"] == 123
        # The retry of a command acknowledged before the restart is answered, not applied again.
        assert (await post(session, server.url, retried)) == (200, {"status": "ok"})
        assert (await get_state(session, server.url, 0))["boxVersion"] == before[0]["boxVersion"]
        # Clean shutdown checkpointed every box: nothing is left to replay.
        for box in range(5):
            checkpoint = orjson.loads((data / "boxes" / f"{box}.json").read_bytes())
            assert checkpoint["state"]["boxVersion"] == before[box]["boxVersion"]


async def test_sigkill_at_random_moments_loses_no_acknowledged_command(spawn_server, tmp_path: Path) -> None:
    """The body lives in tests/reliability/crash_soak.py, shared with the soak (BELAY_CRASH_ROUNDS)."""
    totals = await run_rounds(CRASH_ROUNDS, tmp_path / "data", spawn_server)
    record("crash_soak", **totals)
    assert totals["rounds"] == CRASH_ROUNDS and totals["acknowledged"] > 0 and totals["lost"] == 0


async def test_corrupt_checkpoint_is_quarantined_and_rebuilt_from_the_log(spawn_server, tmp_path: Path) -> None:
    data = tmp_path / "data"
    server = spawn_server(data)
    async with await admin_session(server.url) as session:
        assert (await post(session, server.url, init_body(7)))[0] == 200
        assert (await send(session, server.url, 7, "PROGRESS_UPDATE", delta=1))[0] == 200
        before = await get_state(session, server.url, 7)
    assert server.terminate() == 0
    (data / "boxes" / "7.json").write_bytes(b'{"format":1,"boxId":7,"se')
    (data / "boxes" / "7.json.tmp").write_bytes(b"half a write")

    server = spawn_server(data)
    assert "quarantined" in server.log()
    async with await admin_session(server.url) as session:
        assert comparable(await get_state(session, server.url, 7)) == comparable(before)
    assert list((data / "boxes" / "quarantine").iterdir())
    assert not (data / "boxes" / "7.json.tmp").exists()


async def test_reset_boxes_on_start_begins_empty_and_keeps_the_old_data(spawn_server, tmp_path: Path) -> None:
    data = tmp_path / "data"
    server = spawn_server(data)
    async with await admin_session(server.url) as session:
        assert (await post(session, server.url, init_body(1)))[0] == 200
    assert server.terminate() == 0

    server = spawn_server(data, env={"RESET_BOXES_ON_START": "1"})
    assert "restored 0 box" in server.log()
    async with await admin_session(server.url) as session:
        assert (await get_state(session, server.url, 1))["initiated"] is False
        async with session.get(f"{server.url}/api/admin/audit/events") as response:
            audit = await response.json()
        assert [e["action"] for e in audit] == ["INIT_ROUTE"], "the old log stays readable as an archive"
    assert server.terminate() == 0
    assert list(data.glob("events.*.ndjson")) and list((data / "boxes").glob("reset-*/1.json"))
