"""Never a bricked box: restores, checkpoints and replayed events are held to the bounds the commands
enforce, over real sockets, real files and real restarts (issue 16, item 2)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
from aiohttp.test_utils import TestClient

from actors.rules.limits import MAX_BOX_VERSION
from tests.conftest import make_config, serving
from tests.transport.cli.test_cli_commands import cli, play
from tests.transport.http.test_backup_restore import backup_now
from tests.transport.test_live_protocol import command, init_route, post, state
from transport.app import create_app

SAFE = "must be an integer from 0 to 9007199254740991"


async def restore_json(client: TestClient, *snapshots: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    response = await client.post("/api/admin/restore?force=1", data=orjson.dumps({"snapshots": list(snapshots)}),
                                 headers={"Content-Type": "application/json"})
    return response.status, await response.json()


async def restore_zip(client: TestClient, path: Path) -> tuple[int, dict[str, Any]]:
    response = await client.post("/api/admin/restore?force=1", data=path.read_bytes(),
                                 headers={"Content-Type": "application/zip"})
    return response.status, await response.json()


async def backup_of(client: TestClient, box_id: int) -> dict[str, Any]:
    response = await client.get(f"/api/admin/backup/box/{box_id}")
    assert response.status == 200, await response.text()
    return (await response.json())["snapshot"]


async def assert_box_works(client: TestClient, box_id: int) -> None:
    """Commands, reads, a backup of the box, and a full restore of the competition all still work."""
    for _ in range(2):  # two: a version one short of a bad bound fails only on the second
        status, body = await command(client, box_id, "PROGRESS_UPDATE", delta=1)
        assert status == 200, body
    live = await state(client, box_id)
    status, body = await restore_json(client, await backup_of(client, box_id))
    assert (status, body["boxes"][0]["boxVersion"]) == (200, live["boxVersion"] + 1), body
    status, body = await restore_zip(client, await backup_now(client))
    assert status == 200, body


async def test_the_issue_s_restore_is_refused_and_the_competition_keeps_working(client: TestClient) -> None:
    await post(client, init_route(2))
    await command(client, 2, "SUBMIT_SCORE", competitor="Ana Pop", score=7.1, registeredTime=55)
    good = await backup_of(client, 2)

    def hostile(**state_changes: Any) -> dict[str, Any]:
        top = {key: value for key, value in state_changes.items() if key in good}
        return {**good, **top, "state": {**good["state"], **state_changes}}

    cases = [
        (hostile(boxVersion=2**64 - 3), f"snapshot 0: state.boxVersion {SAFE}"),
        (hostile(boxVersion=2**53), f"snapshot 0: state.boxVersion {SAFE}"),
        (hostile(holdCount=1e308), "snapshot 0: state.holdCount must be a number from 0 to 20 in steps of 0.1"),
        (hostile(routeIndex=0), "snapshot 0: state.routeIndex must be an integer from 1 to 999"),
        ({**good, "state": {**good["state"], "remaining": -1}},
         "snapshot 0: state.remaining must be a number from 0 to 9999 or null"),
        ({**good, "boxVersion": good["boxVersion"] + 1}, "snapshot 0: boxVersion does not match state.boxVersion"),
        ({**good, "remaining": "abc"}, "snapshot 0: remaining must be a number from 0 to 9999 or null"),
    ]
    before = await state(client, 2)
    for snapshot, detail in cases:
        assert await restore_json(client, snapshot) == (400, {"detail": detail})
    assert await state(client, 2) == {**before, "remaining": before["remaining"]}
    await assert_box_works(client, 2)


async def test_every_backup_belay_writes_restores_running_clocks_and_decisions_included(client: TestClient) -> None:
    await post(client, init_route(3, competitors=[{"nume": "Ana Pop", "club": "CS Arad"}, {"nume": "Bogdan"},
                                                  {"nume": "Cris O'Connor"}]))
    await command(client, 3, "SET_TIME_CRITERION", timeCriterionEnabled=True)
    await command(client, 3, "SUBMIT_SCORE", competitor="Ana Pop", score=7.1, registeredTime=55)
    await command(client, 3, "SUBMIT_SCORE", competitor="Bogdan", score=7.1, registeredTime=61.5)
    fingerprint = (await state(client, 3))["leadTieEvents"][0]["fingerprint"]
    await command(client, 3, "SET_PREV_ROUNDS_TIEBREAK_DECISION", prevRoundsTiebreakDecision="no",
                  prevRoundsTiebreakFingerprint=fingerprint)
    fingerprint = (await state(client, 3))["leadTieEvents"][0]["fingerprint"]
    await command(client, 3, "SET_TIME_TIEBREAK_DECISION", timeTiebreakDecision="yes",
                  timeTiebreakFingerprint=fingerprint)
    await command(client, 3, "PROGRESS_UPDATE", delta=0.1)
    await command(client, 3, "START_TIMER")
    await post(client, init_route(4))
    saved = await backup_of(client, 3)
    assert saved["state"]["timerState"] == "running" and saved["state"]["leadTiebreakBadgesByName"]

    status, body = await restore_json(client, saved)
    assert status == 200, body
    full = await (await client.get("/api/admin/backup/full")).json()
    status, body = await restore_json(client, *full["snapshots"])
    assert (status, body["restored"]) == (200, [3, 4]), body
    restored = await state(client, 3)
    assert restored["timeTiebreakDecisions"] == saved["state"]["timeTiebreakDecisions"]
    assert restored["scoresByName"] == saved["scores"] and restored["timerState"] == "paused"
    status, body = await restore_zip(client, await backup_now(client))
    assert status == 200, body


async def test_a_hand_edited_checkpoint_with_an_impossible_number_is_set_aside_and_rebuilt(tmp_path: Path) -> None:
    config = make_config(tmp_path / "data")
    async with serving(create_app(config)) as client:
        for box_id in (4, 5):
            await post(client, init_route(box_id))
            await command(client, box_id, "PROGRESS_UPDATE", delta=1)
        saved = {box_id: await state(client, box_id) for box_id in (4, 5)}
    edit_checkpoint(config.storage_dir, 4, lambda doc: doc["state"].update(boxVersion=2**64 - 3, holdCount=1e308))
    edit_checkpoint(config.storage_dir, 5, lambda doc: doc.update(seq=2**64 - 1))

    async with serving(create_app(config)) as client:
        for box_id in (4, 5):  # rebuilt from the log exactly, not loaded, not dropped
            assert await state(client, box_id) == {**saved[box_id], "remaining": saved[box_id]["remaining"]}
        for box_id in (4, 5):
            await assert_box_works(client, box_id)
    assert len(list((config.storage_dir / "boxes" / "quarantine").iterdir())) == 2


async def test_replay_stops_at_a_logged_event_no_server_could_have_written(tmp_path: Path) -> None:
    config = make_config(tmp_path / "data")
    async with serving(create_app(config)) as client:
        for box_id in (6, 7):
            await post(client, init_route(box_id))
            await command(client, box_id, "PROGRESS_UPDATE", delta=1)
        saved = {box_id: await state(client, box_id) for box_id in (6, 7)}
        assert (await restore_json(client, await backup_of(client, 6)))[0] == 200  # event 3 of box 6: RESTORE
        await command(client, 7, "START_TIMER")  # event 3 of box 7
        for box_id in (6, 7):
            await command(client, box_id, "PROGRESS_UPDATE", delta=1)

    def damage(event: dict[str, Any]) -> None:
        if event.get("seq") == 3 and event["boxId"] == 6:
            event["restoredState"]["boxVersion"] = 2**64 - 3
        if event.get("seq") == 3 and event["boxId"] == 7:
            event["nowMs"] = 10**30
    edit_log(config.storage_dir, damage)
    for box_id in (6, 7):  # no checkpoint: the log is all there is
        (config.storage_dir / "boxes" / f"{box_id}.json").unlink()

    async with serving(create_app(config)) as client:
        for box_id in (6, 7):  # not applied, and not brought back cut short either
            response = await client.get(f"/api/state/{box_id}")
            assert (response.status, await response.json()) == (503, {"detail": "box_unavailable"})
        for box_id in (6, 7):  # the versions before the impossible line still roll back
            response = await client.post(f"/api/admin/boxes/{box_id}/rollback",
                                         json={"boxVersion": saved[box_id]["boxVersion"]})
            assert response.status == 200, await response.text()
            live = await state(client, box_id)
            assert live["holdCount"] == saved[box_id]["holdCount"] and live["boxVersion"] > saved[box_id]["boxVersion"]
        for box_id in (6, 7):
            await assert_box_works(client, box_id)


async def test_a_box_at_the_last_version_says_so_instead_of_failing(tmp_path: Path) -> None:
    config = make_config(tmp_path / "data")
    async with serving(create_app(config)) as client:
        await post(client, init_route(8))
        saved = await backup_of(client, 8)
    edit_checkpoint(config.storage_dir, 8, lambda doc: doc["state"].update(boxVersion=MAX_BOX_VERSION))

    async with serving(create_app(config)) as client:
        assert (await state(client, 8))["boxVersion"] == MAX_BOX_VERSION
        status, body = await command(client, 8, "PROGRESS_UPDATE", delta=1)
        assert status == 400 and "highest a client can count to" in body["detail"]
        status, body = await restore_json(client, saved)
        assert status == 400 and body["detail"].startswith(f"box 8 cannot be restored: boxVersion {SAFE}"), body
        assert (await state(client, 8))["boxVersion"] == MAX_BOX_VERSION
        assert (await client.get("/api/admin/backup/box/8")).status == 200
        status, body = await restore_zip(client, await backup_now(client))
        assert status == 400 and "room for later commands" in body["detail"], body


def edit_checkpoint(storage_dir: Path, box_id: int, change: Any) -> None:
    path = storage_dir / "boxes" / f"{box_id}.json"
    doc = orjson.loads(path.read_bytes())
    change(doc)
    path.write_text(_dumps(doc))


def edit_log(storage_dir: Path, change: Any) -> None:
    path = storage_dir / "events.ndjson"
    lines = []
    for line in path.read_bytes().splitlines():
        event = orjson.loads(line)
        change(event)
        lines.append(_dumps(event))
    path.write_text("".join(line + "\n" for line in lines))


def _dumps(value: Any) -> str:
    """json, not orjson: a hand edit can hold integers orjson would refuse to write."""
    import json
    return json.dumps(value, ensure_ascii=False)


async def test_check_reports_and_repair_sets_aside_a_checkpoint_with_an_impossible_number(spawn_server,
                                                                                         tmp_path: Path) -> None:
    data = tmp_path / "data"
    server = spawn_server(data)
    await play(server.url, boxes=2)
    assert server.terminate() == 0
    saved = {box_id: orjson.loads((data / "boxes" / f"{box_id}.json").read_bytes()) for box_id in (0, 1)}
    edit_checkpoint(data, 0, lambda doc: doc["state"].update(boxVersion=2**64 - 3))
    edit_checkpoint(data, 1, lambda doc: doc.update(seq=2**53))

    found = cli("check", "--storage-dir", str(data))
    assert found.returncode == 1
    assert f"invalid state: boxVersion {SAFE}" in found.stdout and "seq or state is missing or wrong" in found.stdout

    repaired = cli("check", "--storage-dir", str(data), "--repair")
    assert repaired.returncode == 0, repaired.stdout + repaired.stderr
    assert len(list((data / "boxes" / "quarantine").iterdir())) == 2
    for box_id in (0, 1):  # rebuilt from the log alone, exactly
        rebuilt = orjson.loads((data / "boxes" / f"{box_id}.json").read_bytes())
        assert (rebuilt["seq"], rebuilt["state"]) == (saved[box_id]["seq"], saved[box_id]["state"])
    assert cli("check", "--storage-dir", str(data)).returncode == 0
