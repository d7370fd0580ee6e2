"""`run.py users disable|enable|remove|passwd|add` as real subprocesses, with the server stopped and
while it runs (through its server.json), and what they do to sessions (issue 16, items 6 and 13)."""
from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

import orjson
from aiohttp import ClientSession, WSMsgType

from tests.conftest import ADMIN_PASSWORD
from tests.transport.cli.test_cli_commands import STRONG, cli

JUDGE_PASSWORD = "judge-one-secret"


async def token_of(url: str, username: str, password: str) -> str:
    async with ClientSession() as session:
        async with session.post(f"{url}/api/auth/login", json={"username": username, "password": password}) as r:
            assert r.status == 200, await r.text()
            return (await r.json())["access_token"]


async def request(url: str, token: str, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    async with ClientSession(headers={"Authorization": f"Bearer {token}"}) as session:
        async with session.request(method, f"{url}{path}", json=body) as r:
            return r.status, await r.json()


async def set_judge(url: str, box_id: int, username: str | None = None) -> None:
    admin = await token_of(url, "admin", ADMIN_PASSWORD)
    status, reply = await request(url, admin, "POST", f"/api/admin/auth/boxes/{box_id}/password",
                                  {"password": JUDGE_PASSWORD, "username": username})
    assert status == 200, reply


def users_file(data: Path) -> dict[str, Any]:
    return orjson.loads((data / "users.json").read_bytes())


async def stopped_server_with_a_judge(spawn_server, data: Path) -> None:  # type: ignore[no-untyped-def]
    server = spawn_server(data)
    await set_judge(server.url, 1, "Lead")
    assert server.terminate() == 0


async def test_disable_enable_and_remove_with_the_server_stopped(spawn_server, tmp_path: Path) -> None:
    data = tmp_path / "data"
    await stopped_server_with_a_judge(spawn_server, data)
    d = str(data)

    disabled = cli("users", "disable", "lead", "--storage-dir", d)
    assert disabled.returncode == 0, disabled.stderr
    assert "disabled" in disabled.stdout and "sessions are ended" in disabled.stdout
    assert {k: u["is_active"] for k, u in users_file(data).items()} == {"admin": True, "Lead": False,
                                                                        "Box 1": False, "1": False}
    assert "already" in cli("users", "disable", "Box 1", "--storage-dir", d).stdout
    assert cli("users", "enable", "1", "--storage-dir", d).returncode == 0
    assert all(u["is_active"] for u in users_file(data).values())

    removed = cli("users", "remove", "Box 1", "--storage-dir", d)
    assert removed.returncode == 0, removed.stderr
    assert sorted(users_file(data)) == ["admin"]
    for action in ("disable", "remove"):
        refused = cli("users", action, "admin", "--storage-dir", d)
        assert refused.returncode == 1 and "last active admin" in refused.stderr
        unknown = cli("users", action, "ghost", "--storage-dir", d)
        assert unknown.returncode == 1 and "there is no account 'ghost'" in unknown.stderr
    assert sorted(users_file(data)) == ["admin"] and users_file(data)["admin"]["is_active"] is True


async def test_a_judge_without_boxes_is_refused(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    result = cli("users", "add", "Ana", "--role", "judge", "--password-stdin", "--storage-dir", str(data),
                 stdin=STRONG + "\n")
    assert result.returncode == 2 and "a judge needs --boxes" in result.stderr
    assert not (data / "users.json").exists()


async def test_passwd_ends_the_accounts_sessions(spawn_server, tmp_path: Path) -> None:
    data = tmp_path / "data"
    server = spawn_server(data)
    token = await token_of(server.url, "admin", ADMIN_PASSWORD)
    assert server.terminate() == 0
    changed = cli("users", "passwd", "admin", "--password-stdin", "--storage-dir", str(data), stdin=STRONG + "\n")
    assert changed.returncode == 0, changed.stderr
    server = spawn_server(data)
    assert await request(server.url, token, "GET", "/api/auth/me") == (401, {"detail": "token_revoked"})
    assert (await request(server.url, await token_of(server.url, "admin", STRONG), "GET", "/api/auth/me"))[0] == 200


async def test_disable_and_remove_go_through_the_running_server(spawn_server, tmp_path: Path) -> None:
    data = tmp_path / "data"
    d = str(data)
    server = spawn_server(data)
    await set_judge(server.url, 1)
    server_file = data / "server.json"
    assert stat.S_IMODE(server_file.stat().st_mode) == 0o600
    local_token = orjson.loads(server_file.read_bytes())["token"]
    judge = await token_of(server.url, "Box 1", JUDGE_PASSWORD)
    async with ClientSession() as session:
        async with session.ws_connect(f"{server.url}/api/ws/1?token={judge}", autoping=False) as ws:
            assert orjson.loads((await ws.receive(timeout=10)).data)["type"] == "STATE_SNAPSHOT"
            disabled = cli("users", "disable", "Box 1", "--storage-dir", d)
            assert disabled.returncode == 0, disabled.stderr
            assert "by the running server" in disabled.stdout
            while (message := await ws.receive(timeout=10)).type in (WSMsgType.TEXT, WSMsgType.PING):
                pass
            assert (message.type, message.data, message.extra) == (WSMsgType.CLOSE, 4401, "token_revoked")
    assert await request(server.url, judge, "GET", "/api/state/1") == (401, {"detail": "token_revoked"})

    assert cli("users", "enable", "1", "--storage-dir", d).returncode == 0
    assert (await request(server.url, await token_of(server.url, "1", JUDGE_PASSWORD), "GET", "/api/state/1"))[0] == 200
    assert cli("users", "remove", "1", "--storage-dir", d).returncode == 0
    last = cli("users", "remove", "admin", "--storage-dir", d)
    assert last.returncode == 1 and "last active admin" in last.stderr
    still_stopped_only = cli("users", "passwd", "admin", "--password-stdin", "--storage-dir", d, stdin=STRONG + "\n")
    assert still_stopped_only.returncode == 2

    admin = await token_of(server.url, "admin", ADMIN_PASSWORD)
    _status, events = await request(server.url, admin, "GET", "/api/admin/audit/events?includePayload=1")
    by_cli = [(e["action"], e["actorUsername"], sorted(e["payload"]["usernames"])) for e in events
              if e["action"].startswith("USER_")]
    assert by_cli == [("USER_REMOVED", "run.py", ["1", "Box 1"]), ("USER_ENABLED", "run.py", ["1", "Box 1"]),
                      ("USER_DISABLED", "run.py", ["1", "Box 1"])]
    assert users_file(data).keys() == {"admin"}

    assert server.terminate() == 0
    assert not server_file.exists()
    assert local_token not in server.log()
    # The token died with its process: another server on the directory refuses it.
    server = spawn_server(data)
    assert await request(server.url, local_token, "GET", "/api/auth/me") == (401, {"detail": "token_revoked"})


async def test_a_server_file_of_another_process_is_not_used(spawn_server, tmp_path: Path) -> None:
    data = tmp_path / "data"
    server = spawn_server(data)
    await set_judge(server.url, 1)
    info = orjson.loads((data / "server.json").read_bytes())
    (data / "server.json").write_bytes(orjson.dumps({**info, "pid": info["pid"] + 1}))
    result = cli("users", "disable", "Box 1", "--storage-dir", str(data))
    assert result.returncode == 2 and "missing or not its own" in result.stderr
    assert users_file(data)["Box 1"]["is_active"] is True


async def test_check_passes_over_account_events(spawn_server, tmp_path: Path) -> None:
    data = tmp_path / "data"
    server = spawn_server(data)
    admin = await token_of(server.url, "admin", ADMIN_PASSWORD)
    body = {"boxId": 1, "type": "INIT_ROUTE", "routeIndex": 1, "holdsCount": 10, "competitors": [{"nume": "Ana"}]}
    assert (await request(server.url, admin, "POST", "/api/cmd", body))[0] == 200
    await set_judge(server.url, 1, "Lead")
    await set_judge(server.url, 2, "Lead")  # moves the name: a JUDGE_NAME_MOVED line
    assert cli("users", "disable", "Box 1", "--storage-dir", str(data)).returncode == 0
    assert server.terminate() == 0
    checked = cli("check", "--storage-dir", str(data))
    assert checked.returncode == 0, checked.stdout
    actions = [orjson.loads(line)["action"] for line in (data / "events.ndjson").read_bytes().splitlines()]
    assert actions.count("JUDGE_NAME_MOVED") == 1 and "USER_DISABLED" in actions
