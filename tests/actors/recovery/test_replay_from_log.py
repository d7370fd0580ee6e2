"""Replaying the events a live server logged rebuilds exactly the state it acknowledged."""
from __future__ import annotations

from pathlib import Path

import orjson
from aiohttp.test_utils import TestClient

from actors.recovery.replay import replay
from tests.transport.test_live_protocol import command, init_route, post, state
from transport.keys import REGISTRY


async def test_replaying_the_log_from_scratch_gives_the_live_state(client: TestClient, tmp_path: Path) -> None:
    assert (await post(client, init_route(5)))[0] == 200
    steps = [("PROGRESS_UPDATE", {"delta": 1}), ("PROGRESS_UPDATE", {"delta": 0.1}),
             ("START_TIMER", {}), ("STOP_TIMER", {}), ("REGISTER_TIME", {"registeredTime": 33.3}),
             ("SUBMIT_SCORE", {"competitor": "Ana Pop", "score": 1.1}),
             ("SUBMIT_SCORE", {"idx": 2, "score": 9}), ("SET_TIMER_PRESET", {"timerPreset": "3:30"}),
             ("TIMER_SYNC", {"remaining": 200}), ("RESET_PARTIAL", {"unmarkAll": True}),
             ("INIT_ROUTE", {"routeIndex": 2, "holdsCount": 25}), ("RESET_BOX", {})]
    for kind, fields in steps:
        status, body = await command(client, 5, kind, **fields)
        assert status == 200, (kind, body)
    live = await state(client, 5)

    events = [orjson.loads(line) for line in (tmp_path / "data" / "events.ndjson").read_bytes().splitlines()]
    assert [e["seq"] for e in events] == list(range(1, len(steps) + 2))
    rebuilt = replay(None, 0, events)  # seq 1 carries the session the box started with
    assert rebuilt.seq == len(events)
    assert rebuilt.state["boxVersion"] == live["boxVersion"]
    assert rebuilt.state["sessionId"] == live["sessionId"]
    assert rebuilt.state == client.app[REGISTRY].state(5)
