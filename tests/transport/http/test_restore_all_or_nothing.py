"""Restores are all or nothing, and a restored clock keeps the time the backup recorded."""
from __future__ import annotations

import errno
import hashlib
import io
import zipfile
from pathlib import Path
from typing import Any

import orjson
from aiohttp.test_utils import TestClient

from persistence.fs import FaultyFileSystem
from tests.conftest import make_config, serving
from tests.transport.cli.test_cli_commands import cli
from tests.transport.http.test_backup_restore import backup_now
from tests.transport.test_live_protocol import command, init_route, post, state
from transport.app import create_app


class ManualClock:
    """The boxes' clock, moved by the test: ten minutes pass in no time."""

    def __init__(self) -> None:
        self.ms = 1_767_225_600_000

    def now_ms(self) -> int:
        return self.ms


def rezip(path: Path, change: dict[str, bytes]) -> bytes:
    """The backup with some files replaced, and a manifest that vouches for them."""
    with zipfile.ZipFile(path) as original:
        entries = {info.filename: original.read(info.filename) for info in original.infolist()}
    entries.update(change)
    manifest = orjson.loads(entries.pop("manifest.json"))
    manifest["files"] = [{"path": name, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
                         for name, data in entries.items()]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
        archive.writestr("manifest.json", orjson.dumps(manifest))
    return buffer.getvalue()


def without_box_history(path: Path, box: int) -> bytes:
    """Box `box`'s checkpoint parses but lacks its sessionId, and the log lacks its first event:
    nothing in the zip can rebuild it."""
    with zipfile.ZipFile(path) as original:
        checkpoint = orjson.loads(original.read(f"boxes/{box}.json"))
        log = original.read("events.ndjson").splitlines(keepends=True)
    del checkpoint["state"]["sessionId"]
    kept = [line for line in log if (orjson.loads(line)["boxId"], orjson.loads(line)["seq"]) != (box, 1)]
    return rezip(path, {f"boxes/{box}.json": orjson.dumps(checkpoint), "events.ndjson": b"".join(kept)})


async def restore_zip(client: TestClient, data: bytes) -> tuple[int, Any]:
    response = await client.post("/api/admin/restore?force=1", data=data, headers={"Content-Type": "application/zip"})
    return response.status, await response.json()


async def test_a_zip_with_one_box_that_cannot_be_rebuilt_restores_nothing_here_or_on_the_command_line(
        client: TestClient, tmp_path: Path) -> None:
    for box in (0, 1):
        assert (await post(client, init_route(box)))[0] == 200
    assert (await command(client, 1, "PROGRESS_UPDATE", delta=1))[0] == 200
    damaged = without_box_history(await backup_now(client), 1)
    assert (await command(client, 0, "PROGRESS_UPDATE", delta=1))[0] == 200
    live = await state(client, 0)

    status, body = await restore_zip(client, damaged)
    assert status == 400, body
    assert "box 1 cannot be rebuilt" in body["detail"] and "sessionId is required" in body["detail"]
    assert await state(client, 0) == {**live, "remaining": live["remaining"]}  # box 0 was not restored either

    (tmp_path / "damaged.zip").write_bytes(damaged)
    result = cli("restore", str(tmp_path / "damaged.zip"), "--storage-dir", str(tmp_path / "restored"))
    assert result.returncode == 1 and "box 1 cannot be rebuilt" in result.stderr, result.stderr
    assert not (tmp_path / "restored").exists()


async def test_a_restore_of_several_boxes_is_written_in_one_sync_or_not_at_all(tmp_path: Path) -> None:
    fs = FaultyFileSystem()
    async with serving(create_app(make_config(tmp_path / "data"), fs=fs)) as client:
        for box in (0, 1, 2):
            assert (await post(client, init_route(box)))[0] == 200
        saved = (await (await client.get("/api/admin/backup/full")).json())["snapshots"]
        for box in (0, 1, 2):
            assert (await command(client, box, "PROGRESS_UPDATE", delta=1))[0] == 200
        before = {box: (await state(client, box))["boxVersion"] for box in (0, 1, 2)}

        # The first sync works, any later one fails: restoring box by box would keep only box 0.
        fs.inject("fdatasync", errno.EIO, path_contains="events.ndjson", skip=1)
        syncs = len([c for c in fs.calls if c[0] == "fdatasync"])
        response = await client.post("/api/admin/restore?force=1", json={"snapshots": saved})
        assert response.status == 200, await response.text()
        assert len([c for c in fs.calls if c[0] == "fdatasync"]) == syncs + 1
        after = {box: (await state(client, box))["boxVersion"] for box in (0, 1, 2)}
        assert all(after[box] == before[box] + 1 for box in (0, 1, 2))

        # The failing sync is still armed: now the one write fails, and no box is restored.
        response = await client.post("/api/admin/restore?force=1", json={"snapshots": saved})
        body = await response.json()
        assert response.status == 503 and body["detail"] == "storage_unavailable" and body["restored"] == []
        assert {box: (await state(client, box))["boxVersion"] for box in (0, 1, 2)} == after
        log = [orjson.loads(line) for line in (tmp_path / "data" / "events.ndjson").read_bytes().splitlines()]
        assert [e["action"] for e in log].count("RESTORE") == 3


async def test_a_restored_running_clock_keeps_the_time_the_backup_recorded(tmp_path: Path) -> None:
    clock = ManualClock()
    async with serving(create_app(make_config(tmp_path / "data"), clock=clock)) as client:
        assert (await post(client, init_route(0, timerPreset="03:00")))[0] == 200
        assert (await command(client, 0, "START_TIMER"))[0] == 200
        clock.ms += 10_000
        snapshot = (await (await client.get("/api/admin/backup/box/0")).json())["snapshot"]
        assert snapshot["remaining"] == 170
        zip_path = await backup_now(client)
        clock.ms += 10 * 60_000  # the backup is ten minutes old when it is put back

        response = await client.post("/api/admin/restore?force=1", json={"snapshots": [snapshot]})
        assert response.status == 200, await response.text()
        restored = await state(client)
        assert (restored["timerState"], restored["remaining"]) == ("paused", 170)

        assert (await command(client, 0, "RESUME_TIMER"))[0] == 200
        clock.ms += 60_000
        status, body = await restore_zip(client, zip_path.read_bytes())
        assert status == 200, body
        restored = await state(client)
        assert (restored["timerState"], restored["remaining"]) == ("paused", 170)


async def test_a_rolled_back_running_clock_has_the_time_left_at_that_version(tmp_path: Path) -> None:
    clock = ManualClock()
    async with serving(create_app(make_config(tmp_path / "data"), clock=clock)) as client:
        assert (await post(client, init_route(0, timerPreset="03:00")))[0] == 200
        assert (await command(client, 0, "START_TIMER"))[0] == 200  # version 2, at 0 s
        clock.ms += 20_000
        assert (await command(client, 0, "PROGRESS_UPDATE", delta=1))[0] == 200  # version 3, at 20 s
        clock.ms += 10 * 60_000

        for version, left in ((3, 160), (2, 180)):
            response = await client.post("/api/admin/boxes/0/rollback", json={"boxVersion": version})
            assert response.status == 200, await response.text()
            back = await state(client)
            assert (back["timerState"], back["remaining"]) == ("paused", left), version
