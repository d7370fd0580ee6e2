"""Disk full and I/O errors (FaultyFileSystem): each failing command gets its route's error, nothing
is broadcast, the log ends at a committed line, nothing acknowledged is lost across a restart,
and the server recovers by itself."""
from __future__ import annotations

import errno
from pathlib import Path
from typing import Any

import orjson
import pytest

from persistence.fs import FaultyFileSystem
from tests.conftest import assert_silent, make_config, serving
from tests.reliability.figures import record
from tests.transport.test_live_protocol import command, init_route, post, state
from transport.app import create_app

STORAGE_503 = (503, {"detail": "storage_unavailable"})


def log_events(data: Path) -> list[dict[str, Any]]:
    events = []
    for path in [*sorted(data.glob("events.*.ndjson")), data / "events.ndjson"]:
        raw = path.read_bytes()
        assert raw == b"" or raw.endswith(b"\n"), f"{path.name} must end at a committed line"
        events.extend(orjson.loads(line) for line in raw.splitlines())
    return events


async def progress(client) -> tuple[int, Any]:
    return await command(client, 0, "PROGRESS_UPDATE", delta=1)


async def judge_password(client) -> tuple[int, Any]:
    response = await client.post("/api/admin/auth/boxes/0/password", json={"password": "p-judge-0"})
    return response.status, await response.json()


async def backup_now(client) -> tuple[int, Any]:
    response = await client.post("/api/admin/ops/backup/now")
    return response.status, await response.json()


async def set_officials(client) -> tuple[int, Any]:
    response = await client.post("/api/admin/competition_officials", json={"judgeChief": "Ion Pop"})
    return response.status, await response.json()


# (name, inject(fs), the affected call, expected failure (status, body or None for any body))
CASES = [
    ("enospc_log_write_partial", lambda fs: fs.inject("write_all", errno.ENOSPC, path_contains="events.ndjson",
                                                      partial=17), progress, STORAGE_503),
    ("eio_fdatasync_and_its_cut_back", lambda fs: fs.inject("fdatasync", errno.EIO, path_contains="events.ndjson",
                                                            times=2), progress, STORAGE_503),
    ("fdatasync_fails_once_then_succeeds", lambda fs: fs.inject("fdatasync", errno.EIO,
                                                                path_contains="events.ndjson"), progress, STORAGE_503),
    ("eio_checkpoint_write", lambda fs: fs.inject("write_all", errno.EIO, path_contains="boxes"), backup_now,
     (503, None)),
    pytest.param("enospc_users_json", lambda fs: fs.inject("write_all", errno.ENOSPC, path_contains="users.json",
                                                           partial=5), judge_password, STORAGE_503),
    pytest.param("enospc_officials_json", lambda fs: fs.inject("write_all", errno.ENOSPC,
                                                               path_contains="competition_officials", partial=5),
                 set_officials, STORAGE_503),
]
IDS = ["enospc_log_write_partial", "eio_fdatasync_and_its_cut_back", "fdatasync_fails_once_then_succeeds",
       "eio_checkpoint_write", "enospc_users_json", "enospc_officials_json"]


@pytest.mark.parametrize("name,inject,call,expected", CASES, ids=IDS)
async def test_io_fault_fails_cleanly_and_recovers(tmp_path: Path, name, inject, call, expected) -> None:
    data = tmp_path / "data"
    fs = FaultyFileSystem()
    config = make_config(data, checkpoint_interval_s=60.0)  # checkpoints only when asked (backup, shutdown)
    acked_versions: list[int] = []
    async with serving(create_app(config, fs=fs)) as client:
        assert (await post(client, init_route()))[0] == 200
        for _ in range(2):
            assert (await progress(client))[0] == 200
            acked_versions.append((await state(client))["boxVersion"])
        ws = await client.ws_connect("/api/ws/0")
        await ws.receive(timeout=5)  # the first snapshot
        before = await state(client)
        calls_before = len(fs.calls)

        inject(fs)
        status, body = await call(client)
        assert not fs._faults, f"{name}: the fault never fired"
        assert status == expected[0], (name, status, body)
        if expected[1] is not None:
            assert body == expected[1], (name, body)
        await assert_silent(ws)
        assert await state(client) == before, "the box must stay at its last durable state"
        committed = log_events(data)
        assert [e["boxVersion"] for e in committed] == [1, *acked_versions]

        # Recovery: the same call works now, and so do scoring commands.
        status, body = await call(client)
        assert status == 200, (name, status, body)
        assert (await progress(client))[0] == 200
        acked_versions.append((await state(client))["boxVersion"])
        live = await state(client)
        await ws.close()
        injected_calls = len(fs.calls) - calls_before
    events = log_events(data)
    assert set(acked_versions) <= {e["boxVersion"] for e in events}

    async with serving(create_app(make_config(data))) as client:  # restart on the same directory
        after = await state(client)
        assert after["boxVersion"] == live["boxVersion"] and after["holdCount"] == live["holdCount"]
        if call is judge_password:
            assert (await client.post("/api/auth/login", json={"username": "Box 0",
                                                                "password": "p-judge-0"})).status == 200
    record("io_faults", case=name, injections=1, acknowledged_checked=len(acked_versions), lost=0,
           calls_after_injection=injected_calls)
