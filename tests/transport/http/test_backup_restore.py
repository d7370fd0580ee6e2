"""Backups under load and restores through the box actors, over real sockets and real files."""
from __future__ import annotations

import asyncio
import zipfile
from pathlib import Path

import orjson
from aiohttp.test_utils import TestClient

from actors.recovery.replay import replay
from persistence.backup import backups, read_zip
from tests.conftest import make_config, serving
from tests.transport.http.upload_helpers import zip_bytes
from tests.transport.test_live_protocol import command, init_route, next_of, post, state
from transport.app import create_app
from transport.keys import CONFIG


async def backup_now(client: TestClient) -> Path:
    response = await client.post("/api/admin/ops/backup/now")
    body = await response.json()
    assert response.status == 200, body
    return client.app[CONFIG].backup_dir / body["filename"]


async def test_backup_while_15_boxes_take_commands_is_one_durable_point(tmp_path: Path) -> None:
    # Judges as fast as the server answers: on a busy machine the backup's idle-priority worker takes
    # seconds, long enough to drain a box's score bucket, and a 429 is not what this test is about.
    async with serving(create_app(make_config(tmp_path / "data", rate_limits=False))) as client:
        await _backup_under_load(client)


async def _backup_under_load(client: TestClient) -> None:
    for box in range(15):
        assert (await post(client, init_route(box)))[0] == 200
    stop = asyncio.Event()

    async def judge(box: int) -> None:
        while not stop.is_set():
            status, _ = await command(client, box, "PROGRESS_UPDATE", delta=1 if box % 2 else 0.1)
            assert status == 200

    judges = [asyncio.create_task(judge(box)) for box in range(15)]
    await asyncio.sleep(0.3)
    path = await backup_now(client)
    await asyncio.sleep(0.2)
    stop.set()
    await asyncio.gather(*judges)

    contents = read_zip(path)  # verifies every checksum against the manifest
    names = set(contents.files)
    assert "jwt_secret" not in names and not any("secret" in n or "lock" in n for n in names)
    assert {"events.ndjson", "users.json"} <= names and len([n for n in names if n.startswith("boxes/")]) == 15
    log = [orjson.loads(line) for line in contents.files["events.ndjson"].splitlines()]
    assert len(contents.files["events.ndjson"]) == contents.manifest["committedLogOffset"]
    for box in range(15):
        checkpoint = orjson.loads(contents.files[f"boxes/{box}.json"])
        events = [e for e in log if e["boxId"] == box]
        # The log in the zip ends exactly where the checkpoint is: replaying it gives the same state.
        assert events[-1]["seq"] == checkpoint["seq"]
        rebuilt = replay(None, 0, events)
        assert rebuilt.state == checkpoint["state"]
        assert checkpoint["state"]["boxVersion"] <= (await state(client, box))["boxVersion"]


async def test_restore_round_trip_keeps_everything_and_starts_a_new_session(client: TestClient) -> None:
    await post(client, init_route(3, timerPreset="03:00"))
    await command(client, 3, "SET_TIME_CRITERION", timeCriterionEnabled=True)
    await command(client, 3, "SET_TIME_TIEBREAK_DECISION", timeTiebreakDecision="yes",
                  timeTiebreakFingerprint="tb3:abc")
    await command(client, 3, "SUBMIT_SCORE", competitor="Ana Pop", score=7.1, registeredTime=55)
    await command(client, 3, "START_TIMER")
    saved = (await (await client.get("/api/admin/backup/box/3")).json())["snapshot"]
    assert saved["state"]["timeTiebreakDecisions"] == {"tb3:abc": "yes"}
    assert saved["preparingClimber"] == "Cris O'Connor"

    for _ in range(3):
        await command(client, 3, "PROGRESS_UPDATE", delta=1)
    live = await state(client, 3)
    ws = await client.ws_connect("/api/ws/3")
    await next_of(ws, {"STATE_SNAPSHOT"})

    conflict = await client.post("/api/admin/restore", json={"snapshots": [saved]})
    body = await conflict.json()
    assert conflict.status == 409 and body["conflicts"][0]["boxId"] == 3

    done = await client.post("/api/admin/restore?force=true", json={"snapshots": [saved]})
    assert done.status == 200 and (await done.json())["restored"] == [3]
    pushed = await next_of(ws, {"STATE_SNAPSHOT"})
    after = await state(client, 3)
    assert pushed["boxVersion"] == after["boxVersion"] > live["boxVersion"]
    assert after["sessionId"] not in (live["sessionId"], saved["sessionId"])
    assert after["timerState"] == "paused" and 0 < after["remaining"] <= 180
    assert after["holdCount"] == saved["holdCount"] and after["scoresByName"] == saved["scores"]
    assert after["timeTiebreakDecisions"] == {"tb3:abc": "yes"} and after["timeCriterionEnabled"] is True
    # A tab that still has the old session cannot apply anything on top of the restore.
    stale = {"boxId": 3, "type": "PROGRESS_UPDATE", "delta": 1, "sessionId": live["sessionId"]}
    assert await post(client, stale) == (200, {"status": "ignored", "reason": "stale_session"})
    audit = await (await client.get("/api/admin/audit/events?boxId=3&limit=1")).json()
    assert audit[0]["action"] == "RESTORE" and audit[0]["actorUsername"] == "admin"
    await ws.close()


async def test_one_bad_snapshot_refuses_the_whole_restore(client: TestClient) -> None:
    await post(client, init_route(1))
    good = (await (await client.get("/api/admin/backup/box/1")).json())["snapshot"]
    before = await state(client, 1)
    bad = {**good, "boxId": 2, "state": {**good["state"], "scores": {"Ana": ["many"]}}}
    response = await client.post("/api/admin/restore", json={"snapshots": [good, bad]})
    assert response.status == 400 and "snapshot 1" in (await response.json())["detail"]
    assert await state(client, 1) == {**before, "remaining": before["remaining"]}
    assert (await client.get("/api/admin/backup/box/2")).status == 404


async def test_restore_from_the_backup_zip_and_after_a_restart(tmp_path: Path) -> None:
    config = make_config(tmp_path / "data")
    async with serving(create_app(config)) as client:
        await post(client, init_route(5))
        await command(client, 5, "PROGRESS_UPDATE", delta=1)
        saved = await state(client, 5)
        zip_path = await backup_now(client)
        await command(client, 5, "RESET_BOX")
        upload = await client.post("/api/admin/restore?force=1", data=zip_path.read_bytes(),
                                   headers={"Content-Type": "application/zip"})
        assert upload.status == 200, await upload.text()
        restored = await state(client, 5)
        assert restored["holdCount"] == 1 and restored["competitors"] == saved["competitors"]
    async with serving(create_app(config)) as client:
        assert await state(client, 5) == {**restored, "remaining": restored["remaining"]}


async def test_hostile_zips_are_refused(client: TestClient) -> None:
    cases = {
        "traversal": zip_bytes({"manifest.json": b"{}", "../../etc/passwd": b"x"}),
        "absolute": zip_bytes({"manifest.json": b"{}", "/boxes/1.json": b"x"}),
        "bomb": zip_bytes({"manifest.json": b"{}", "events.ndjson": b"\n" * (600 << 20)}),
        "no manifest": zip_bytes({"boxes/1.json": b"{}"}),
        "not a zip": b"PK\x03\x04 but not really",
    }
    for label, data in cases.items():
        response = await client.post("/api/admin/restore", data=data, headers={"Content-Type": "application/zip"})
        assert response.status == 400, label
        assert "invalid backup" in (await response.json())["detail"], label


async def test_tampered_backup_fails_its_checksum(client: TestClient) -> None:
    await post(client, init_route(0))
    original = zipfile.ZipFile(await backup_now(client))
    entries = {info.filename: original.read(info.filename) for info in original.infolist()}
    entries["boxes/0.json"] = entries["boxes/0.json"].replace(b'"holdsCount": 20', b'"holdsCount": 99')
    response = await client.post("/api/admin/restore", data=zip_bytes(entries),
                                 headers={"Content-Type": "application/zip"})
    assert response.status == 400 and "checksum" in (await response.json())["detail"]


async def test_backup_routes_report_and_download(client: TestClient) -> None:
    assert (await client.get("/api/admin/backup/last")).status == 404
    await post(client, init_route(0))
    path = await backup_now(client)
    last = await (await client.get("/api/admin/backup/last")).json()
    assert last["filename"] == path.name
    download = await client.get("/api/admin/backup/download")
    assert download.status == 200 and await download.read() == path.read_bytes()
    assert "attachment" in download.headers["Content-Disposition"]
    status = await (await client.get("/api/admin/ops/status")).json()
    assert status["backup"]["lastFile"] == path.name and status["backup"]["failed"] == 0
    full = await (await client.get("/api/admin/backup/full")).json()
    assert [s["boxId"] for s in full["snapshots"]] == [0]
    drill = await client.post("/api/admin/ops/drill/backup_restore")
    assert (await drill.json())["snapshots"] == 1


async def test_retention_keeps_exactly_n_backups(tmp_path: Path) -> None:
    async with serving(create_app(make_config(tmp_path / "data", backup_retention_files=3))) as client:
        await post(client, init_route(0))
        for _ in range(5):
            await backup_now(client)
        assert len(backups(tmp_path / "backups")) == 3


async def test_a_failed_backup_is_reported_and_never_stops_scoring(tmp_path: Path) -> None:
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("a file where the backup folder should be")
    async with serving(create_app(make_config(tmp_path / "data", backup_dir=blocked))) as client:
        await post(client, init_route(0))
        response = await client.post("/api/admin/ops/backup/now")
        assert response.status == 503 and "backup_failed" in (await response.json())["detail"]
        status = await (await client.get("/api/admin/ops/status")).json()
        assert status["backup"]["failed"] == 1 and status["backup"]["lastError"]
        assert (await command(client, 0, "PROGRESS_UPDATE", delta=1))[0] == 200
        assert not list((tmp_path / "data").glob(".backup-staging/*")), "staging links are cleaned up"


async def test_saved_results_are_in_the_backup(client: TestClient) -> None:
    await post(client, init_route(0))
    saved = await client.post("/api/save_ranking", json={"categorie": "U16 Băieți", "route_count": 1,
                                                          "scores": {"Ana Pop": [5], "Dan": [7.1]}})
    assert saved.status == 200, await saved.text()
    contents = read_zip(await backup_now(client))
    result_files = sorted(name.rsplit("/", 1)[1] for name in contents.files if name.startswith("results/"))
    assert result_files == ["overall.pdf", "overall.xlsx", "route_1.pdf", "route_1.xlsx"]
