"""`run.py history` and `run.py rollback` against the routes, with run.py in subprocesses."""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import orjson

from tests.reliability.crash_soak import read_log
from tests.system.test_restart_and_crash import admin_session, comparable, get_state, init_body, post, send
from tests.transport.cli.test_cli_commands import cli

# What differs between two rollbacks of the same history made at different moments by different people.
MOMENT_KEYS = {"id", "createdAt", "nowMs", "sessionId", "actorUsername", "actorRole", "actorIp", "actorUserAgent"}


def last_event(data: Path, box: int) -> dict[str, Any]:
    return [event for event in read_log(data) if event["boxId"] == box][-1]


def same_apart_from_the_moment(event: dict[str, Any]) -> dict[str, Any]:
    kept = {key: value for key, value in event.items() if key not in MOMENT_KEYS}
    kept["payload"] = {key: value for key, value in event["payload"].items() if key != "sessionId"}
    kept["restoredState"] = {key: value for key, value in event["restoredState"].items() if key != "sessionId"}
    return kept


async def test_history_and_an_offline_rollback_give_what_the_routes_give(spawn_server, tmp_path: Path) -> None:
    data = tmp_path / "data"
    server = spawn_server(data)
    async with await admin_session(server.url) as session:
        assert (await post(session, server.url, init_body(0)))[0] == 200
        for name, score in (("Ana Pop", 12), ("Bogdan Ionescu", 7.1)):
            assert (await send(session, server.url, 0, "SUBMIT_SCORE", competitor=name, score=score))[0] == 200
        assert (await post(session, server.url, {**init_body(0), "categorie": "Replaced"}))[0] == 200
        async with session.get(f"{server.url}/api/admin/boxes/0/history") as response:
            api = (await response.json())["versions"]

    listing = cli("history", "--box", "0", "--json", "--storage-dir", str(data))  # beside the running server
    assert listing.returncode == 0, listing.stderr
    assert [orjson.loads(line) for line in listing.stdout.splitlines()] == api
    table = cli("history", "--box", "0", "--limit", "2", "--storage-dir", str(data)).stdout.splitlines()
    assert table[0].split() == ["version", "time", "action", "user", "role", "category", "route", "scores"]
    assert table[1].split()[0] == "4" and "Replaced" in table[1] and table[-1] == "older versions: --before 3"
    for bad in (("--limit", "0"), ("--before", "9" * 50), ("--action", "NOPE"), ("--box", "10000")):
        assert cli("history", "--box", "0", *bad, "--storage-dir", str(data)).returncode == 2, bad
    for command in ("history", "rollback"):
        assert cli(command, "--help").returncode == 0 and command in cli("--help").stdout
    refused = cli("rollback", "--box", "0", "--to", "3", "--storage-dir", str(data))
    assert refused.returncode == 2 and "stop it first" in refused.stderr, refused.stderr
    assert server.terminate() == 0

    copy = tmp_path / "copy"
    shutil.copytree(data, copy)
    server = spawn_server(data)
    async with await admin_session(server.url) as session:
        async with session.post(f"{server.url}/api/admin/boxes/0/rollback", json={"boxVersion": 3}) as response:
            assert response.status == 200, await response.text()
        by_route = await get_state(session, server.url, 0)
    assert server.terminate() == 0

    assert cli("rollback", "--box", "0", "--to", "99", "--storage-dir", str(copy)).returncode == 1
    done = cli("rollback", "--box", "0", "--to", "3", "--storage-dir", str(copy))
    assert done.returncode == 0, done.stderr
    assert "box 0 rolled back to version 3: it is now version 5" in done.stdout
    route_event, cli_event = last_event(data, 0), last_event(copy, 0)
    assert cli_event["action"] == "RESTORE" and cli_event["payload"]["source"] == "rollback to version 3"
    assert same_apart_from_the_moment(cli_event) == same_apart_from_the_moment(route_event)
    assert cli_event["actorUserAgent"] == "run.py rollback"

    assert cli("check", "--storage-dir", str(copy)).returncode == 0
    server = spawn_server(copy)
    async with await admin_session(server.url) as session:
        by_cli = await get_state(session, server.url, 0)
    assert server.terminate() == 0
    assert comparable({**by_cli, "sessionId": None}) == comparable({**by_route, "sessionId": None})
    assert by_cli["categorie"] == "Cat 0" and by_cli["scoresByName"] == {"Ana Pop": [12.0], "Bogdan Ionescu": [7.1]}
