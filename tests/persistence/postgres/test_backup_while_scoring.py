"""A backup on PostgreSQL, end to end over real sockets: the persister only fixes the point (a
snapshot), so judges are answered while the point is written out as files, and the backup still
holds exactly what was acknowledged before it; a database cut while the files are written fails
the backup alone, leaving nothing half-written behind.

The server's storage is the one the factory would make, with a hook that holds (or cuts) the
writing of a point once its events are written out and before its checkpoints are."""
from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import asyncpg
import orjson
from aiohttp import web
from aiohttp.test_utils import TestClient

from persistence.backup import backups, read_zip
from persistence.postgres.points import SNAPSHOT_SQL, STAGING_DIR, MidLayout
from persistence.postgres.storage import PostgresStorage
from tests.conftest import ROOT, serving
from tests.persistence.helpers import line
from tests.persistence.postgres.database import new_schema, terminate
from tests.persistence.postgres.servers import postgres_config, postgres_env, stored_events
from tests.transport.test_live_protocol import command, init_route, post
from transport.app import create_app
from transport.keys import CONFIG, STORAGE

WAIT_S = 30.0  # only a hang ends here; nothing is timed


def app_with_hook(tmp_path: Path, url: str, schema: str, mid_layout: MidLayout) -> web.Application:
    app = create_app(postgres_config(tmp_path / "data", url, schema, rate_limits=False))
    app[STORAGE] = PostgresStorage(url, schema, tmp_path / "data", mid_layout=mid_layout)
    return app


async def progress(client: TestClient) -> None:
    status, body = await asyncio.wait_for(command(client, 0, "PROGRESS_UPDATE", delta=1), WAIT_S)
    assert status == 200, body


async def test_judges_are_answered_while_a_point_is_written_out_and_the_backup_ends_at_the_freeze(
    tmp_path: Path, postgres_url: str
) -> None:
    schema = new_schema()
    writing, go_on = asyncio.Event(), asyncio.Event()

    async def hold(_backend_pid: int) -> None:
        writing.set()
        await go_on.wait()

    async with serving(app_with_hook(tmp_path, postgres_url, schema, hold)) as client:
        assert await post(client, init_route(0)) == (200, {"status": "ok"})
        await progress(client)
        acknowledged = await stored_events(postgres_url, schema)
        backup = asyncio.create_task(client.post("/api/admin/ops/backup/now"))
        try:
            await asyncio.wait_for(writing.wait(), WAIT_S)
            # The point is frozen and half written out: the persister's turn is over, judges go on.
            for _ in range(3):
                await progress(client)
            assert (await asyncio.wait_for(post(client, init_route(1)), WAIT_S))[0] == 200
            assert not backup.done()
        finally:
            go_on.set()  # a failure here must not leave the server held at shutdown
        response = await asyncio.wait_for(backup, WAIT_S)
        body = await response.json()
        assert response.status == 200, body
        stored = await stored_events(postgres_url, schema)
        zipped = client.app[CONFIG].backup_dir / body["filename"]

    contents = read_zip(zipped)
    in_backup = [orjson.loads(raw) for raw in contents.files["events.ndjson"].splitlines()]
    assert in_backup == acknowledged  # everything acknowledged before the freeze, nothing after
    assert len(stored) == len(acknowledged) + 4
    box_events = [event for event in acknowledged if event.get("boxId") == 0]
    assert orjson.loads(contents.files["boxes/0.json"])["seq"] == box_events[-1]["seq"]  # checkpointed at the freeze
    assert "boxes/1.json" not in contents.files
    assert not (tmp_path / "data" / STAGING_DIR).exists()


async def test_a_database_cut_while_a_point_is_written_fails_that_backup_alone_and_leaves_nothing(
    tmp_path: Path, postgres_url: str
) -> None:
    schema = new_schema()
    cuts: list[int] = []

    async def cut_once(backend_pid: int) -> None:
        if not cuts:
            cuts.append(backend_pid)
            await terminate(postgres_url, backend_pid)

    async with serving(app_with_hook(tmp_path, postgres_url, schema, cut_once)) as client:
        assert await post(client, init_route(0)) == (200, {"status": "ok"})
        await progress(client)

        response = await asyncio.wait_for(client.post("/api/admin/ops/backup/now"), WAIT_S)
        failed = await response.json()
        staging = tmp_path / "data" / STAGING_DIR
        left_behind = list(staging.rglob("*")) if staging.exists() else []
        status = await (await client.get("/api/admin/ops/status")).json()
        await progress(client)  # the persister never noticed
        retried = await asyncio.wait_for(client.post("/api/admin/ops/backup/now"), WAIT_S)

    assert cuts, "the hook never ran"
    assert response.status == 503
    assert "cannot write out the durable point of" in failed["detail"], failed
    assert left_behind == []  # no half-written point
    assert "cannot write out the durable point of" in status["backup"]["lastError"]
    assert status["backup"]["failed"] == 1
    assert retried.status == 200
    assert len(backups(tmp_path / "backups")) == 1 and not list((tmp_path / "backups").glob("*.part"))


async def snapshots_held(url: str) -> int:
    """Sessions of this database holding a durable point's snapshot open."""
    conn = await asyncpg.connect(url)
    try:
        held: int = await conn.fetchval("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                                        "AND state = 'idle in transaction' AND query = $1", SNAPSHOT_SQL)
        return held
    finally:
        await conn.close()


async def test_a_point_never_laid_out_lets_go_of_its_snapshot_with_the_storage(tmp_path: Path,
                                                                              postgres_url: str) -> None:
    storage = PostgresStorage(postgres_url, new_schema(), tmp_path / "data")
    await storage.open(False)
    try:
        await storage.append([line(0, 1)])
        frozen = await storage.freeze()
        held = await snapshots_held(postgres_url)
    finally:
        await storage.close()  # a shutdown while a backup waited to be written out

    assert held == 1
    assert await until_no_snapshot_held(postgres_url)
    assert not frozen.folder.exists()


async def test_a_point_a_crash_cut_short_is_swept_away_when_the_storage_opens(tmp_path: Path,
                                                                             postgres_url: str) -> None:
    half_written = tmp_path / "data" / STAGING_DIR / "0123abcd" / "events.ndjson"
    half_written.parent.mkdir(parents=True)
    half_written.write_bytes(line(0, 1))
    storage = PostgresStorage(postgres_url, new_schema(), tmp_path / "data")

    await storage.open(False)
    await storage.close()

    assert not (tmp_path / "data" / STAGING_DIR).exists()


async def until_no_snapshot_held(url: str) -> bool:
    """The server ends a session it was told to a moment later: asked again until then."""
    for _ in range(200):
        if await snapshots_held(url) == 0:
            return True
        await asyncio.sleep(0.05)
    return False


async def test_an_offline_backup_of_a_schema_holds_every_stored_event(tmp_path: Path, postgres_url: str) -> None:
    schema = new_schema()
    async with serving(create_app(postgres_config(tmp_path / "data", postgres_url, schema))) as client:
        assert await post(client, init_route(0)) == (200, {"status": "ok"})
        await progress(client)
    stored = await stored_events(postgres_url, schema)

    made = await asyncio.to_thread(
        subprocess.run, [sys.executable, str(ROOT / "run.py"), "backup", "--storage-dir", str(tmp_path / "data"),
                         "--backup-dir", str(tmp_path / "bk")],
        check=False, cwd=ROOT, capture_output=True, text=True, timeout=120,
        env={**os.environ, **postgres_env(postgres_url, schema)})

    assert made.returncode == 0, made.stderr
    [zipped] = backups(tmp_path / "bk")
    contents = read_zip(zipped)
    assert [orjson.loads(raw) for raw in contents.files["events.ndjson"].splitlines()] == stored
    assert "boxes/0.json" in contents.files and "users.json" in contents.files
    assert not (tmp_path / "data" / STAGING_DIR).exists()
