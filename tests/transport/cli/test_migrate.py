"""`run.py migrate` between a JSON directory and a real PostgreSQL schema, as a subprocess: the round
trip is byte-exact, a side held by a server is refused, a dry run writes nothing, a damaged source
fails the proof and leaves the target as it was, and hostile arguments get a clear sentence."""
from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import asyncpg
import orjson
import pytest
from aiohttp import ClientSession

from actors.events import encode_account_event
from actors.messages import Origin
from actors.recovery.replay import load_state
from bench.competition import build
from bench.credentials import SERVER_ENV, admin_headers
from persistence.json.store import JsonStore
from persistence.postgres.storage import PostgresStorage
from tests.conftest import ROOT
from tests.persistence.postgres.database import new_schema
from tests.persistence.postgres.servers import postgres_env

OFFICIALS = {"chiefJudge": "Ana Pop", "judges": ["Dan", "Eva"]}


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([sys.executable, str(ROOT / "run.py"), "migrate", *args], check=False, cwd=ROOT,
                            capture_output=True, text=True, timeout=120, env={**os.environ, **(env or {})})
    assert "Traceback" not in result.stderr, result.stderr
    return result


def competition(root: Path, events: int = 400, boxes: int = 4) -> Path:
    """Real event lines over archives, an account change (a line without a seq), a reset (a second
    era) and more events after it, the documents."""
    build(root, events, boxes, rotate_bytes=60_000)
    account = encode_account_event(action="USER_DISABLED", box_id=None, now_ms=1_767_225_700_000,
                                   origin=Origin("admin", "admin", "127.0.0.1", "test"), payload={"username": "x"})
    with open(root / "events.ndjson", "ab") as log:
        log.write(account)
    store = JsonStore(root)
    store.open(reset_boxes=True)
    store.close()
    later = root.parent / f"{root.name}-later"
    build(later, 60, 2)
    os.replace(later / "events.ndjson", root / "events.ndjson")
    for checkpoint in (later / "boxes").iterdir():
        os.replace(checkpoint, root / "boxes" / checkpoint.name)
    (root / "competition_officials.json").write_bytes(orjson.dumps(OFFICIALS))
    return root


def all_lines(root: Path) -> bytes:
    """Every log file's lines in commit order: the archives by number, then the live log."""
    archives = sorted(root.glob("events.*.ndjson"), key=lambda p: int(p.name.split(".")[1]))
    return b"".join(p.read_bytes() for p in [*archives, root / "events.ndjson"])


def documents(root: Path) -> dict[str, Any]:
    return {name: orjson.loads((root / name).read_bytes()) for name in ("users.json", "competition_officials.json")}


def states(root: Path) -> dict[str, Any]:
    return {p.name: (orjson.loads(p.read_bytes())["seq"], orjson.loads(p.read_bytes())["state"])
            for p in (root / "boxes").glob("*.json")}


def sql(url: str, query: str, *args: object) -> Any:
    async def go() -> Any:
        conn = await asyncpg.connect(url)
        try:
            return await conn.fetch(query, *args)
        finally:
            await conn.close()
    return asyncio.run(go())


def schema_exists(url: str, schema: str) -> bool:
    return bool(sql(url, "SELECT 1 FROM pg_namespace WHERE nspname = $1", schema))


def test_a_competition_goes_to_postgresql_and_back_byte_for_byte(postgres_url: str, tmp_path: Path) -> None:
    source = competition(tmp_path / "source")
    schema = new_schema()

    there = cli("--from", str(source), "--to", postgres_url, "--schema", schema)
    assert there.returncode == 0, there.stdout + there.stderr
    assert "every box's lines match byte for byte" in there.stdout
    recorded = sql(postgres_url, f'SELECT value FROM "{schema}".metadata WHERE key LIKE $1', "migration:%")
    assert len(recorded) == 1 and orjson.loads(recorded[0]["value"])["events"] == 400 + 1 + 60
    assert orjson.loads((source / "migrated-to.json").read_bytes())["to"].endswith(f"schema {schema}")

    back = tmp_path / "back"
    again = cli("--from", postgres_url, "--schema", schema, "--to", str(back))
    assert again.returncode == 0, again.stdout + again.stderr
    assert all_lines(back) == all_lines(source)
    assert documents(back) == documents(source)
    assert states(back) == states(source)
    reset_folders = sorted(p.name for p in (back / "boxes").iterdir() if p.is_dir())
    assert reset_folders == ["reset-000001"]
    assert (sorted(p.read_bytes() for p in (back / "boxes" / "reset-000001").iterdir())
            == sorted(p.read_bytes() for p in next((source / "boxes").glob("reset-*")).iterdir()))
    assert orjson.loads((back / "migrated-from.json").read_bytes())["from"].endswith(f"schema {schema}")
    checked = subprocess.run([sys.executable, str(ROOT / "run.py"), "check", "--storage-dir", str(back)],
                             cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)
    assert checked.returncode == 0, checked.stdout


async def test_a_reset_made_in_postgresql_comes_out_as_a_directory_s_reset_and_goes_back_the_same(
        postgres_url: str, tmp_path: Path) -> None:
    source = competition(tmp_path / "source", events=80, boxes=2)
    schema = new_schema()
    there = await asyncio.to_thread(cli, "--from", str(source), "--to", postgres_url, "--schema", schema)
    assert there.returncode == 0
    storage = PostgresStorage(postgres_url, schema, tmp_path / "pg-files")
    await storage.open(True, load_state)  # RESET_BOXES_ON_START: era 3 begins, era 2's checkpoints set aside
    await storage.close()

    back = tmp_path / "back"
    out = await asyncio.to_thread(cli, "--from", postgres_url, "--schema", schema, "--to", str(back))
    assert out.returncode == 0, out.stdout + out.stderr
    assert sorted(p.name for p in (back / "boxes").iterdir()) == ["reset-000001", "reset-000002"]
    assert sorted(p.name for p in (back / "boxes" / "reset-000002").iterdir()) == ["0.json", "1.json"]
    assert all_lines(back) == all_lines(source)
    again = await asyncio.to_thread(cli, "--from", str(back), "--to", postgres_url, "--schema", new_schema())
    assert again.returncode == 0, again.stdout + again.stderr


async def test_a_server_starts_on_the_migrated_schema_with_every_box_as_it_was(
        postgres_url: str, tmp_path: Path, spawn_server: Any) -> None:
    source = competition(tmp_path / "source", events=80, boxes=2)
    schema = new_schema()
    migrated = await asyncio.to_thread(cli, "--from", str(source), "--to", postgres_url, "--schema", schema)
    assert migrated.returncode == 0, migrated.stdout + migrated.stderr
    server = spawn_server(tmp_path / "server", env={**postgres_env(postgres_url, schema), **SERVER_ENV})
    async with ClientSession(headers=admin_headers()) as session:
        for box in (0, 1):
            saved = orjson.loads((source / "boxes" / f"{box}.json").read_bytes())["state"]
            async with session.get(f"{server.url}/api/state/{box}") as response:
                assert response.status == 200
                state = await response.json()
            assert (state["boxVersion"], state["sessionId"]) == (saved["boxVersion"], saved["sessionId"])
        async with session.get(f"{server.url}/api/state/2") as response:  # era 1 only: reset, not restored
            assert (await response.json()).get("initiated") is not True


async def test_a_side_a_server_runs_on_is_refused_naming_it(postgres_url: str, tmp_path: Path,
                                                              spawn_server: Any) -> None:
    source = competition(tmp_path / "source", events=40, boxes=2)
    schema = new_schema()
    on_files = spawn_server(source, env=SERVER_ENV)
    refused = await asyncio.to_thread(cli, "--from", str(source), "--to", postgres_url, "--schema", schema)
    assert refused.returncode == 2 and f"pid {on_files.proc.pid}" in refused.stderr, refused.stderr
    assert not await asyncio.to_thread(schema_exists, postgres_url, schema)
    assert on_files.terminate() == 0

    there = await asyncio.to_thread(cli, "--from", str(source), "--to", postgres_url, "--schema", schema)
    assert there.returncode == 0, there.stdout + there.stderr
    on_schema = spawn_server(tmp_path / "server", env={**postgres_env(postgres_url, schema), **SERVER_ENV})
    target = tmp_path / "target"
    held = await asyncio.to_thread(cli, "--from", postgres_url, "--schema", schema, "--to", str(target))
    assert held.returncode == 2 and f"pid {on_schema.proc.pid}" in held.stderr, held.stderr
    assert not target.exists()
    into = await asyncio.to_thread(cli, "--from", str(source), "--to", postgres_url, "--schema", schema, "--dry-run")
    assert into.returncode == 2 and "in use by a Belay server" in into.stderr


def test_a_dry_run_proves_the_source_and_writes_nothing(postgres_url: str, tmp_path: Path) -> None:
    source = competition(tmp_path / "source", events=60, boxes=3)
    before = {p: p.read_bytes() for p in source.rglob("*") if p.is_file()}
    schema = new_schema()
    dry = cli("--from", str(source), "--to", postgres_url, "--schema", schema, "--dry-run")
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert "dry run, nothing written" in dry.stdout
    assert not schema_exists(postgres_url, schema)
    assert {p: p.read_bytes() for p in source.rglob("*") if p.is_file()} == before

    assert cli("--from", str(source), "--to", postgres_url, "--schema", schema).returncode == 0
    target = tmp_path / "target"
    dry_back = cli("--from", postgres_url, "--schema", schema, "--to", str(target), "--dry-run")
    assert dry_back.returncode == 0, dry_back.stdout + dry_back.stderr
    assert not target.exists()
    assert len(sql(postgres_url, f'SELECT 1 FROM "{schema}".metadata WHERE key LIKE $1', "migration:%")) == 1


def test_a_checkpoint_its_events_do_not_replay_to_fails_and_the_schema_is_not_created(
        postgres_url: str, tmp_path: Path) -> None:
    source = competition(tmp_path / "source", events=60, boxes=3)
    checkpoint = source / "boxes" / "1.json"
    doc = orjson.loads(checkpoint.read_bytes())
    doc["state"]["holdCount"] = doc["state"]["holdCount"] + 7
    checkpoint.write_bytes(orjson.dumps(doc))
    schema = new_schema()
    failed = cli("--from", str(source), "--to", postgres_url, "--schema", schema)
    assert failed.returncode == 1
    assert "nothing was written" in failed.stdout and "box 1" in failed.stdout and "holdCount" in failed.stdout
    assert not schema_exists(postgres_url, schema)
    assert not (source / "migrated-to.json").exists()


def test_a_missing_line_fails_the_proof(postgres_url: str, tmp_path: Path) -> None:
    source = competition(tmp_path / "source", events=60, boxes=3)
    lines = (source / "events.ndjson").read_bytes().splitlines(keepends=True)
    (source / "events.ndjson").write_bytes(b"".join(lines[:10] + lines[11:]))
    schema = new_schema()
    failed = cli("--from", str(source), "--to", postgres_url, "--schema", schema)
    assert failed.returncode == 1 and "not contiguous" in failed.stdout
    assert not schema_exists(postgres_url, schema)


def test_a_damaged_row_in_postgresql_fails_and_no_directory_appears(postgres_url: str, tmp_path: Path) -> None:
    source = competition(tmp_path / "source", events=60, boxes=3)
    schema = new_schema()
    assert cli("--from", str(source), "--to", postgres_url, "--schema", schema).returncode == 0
    [row] = sql(postgres_url, f'SELECT pos, line FROM "{schema}".events WHERE era = 2 AND seq = 5 AND box_id = 0')
    damaged = row["line"].replace(b'"boxVersion":5,', b'"boxVersion":6,')
    assert damaged != row["line"]
    sql(postgres_url, f'UPDATE "{schema}".events SET line = $1 WHERE pos = $2', damaged, row["pos"])
    target = tmp_path / "target"
    failed = cli("--from", postgres_url, "--schema", schema, "--to", str(target))
    assert failed.returncode == 1 and "box 0" in failed.stdout
    assert not target.exists()
    target.mkdir()  # an empty directory stays exactly as it was
    assert cli("--from", postgres_url, "--schema", schema, "--to", str(target)).returncode == 1
    assert list(target.iterdir()) == []
    assert [p.name for p in tmp_path.iterdir() if "migrating" in p.name] == []


USAGE, FAILED = 2, 1


@pytest.mark.parametrize(("args", "says", "status"), [
    (["--from", "{src}", "--to", "mysql://root@127.0.0.1/x"], "only postgresql:// URLs", USAGE),
    (["--from", "{src}", "--to", "postgresql://127.0.0.1:notaport/x"], "not a valid URL", USAGE),
    (["--from", "{src}", "--to", "{tmp}/other"], "one side must be a storage directory", USAGE),
    (["--from", "postgresql://127.0.0.1/a", "--to", "postgresql://127.0.0.1/b"], "one side must be", USAGE),
    (["--from", "{src}", "--to", "{url}", "--schema", "Robert'); DROP TABLE x;--"], "--schema", USAGE),
    (["--from", "{tmp}/nowhere", "--to", "{url}"], "is not a Belay storage directory", FAILED),
    (["--from", "{src}", "--to", "postgresql://belay:s3cret-pw@127.0.0.1:1/x"], "cannot connect", FAILED),
    (["--from", "{url}", "--schema", "no_such_schema", "--to", "{tmp}/t"], "holds no Belay competition", FAILED),
    (["--from", "{url}", "--to", "{src}/boxes/0.json"], "is not a directory", FAILED),
    (["--from", "{url}", "--to", "{src}"], "not empty", USAGE),
    (["--from", "", "--to", "{url}"], "--from needs", USAGE),
])
def test_hostile_arguments_get_a_clear_sentence(postgres_url: str, tmp_path: Path, args: list[str],
                                                says: str, status: int) -> None:
    source = competition(tmp_path / "source", events=20, boxes=2)
    filled = [a.format(src=source, tmp=tmp_path, url=postgres_url) for a in args]
    result = cli(*filled)
    assert result.returncode == status
    assert says in result.stderr, result.stderr
    assert "s3cret-pw" not in result.stderr + result.stdout
