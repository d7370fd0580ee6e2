"""Damage done to the storage directory between runs, against `run.py` in a subprocess."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson

from tests.conftest import ADMIN_PASSWORD, ROOT
from tests.reliability.crash_soak import admin_session, get_state, init_body, post
from tests.reliability.figures import record


async def _send(session, url: str, box: int, kind: str, **fields) -> int:
    snap = await get_state(session, url, box)
    status, _ = await post(session, url, {"boxId": box, "type": kind, "sessionId": snap["sessionId"],
                                          "boxVersion": snap["boxVersion"], **fields})
    return status


def run_py(*args: str, timeout: float = 30) -> subprocess.CompletedProcess:
    env = {**os.environ, "DEFAULT_ADMIN_PASSWORD": ADMIN_PASSWORD, "BACKUP_INTERVAL_MIN": "0"}
    return subprocess.run([sys.executable, str(ROOT / "run.py"), *args], check=False, cwd=ROOT, env=env,
                          capture_output=True, timeout=timeout)


async def test_corrupt_line_in_the_middle_is_skipped_and_reported(spawn_server, tmp_path: Path) -> None:
    data = tmp_path / "data"
    server = spawn_server(data)
    async with await admin_session(server.url) as session:
        for box in (0, 1):
            assert (await post(session, server.url, init_body(box)))[0] == 200
        for _ in range(3):
            assert await _send(session, server.url, 0, "PROGRESS_UPDATE", delta=1) == 200
        assert await _send(session, server.url, 1, "PROGRESS_UPDATE", delta=1) == 200
    # A crash right now: nothing checkpointed, everything must come from the log.
    server.kill()
    for checkpoint in (data / "boxes").glob("*.json"):
        checkpoint.unlink()
    lines = (data / "events.ndjson").read_bytes().splitlines(keepends=True)
    events = [orjson.loads(line) for line in lines]
    # Damage box 0's second PROGRESS_UPDATE (seq 3 of 4): its history has a hole from there on.
    victim = next(i for i, e in enumerate(events) if e["boxId"] == 0 and e["seq"] == 3)
    lines[victim] = b'{"id": "garbage' + b"\x00" * 20 + b"\n"
    (data / "events.ndjson").write_bytes(b"".join(lines))

    server = spawn_server(data)
    log = server.log()
    assert "skipped 1 unreadable log line" in log, log[-2000:]
    async with await admin_session(server.url) as session:
        box1 = await get_state(session, server.url, 1)
        async with session.get(f"{server.url}/api/state/0") as response:
            box0 = (response.status, await response.json())
        command = {"boxId": 0, "type": "PROGRESS_UPDATE", "delta": 1, "sessionId": "any"}
        refused = await post(session, server.url, command)
        async with session.get(f"{server.url}/api/health") as response:
            health = await response.json()
    # Box 1's events are all intact: fully restored. Box 0 cannot be rebuilt past the hole, so it is
    # not brought back at version 2 as if seq 3 and 4 never happened (its next command would have
    # reused seq 3): it answers 503 box_unavailable, and health names it.
    assert box1["boxVersion"] == 2 and box1["holdCount"] == 1
    assert box0 == (503, {"detail": "box_unavailable"})
    assert refused == (503, {"detail": "box_unavailable"})
    assert health["status"] == "degraded" and health["storage"]["unavailable_boxes"] == [0]
    assert "box(es) [0] cannot be rebuilt" in log
    assert server.terminate() == 0
    check = run_py("check", "--storage-dir", str(data))
    assert check.returncode == 1 and b"box 0 cannot be rebuilt" in check.stdout, check.stdout[-2000:]
    record("damaged_dirs", case="corrupt_middle_line", bad_lines=1, box0_status=box0[0],
           check_exit=check.returncode)


async def test_missing_storage_dir_is_created(spawn_server, tmp_path: Path) -> None:
    data = tmp_path / "missing"  # (its parent holds the server log of the fixture)
    assert not data.exists()
    server = spawn_server(data)
    async with await admin_session(server.url) as session:
        assert (await post(session, server.url, init_body(0)))[0] == 200
    assert server.terminate() == 0
    assert (data / "events.ndjson").exists() and (data / "boxes" / "0.json").exists()
    record("damaged_dirs", case="missing_dir_created")


def test_unwritable_storage_dir_exits_2_with_a_clear_error(tmp_path: Path) -> None:
    """Root ignores chmod, so the directory is made impossible rather than read-only: it lies
    under a regular file (ENOTDIR), or the lock file's name is taken by a directory."""
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    under_file = run_py("--host", "127.0.0.1", "--port", "0", "--storage-dir", str(blocker / "data"))
    assert under_file.returncode == 2, under_file.stderr[-1500:]
    assert b"cannot" in under_file.stderr and b"Traceback" not in under_file.stderr, under_file.stderr[-1500:]

    data = tmp_path / "data"
    (data / "belay.lock").mkdir(parents=True)  # the lock file cannot be created
    no_lock = run_py("--host", "127.0.0.1", "--port", "0", "--storage-dir", str(data))
    assert no_lock.returncode == 2, no_lock.stderr[-1500:]
    assert b"belay.lock" in no_lock.stderr and b"Traceback" not in no_lock.stderr, no_lock.stderr[-1500:]
    record("damaged_dirs", case="unwritable_dir_exit_2", cases=2)


async def test_second_server_on_the_same_dir_is_refused(spawn_server, tmp_path: Path) -> None:
    data = tmp_path / "data"
    server = spawn_server(data)
    second = run_py("--host", "127.0.0.1", "--port", "0", "--storage-dir", str(data))
    assert second.returncode == 2
    assert b"in use by another Belay process" in second.stderr, second.stderr[-1500:]
    assert server.terminate() == 0
    record("damaged_dirs", case="second_server_refused")


async def test_deleted_last_archive(spawn_server, tmp_path: Path) -> None:
    """Boxes with a checkpoint at or after the rotation do not need the archive; `check` reports it."""
    data = tmp_path / "data"
    env = {"MAX_AUDIT_FILE_SIZE_MB": "0.004"}
    server = spawn_server(data, env=env)
    async with await admin_session(server.url) as session:
        for box in (0, 1):
            assert (await post(session, server.url, init_body(box)))[0] == 200
        for n in range(12):
            assert await _send(session, server.url, n % 2, "PROGRESS_UPDATE", delta=1) == 200
        before = {box: await get_state(session, server.url, box) for box in (0, 1)}
    assert server.terminate() == 0
    archives = sorted(data.glob("events.*.ndjson"))
    assert archives, "the scenario must rotate"
    archives[-1].unlink()

    server = spawn_server(data, env=env)
    async with await admin_session(server.url) as session:
        for box in (0, 1):
            after = await get_state(session, server.url, box)
            assert after["boxVersion"] == before[box]["boxVersion"]
            assert after["holdCount"] == before[box]["holdCount"]
    assert server.terminate() == 0
    check = run_py("check", "--storage-dir", str(data))
    report = (check.stdout + check.stderr).decode(errors="replace")
    record("damaged_dirs", case="deleted_last_archive", archives=len(archives), check_exit=check.returncode)
    assert "archive" in report.lower(), report[-2000:]
