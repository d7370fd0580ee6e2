"""A box whose checkpoint cannot be used, or whose log cannot rebuild it, with run.py in a subprocess."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
from aiohttp import ClientSession, WSMsgType

from tests.reliability.crash_soak import read_log
from tests.system.test_restart_and_crash import admin_session, comparable, get_state, init_body, post, send
from tests.transport.cli.test_cli_commands import cli, play

JUDGE_PASSWORD = "judge-zero-password-7"


def drop_session(data: Path, box: int) -> dict[str, Any]:
    """The checkpoint still parses, but its state lacks the sessionId: the rules cannot load it."""
    path = data / "boxes" / f"{box}.json"
    checkpoint = orjson.loads(path.read_bytes())
    del checkpoint["state"]["sessionId"]
    path.write_bytes(orjson.dumps(checkpoint))
    return checkpoint


def box_seqs(data: Path, box: int) -> list[int]:
    return [event["seq"] for event in read_log(data) if event["boxId"] == box]


async def status_of(session: ClientSession, url: str, path: str) -> tuple[int, Any]:
    async with session.get(f"{url}{path}") as response:
        return response.status, await response.json()


async def test_a_checkpoint_without_its_session_is_set_aside_and_the_box_rebuilt_from_the_log(
        spawn_server, tmp_path: Path) -> None:
    data = tmp_path / "data"
    server = spawn_server(data)
    before = await play(server.url, boxes=2)
    assert server.terminate() == 0
    edited = drop_session(data, 0)

    # `check` judges the file exactly as a start will, and replays the box from the log.
    check = cli("check", "--storage-dir", str(data))
    assert check.returncode == 1
    assert "boxes/0.json is corrupt (invalid state: sessionId is required)" in check.stdout, check.stdout
    assert "3 of 3 box(es) replay consistently" in check.stdout, check.stdout

    server = spawn_server(data)
    async with await admin_session(server.url) as session:
        assert comparable(await get_state(session, server.url, 0)) == comparable(before[0])
        assert (await status_of(session, server.url, "/api/health"))[1]["status"] == "ok"
        assert (await send(session, server.url, 0, "PROGRESS_UPDATE", delta=1))[0] == 200
        assert (await post(session, server.url, init_body(0, route=2)))[0] == 200
    assert server.terminate() == 0

    quarantined = list((data / "boxes" / "quarantine").iterdir())
    assert len(quarantined) == 1 and orjson.loads(quarantined[0].read_bytes()) == edited
    seqs = box_seqs(data, 0)
    assert seqs == list(range(1, len(seqs) + 1))  # the history goes on: no seq reused
    assert cli("check", "--storage-dir", str(data)).returncode == 0


async def test_a_box_its_log_cannot_rebuild_answers_503_until_an_admin_starts_it_over(
        spawn_server, tmp_path: Path, http: ClientSession) -> None:
    data = tmp_path / "data"
    server = spawn_server(data)
    await play(server.url, boxes=2)
    async with await admin_session(server.url) as session:
        async with session.post(f"{server.url}/api/admin/auth/boxes/0/password",
                                json={"password": JUDGE_PASSWORD}) as response:
            assert response.status == 200
    assert server.terminate() == 0
    last = [event for event in read_log(data) if event["boxId"] == 0 and "seq" in event][-1]  # not audit-only lines
    drop_session(data, 0)
    lines = (data / "events.ndjson").read_bytes().splitlines(keepends=True)
    (data / "events.ndjson").write_bytes(b"".join(
        line for line in lines if orjson.loads(line)["boxId"] != 0 or orjson.loads(line).get("seq") != 1))

    check = cli("check", "--storage-dir", str(data))
    assert check.returncode == 1, check.stdout
    assert "box 0 cannot be rebuilt (its checkpoint is unusable)" in check.stdout, check.stdout
    # A repair sets the checkpoint aside as a start would, and never writes a state for a box its log
    # cannot rebuild: only the mark that keeps the box known to later starts.
    repair = cli("check", "--repair", "--storage-dir", str(data))
    assert repair.returncode == 1 and "repaired: box 0 cannot be rebuilt" in repair.stdout, repair.stdout
    mark = orjson.loads((data / "boxes" / "0.json").read_bytes())
    assert mark["state"] is None and mark["seq"] == last["seq"]
    assert mark["unrebuildable"]["boxVersion"] == last["boxVersion"]

    server = spawn_server(data)
    assert "box(es) [0] cannot be rebuilt" in server.log()
    async with await admin_session(server.url) as admin:
        async with http.post(f"{server.url}/api/auth/login",
                             json={"username": "Box 0", "password": JUDGE_PASSWORD}) as response:
            assert response.status == 200
            judge_token = (await response.json())["access_token"]
        judge = {"Authorization": f"Bearer {judge_token}"}

        # Never a fresh box on top of its history, and never 401/403 (the UI would log out).
        assert await status_of(admin, server.url, "/api/state/0") == (503, {"detail": "box_unavailable"})
        async with http.get(f"{server.url}/api/state/0", headers=judge) as response:
            assert response.status == 503
        for kind, fields in (("PROGRESS_UPDATE", {"delta": 1}), ("RESET_BOX", {}), ("TIMER_SYNC", {"remaining": 5})):
            body = {"boxId": 0, "type": kind, "sessionId": "whatever", **fields}
            async with http.post(f"{server.url}/api/cmd", json=body, headers=judge) as response:
                assert (response.status, await response.json()) == (503, {"detail": "box_unavailable"}), kind
        assert (await post(admin, server.url, {"boxId": 0, "type": "START_TIMER", "sessionId": "x"}))[0] == 503
        assert (await get_state(admin, server.url, 1))["initiated"] is True  # the other box is unaffected

        health = (await status_of(admin, server.url, "/health"))[1]
        assert health["status"] == "degraded" and health["details"]["unavailable_boxes"] == [0]
        api_health = (await status_of(admin, server.url, "/api/health"))[1]
        assert api_health["status"] == "degraded" and api_health["storage"]["unavailable_boxes"] == [0]
        assert (await status_of(admin, server.url, "/api/health/ready")) == (
            200, {"status": "ready", "boxes_count": 2, "unavailable_boxes": [0]})
        assert (await status_of(admin, server.url, "/status/summary"))[1]["unavailable_boxes"] == [0]
        ops = (await status_of(admin, server.url, "/api/admin/ops/status"))[1]
        assert "lacks its history from seq 1" in ops["unavailableBoxes"]["0"]

        # A socket stays open and quiet, then gets the box the moment an admin starts it over.
        ws = await admin.ws_connect(f"{server.url.replace('http', 'ws')}/api/ws/0")
        try:
            first = await ws.receive(timeout=0.5)
        except TimeoutError:
            first = None
        assert first is None or (first.type == WSMsgType.TEXT and orjson.loads(first.data)["type"] == "PING")
        assert (await post(admin, server.url, init_body(0)))[0] == 200
        frames = [orjson.loads((await ws.receive(timeout=5)).data) for _ in range(2)]
        assert [f["type"] for f in frames] == ["INIT_ROUTE", "STATE_SNAPSHOT"]
        await ws.close()
        started = await get_state(admin, server.url, 0)
        assert started["boxVersion"] == last["boxVersion"] + 1 and started["sessionId"] != last["sessionId"]
        assert (await status_of(admin, server.url, "/api/health"))[1]["status"] == "ok"
    assert server.terminate() == 0
    restarted = [event for event in read_log(data) if event["boxId"] == 0][-1]
    assert restarted["seq"] == last["seq"] + 1 and restarted["action"] == "INIT_ROUTE"
    assert restarted["actorUsername"] == "admin" and "restoredState" in restarted

    # The new event carries the whole state: the box comes back from it even without a checkpoint.
    (data / "boxes" / "0.json").unlink()
    server = spawn_server(data)
    async with await admin_session(server.url) as admin:
        assert comparable(await get_state(admin, server.url, 0)) == comparable(started)
    assert server.terminate() == 0
    assert cli("check", "--storage-dir", str(data)).returncode == 0
