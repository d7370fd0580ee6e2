"""Organiser commands of run.py (check, backup, restore, audit, users) as real subprocesses."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
from aiohttp import ClientSession

from persistence.backup import read_zip
from tests.conftest import ADMIN_PASSWORD, ROOT
from tests.system.test_restart_and_crash import admin_session, comparable, get_state, init_body, post, send

STRONG = "correct-horse-battery"


def cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([sys.executable, str(ROOT / "run.py"), *args], check=False, cwd=ROOT, capture_output=True,
                            text=True, timeout=60, input=stdin)
    assert "Traceback" not in result.stderr, result.stderr
    return result


async def play(url: str, boxes: int = 3) -> dict[int, dict[str, Any]]:
    """A few commands on each box; returns every box's snapshot afterwards."""
    async with await admin_session(url) as session:
        for box in range(boxes):
            assert (await post(session, url, init_body(box)))[0] == 200
            for _ in range(box + 1):
                assert (await send(session, url, box, "PROGRESS_UPDATE", delta=1))[0] == 200
        assert (await send(session, url, 1, "SUBMIT_SCORE", competitor="Ana Pop", score=12.1,
                           registeredTime=61.5))[0] == 200
        assert (await send(session, url, 2, "START_TIMER"))[0] == 200
        assert (await send(session, url, 2, "STOP_TIMER"))[0] == 200
        return {box: await get_state(session, url, box) for box in range(boxes)}


def snapshot_files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


# -- check ----------------------------------------------------------------------------------------

async def test_check_finds_damage_and_repair_fixes_it(spawn_server, tmp_path: Path) -> None:
    data = tmp_path / "data"
    server = spawn_server(data)
    await play(server.url)
    assert server.terminate() == 0

    healthy = cli("check", "--storage-dir", str(data))
    assert healthy.returncode == 0, healthy.stdout
    assert "healthy" in healthy.stdout and "3 of 3 box(es) replay consistently" in healthy.stdout

    saved = orjson.loads((data / "boxes" / "1.json").read_bytes())
    (data / "boxes" / "1.json").write_bytes(b'{"format": 1, "boxId": 1, "se')
    with open(data / "events.ndjson", "ab") as log:
        log.write(b'{"boxId": 0, "seq": 9')
    (data / "boxes" / "2.json.tmp").write_bytes(b"half a checkpoint")

    damaged = cli("check", "--storage-dir", str(data))
    assert damaged.returncode == 1
    problems = [line for line in damaged.stdout.splitlines() if line.startswith("problem:")]
    assert len(problems) == 3, damaged.stdout
    assert any("boxes/1.json is corrupt" in line for line in problems)
    assert any("torn tail" in line and "21 byte(s)" in line for line in problems)
    assert any("boxes/2.json.tmp" in line for line in problems)
    as_json = orjson.loads(cli("check", "--storage-dir", str(data), "--json").stdout)
    assert as_json["healthy"] is False and as_json["problems"] == 3

    repaired = cli("check", "--storage-dir", str(data), "--repair")
    assert repaired.returncode == 0, repaired.stdout + repaired.stderr
    assert "cut 21 torn byte(s)" in repaired.stdout and "removed 1 stray temp file" in repaired.stdout
    quarantined = list((data / "boxes" / "quarantine").iterdir())
    assert len(quarantined) == 1 and quarantined[0].read_bytes() == b'{"format": 1, "boxId": 1, "se'
    assert not (data / "boxes" / "2.json.tmp").exists()
    rebuilt = orjson.loads((data / "boxes" / "1.json").read_bytes())
    assert (rebuilt["seq"], rebuilt["state"]) == (saved["seq"], saved["state"])  # rebuilt from the log alone
    assert (data / "events.ndjson").read_bytes().endswith(b"}\n")
    assert cli("check", "--storage-dir", str(data)).returncode == 0


async def test_check_reports_a_checkpoint_the_log_does_not_replay_to(spawn_server, tmp_path: Path) -> None:
    data = tmp_path / "data"
    server = spawn_server(data)
    await play(server.url, boxes=1)
    assert server.terminate() == 0
    checkpoint = orjson.loads((data / "boxes" / "0.json").read_bytes())
    checkpoint["state"]["holdCount"] = 29.0
    (data / "boxes" / "0.json").write_bytes(orjson.dumps(checkpoint))
    lines = (data / "events.ndjson").read_bytes().splitlines(keepends=True)
    (data / "events.ndjson").write_bytes(b"".join([*lines[:1], b"not json\n", *lines[1:], *lines[1:2]]))
    result = cli("check", "--storage-dir", str(data))
    assert result.returncode == 1
    assert "differs in holdCount" in result.stdout
    assert "1 line(s) do not parse (line 2)" in result.stdout
    assert "seq 2 appears twice" in result.stdout


def test_repair_sets_a_document_that_does_not_parse_aside(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "competition_officials.json").write_bytes(b'{"judgeChief": "Ana')

    found = cli("check", "--storage-dir", str(data))
    assert found.returncode == 1
    assert "problem: competition_officials.json is not valid JSON" in found.stdout

    repaired = cli("check", "--repair", "--storage-dir", str(data))
    assert repaired.returncode == 0, repaired.stdout + repaired.stderr
    assert "repaired: competition_officials.json did not parse; moved aside next to it" in repaired.stdout
    kept = [p for p in data.iterdir() if p.name.startswith("competition_officials.json.corrupt-")]
    assert len(kept) == 1 and kept[0].read_bytes() == b'{"judgeChief": "Ana'


async def test_commands_that_need_the_server_stopped_refuse_while_it_runs(spawn_server, tmp_path: Path) -> None:
    data = tmp_path / "data"
    server = spawn_server(data)
    await play(server.url, boxes=1)
    before = snapshot_files(data)

    reading = cli("check", "--storage-dir", str(data))
    assert reading.returncode == 0, reading.stdout
    assert f"held by pid {server.proc.pid}" in reading.stdout
    for args in (("check", "--repair"), ("backup", "--backup-dir", str(tmp_path / "bk")),
                 ("users", "add", "eve", "--role", "viewer", "--password-stdin"),
                 ("users", "passwd", "admin", "--password-stdin")):
        result = cli(*args, "--storage-dir", str(data), stdin=STRONG + "\n")
        assert result.returncode == 2, (args, result.stdout, result.stderr)
        assert f"a Belay server (pid {server.proc.pid}) is using" in result.stderr, result.stderr
        assert "stop" in result.stderr
    assert "POST /api/admin/ops/backup/now" in cli("backup", "--storage-dir", str(data)).stderr
    assert not (tmp_path / "bk").exists()
    after = snapshot_files(data)
    assert after["users.json"] == before["users.json"]


# -- backup and restore ---------------------------------------------------------------------------

async def test_offline_backup_restores_into_a_new_directory(spawn_server, tmp_path: Path) -> None:
    data = tmp_path / "data"
    server = spawn_server(data)
    states = await play(server.url)
    assert server.terminate() == 0

    made = cli("backup", "--storage-dir", str(data), "--backup-dir", str(tmp_path / "bk"))
    assert made.returncode == 0, made.stderr
    assert made.stderr == ""  # no progress bar when stderr is not a terminal
    zips = list((tmp_path / "bk").glob("belay-backup-*.zip"))
    assert len(zips) == 1 and str(zips[0]) in made.stdout
    contents = read_zip(zips[0])
    assert {"events.ndjson", "users.json", "boxes/0.json", "boxes/1.json", "boxes/2.json"} <= set(contents.files)
    assert not (data / ".backup-staging").exists()

    occupied = tmp_path / "occupied"
    occupied.mkdir()
    (occupied / "notes.txt").write_text("keep me")
    refused = cli("restore", str(zips[0]), "--storage-dir", str(occupied))
    assert refused.returncode == 2 and "not empty" in refused.stderr
    assert snapshot_files(occupied) == {"notes.txt": b"keep me"}

    restored = tmp_path / "restored"
    result = cli("restore", str(zips[0]), "--storage-dir", str(restored))
    assert result.returncode == 0, result.stderr
    assert "3 box(es)" in result.stdout
    assert [p.name for p in tmp_path.iterdir() if "restoring" in p.name] == []
    server = spawn_server(restored)
    async with await admin_session(server.url) as session:
        for box, before in states.items():
            assert comparable(await get_state(session, server.url, box)) == comparable(before)


def test_restore_refuses_a_damaged_zip(tmp_path: Path) -> None:
    bad = tmp_path / "bad.zip"
    bad.write_bytes(b"PK\x03\x04 not really a zip")
    result = cli("restore", str(bad), "--storage-dir", str(tmp_path / "new"))
    assert result.returncode == 1 and "not a usable backup" in result.stderr
    assert not (tmp_path / "new").exists()


# -- audit ----------------------------------------------------------------------------------------

async def test_audit_tail_matches_the_api_newest_first(spawn_server, tmp_path: Path) -> None:
    data = tmp_path / "data"
    server = spawn_server(data)
    await play(server.url)
    async with await admin_session(server.url) as session:
        async with session.get(f"{server.url}/api/admin/audit/events", params={"limit": "3"}) as response:
            expected = await response.json()
        async with session.get(f"{server.url}/api/admin/audit/events",
                               params={"limit": "2", "boxId": "1", "includePayload": "1"}) as response:
            expected_box = await response.json()

    newest = cli("audit", "--tail", "3", "--json", "--storage-dir", str(data))  # while the server runs
    assert newest.returncode == 0, newest.stderr
    events = [orjson.loads(line) for line in newest.stdout.splitlines()]
    assert events == expected
    assert [e["action"] for e in events] == ["STOP_TIMER", "START_TIMER", "SUBMIT_SCORE"]
    assert all(e["payload"] is None for e in events)

    box = cli("audit", "--tail", "2", "--box", "1", "--json", "--payload", "--storage-dir", str(data))
    box_events = [orjson.loads(line) for line in box.stdout.splitlines()]
    assert box_events == expected_box and {e["boxId"] for e in box_events} == {1}
    assert box_events[0]["payload"] is not None

    table = cli("audit", "--storage-dir", str(data)).stdout.splitlines()
    assert table[0].split() == ["time", "box", "action", "version", "user", "role", "ip"]
    assert "STOP_TIMER" in table[1] and "admin" in table[1]
    assert cli("audit", "--tail", "0", "--storage-dir", str(data)).returncode == 2


# -- users ----------------------------------------------------------------------------------------

async def can_log_in(url: str, username: str, password: str) -> bool:
    async with ClientSession() as session:
        async with session.post(f"{url}/api/auth/login", json={"username": username, "password": password}) as r:
            return r.status == 200


async def test_users_add_list_passwd(spawn_server, tmp_path: Path) -> None:
    data = tmp_path / "data"
    server = spawn_server(data)  # creates admin
    # One request first: run.py prints "listening" a moment before it installs its SIGTERM handler.
    assert await can_log_in(server.url, "admin", ADMIN_PASSWORD)
    assert server.terminate() == 0
    d = str(data)

    added = cli("users", "add", "Maria", "--role", "judge", "--boxes", "1,2", "--password-stdin",
                "--storage-dir", d, stdin=STRONG + "\n")
    assert added.returncode == 0, added.stderr
    weak = cli("users", "add", "weakling", "--role", "viewer", "--password-stdin", "--storage-dir", d,
               stdin="short\n")
    assert weak.returncode == 1 and "weak" in weak.stderr
    assert cli("users", "add", "maria", "--role", "viewer", "--password-stdin", "--storage-dir", d,
               stdin=STRONG + "\n").returncode == 1  # taken (names compare without case)
    assert cli("users", "add", "x", "--role", "chief", "--storage-dir", d).returncode == 2

    listing = cli("users", "list", "--storage-dir", d)
    assert listing.returncode == 0
    rows = [line.split() for line in listing.stdout.splitlines()]
    assert rows[0] == ["username", "role", "boxes", "active"]
    assert ["Maria", "judge", "1,2", "yes"] in rows and ["admin", "admin", "-", "yes"] in rows
    assert "weakling" not in listing.stdout and "scrypt" not in listing.stdout
    as_json = [orjson.loads(line) for line in cli("users", "list", "--json", "--storage-dir", d).stdout.splitlines()]
    assert {"username": "Maria", "role": "judge", "boxes": [1, 2], "active": True} in as_json

    assert cli("users", "passwd", "admin", "--password-stdin", "--storage-dir", d,
               stdin="admin\n").returncode == 1  # weak
    changed = cli("users", "passwd", "admin", "--password-stdin", "--storage-dir", d, stdin="new-admin-secret\n")
    assert changed.returncode == 0, changed.stderr

    server = spawn_server(data)
    assert await can_log_in(server.url, "Maria", STRONG)
    assert await can_log_in(server.url, "admin", "new-admin-secret")
    assert not await can_log_in(server.url, "admin", ADMIN_PASSWORD)
    assert not await can_log_in(server.url, "weakling", "short")


def test_users_commands_apply_the_same_password_policy_as_the_api(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    d = str(tmp_path / "data")

    def add(name: str, role: str, password: str, *extra: str) -> subprocess.CompletedProcess[str]:
        return cli("users", "add", name, "--role", role, "--boxes", "3", "--password-stdin", *extra,
                   "--storage-dir", d, stdin=password + "\n")

    assert add("Finals", "judge", "k3-x9q").returncode == 0, "six characters are enough for a judge"
    viewer = add("Coach", "viewer", "k3-x9q")
    assert viewer.returncode == 1 and "at least 8 characters" in viewer.stderr
    assert add("Lead", "judge", "123456").returncode == 1, "a well-known default"
    own_name = cli("users", "passwd", "finals", "--password-stdin", "--storage-dir", d, stdin="FINALS\n")
    assert own_name.returncode == 1 and "own name" in own_name.stderr
    assert add("Lead", "judge", "12", "--allow-weak").returncode == 2, "no way around the policy"
    listed = cli("users", "list", "--storage-dir", d).stdout
    assert "Finals" in listed and "Coach" not in listed and "Lead" not in listed
