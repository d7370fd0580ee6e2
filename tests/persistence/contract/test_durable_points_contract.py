"""Durable points for backups: consistent while appends go on, exported as the one backup zip format,
and restored through the protocol into an empty storage of the same backend."""
from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from persistence.backup import build_zip, read_zip
from persistence.errors import StorageNotEmpty
from persistence.factory import backup_as_storage
from persistence.storage import Storage
from tests.persistence.contract.backends import Backend
from tests.persistence.contract.helpers import backup_of, reopen
from tests.persistence.helpers import line, seqs

USERS = {"admin": {"username": "admin", "role": "admin", "password_hash": "scrypt$x", "is_active": True}}


async def test_a_durable_point_holds_what_was_committed_when_it_was_taken(storage: Storage, tmp_path: Path) -> None:
    await storage.append([line(0, 1), line(0, 2), line(1, 1)])
    await storage.write_checkpoints([(0, 2, {"v": 2}), (1, 1, {"v": 1})])
    await storage.write_document("users", USERS)
    sheet = storage.results_dir / "U16" / "overall.xlsx"
    sheet.parent.mkdir(parents=True)
    sheet.write_bytes(b"PK sheet")

    frozen = await storage.freeze()
    try:
        # Commands go on after the freeze, before the point is laid out as files and while it is
        # zipped: none of this is part of the point.
        await storage.append([line(0, 3), line(2, 1)])
        await storage.write_checkpoints([(0, 3, {"v": 3})])
        await storage.write_document("users", {})
        await storage.write_document("officials", {"judgeChief": "later"})
        later_sheet = storage.results_dir / "U18" / "overall.xlsx"
        later_sheet.parent.mkdir(parents=True)
        later_sheet.write_bytes(b"PK later")
        point = await storage.lay_out(frozen)
        await storage.append([line(0, 4)])
        zipped = build_zip(point, tmp_path / "backups", datetime.now(UTC))
    finally:
        await storage.release(frozen)

    assert not point.folder.exists()  # released: nothing of it stays behind
    contents = read_zip(zipped)
    assert contents.files["events.ndjson"] == line(0, 1) + line(0, 2) + line(1, 1)
    assert contents.manifest["committedLogOffset"] == len(contents.files["events.ndjson"])
    assert orjson.loads(contents.files["boxes/0.json"])["seq"] == 2
    assert orjson.loads(contents.files["users.json"]) == USERS
    assert "competition_officials.json" not in contents.files and "boxes/2.json" not in contents.files
    assert contents.files["results/U16/overall.xlsx"] == b"PK sheet"
    assert "results/U18/overall.xlsx" not in contents.files


async def test_a_point_released_without_being_laid_out_leaves_nothing_behind(storage: Storage) -> None:
    """A backup that fails between the freeze and the files (or a shutdown then) lets go of it."""
    await storage.append([line(0, 1)])
    frozen = await storage.freeze()
    await storage.append([line(0, 2)])

    await storage.release(frozen)

    assert not frozen.folder.parent.exists()  # the staging folder too: no other point is held
    await storage.append([line(0, 3)])  # the storage goes on as before


async def test_a_backup_restores_into_an_empty_storage_of_the_same_backend(
    new_backend: Callable[[], Backend], tmp_path: Path
) -> None:
    source = new_backend()
    storage = source.storage()
    await storage.open(False)
    await storage.append([line(0, 1), line(0, 2), b'{"id":"audit-only","action":"USER_ADDED"}\n'])
    await storage.write_checkpoints([(0, 1, {"v": 1})])
    await storage.write_document("users", USERS)
    contents = await backup_of(storage, tmp_path / "backups")
    await storage.close()

    target = new_backend()
    verified: list[list[int]] = []

    async def verify(staged: Storage) -> None:
        recovered = await staged.open(False)
        verified.append(seqs(recovered.events[0]))
        await staged.close()

    await target.storage().check_empty()
    await target.storage().adopt_backup(contents, verify)

    assert verified == [[2]]
    recovered = await reopen(target)
    assert recovered.checkpoints[0].state == {"v": 1} and seqs(recovered.events[0]) == [2]
    assert await target.reader().read_document("users") == USERS
    audit = await target.reader().read_audit(limit=10, box_id=None, include_payload=False)
    assert [item["id"] for item in audit] == ["audit-only", "ev-0-2", "ev-0-1"]
    with pytest.raises(StorageNotEmpty):
        await target.storage().check_empty()


async def test_a_storage_that_holds_anything_adopts_no_backup(backend: Backend, storage: Storage,
                                                              tmp_path: Path) -> None:
    await storage.append([line(0, 1)])
    contents = await backup_of(storage, tmp_path / "backups")
    await storage.close()
    called: list[Storage] = []

    async def verify(staged: Storage) -> None:
        called.append(staged)

    with pytest.raises(StorageNotEmpty):
        await backend.storage().check_empty()
    with pytest.raises(StorageNotEmpty):
        await backend.storage().adopt_backup(contents, verify)
    assert called == []


async def test_a_backup_its_check_refuses_leaves_the_target_empty(
    new_backend: Callable[[], Backend], tmp_path: Path
) -> None:
    source = new_backend()
    storage = source.storage()
    await storage.open(False)
    await storage.append([line(0, 1)])
    contents = await backup_of(storage, tmp_path / "backups")
    await storage.close()
    target = new_backend()

    async def refuse(staged: Storage) -> None:
        await staged.open(False)
        await staged.close()
        raise ValueError("box 0 cannot be rebuilt")

    with pytest.raises(ValueError):
        await target.storage().adopt_backup(contents, refuse)

    await target.storage().check_empty()  # nothing was restored


async def test_a_backup_reads_back_as_a_storage_of_its_own(storage: Storage, tmp_path: Path) -> None:
    """What POST /api/admin/restore rebuilds a backup's boxes from, whatever mode took it."""
    await storage.append([line(4, 1), line(4, 2)])
    await storage.write_checkpoints([(4, 1, {"v": 1})])
    contents = await backup_of(storage, tmp_path / "backups")

    async with backup_as_storage(contents) as unpacked:
        recovered = await unpacked.open(False)
        await unpacked.close()

    assert recovered.checkpoints[4].seq == 1 and seqs(recovered.events[4]) == [2]
