"""A backup taken in one storage mode restores in the other, byte for byte: the same zip format."""
from __future__ import annotations

from pathlib import Path

import pytest

from persistence.factory import StorageSettings, storage_for
from persistence.storage import Storage
from tests.persistence.contract.helpers import backup_of
from tests.persistence.helpers import line, seqs
from tests.persistence.postgres.database import new_schema

USERS = {"admin": {"username": "admin", "role": "admin", "password_hash": "scrypt$x", "is_active": True}}
AUDIT_ONLY = b'{"id":"acct-1","createdAt":"2026-11-22T09:00:00+00:00","action":"USER_DISABLED","boxId":0}\n'


def settings(mode: str, folder: Path, url: str) -> StorageSettings:
    return StorageSettings(mode, folder, 50 * 2**20, url, new_schema())


async def fill(storage: Storage) -> None:
    await storage.open(False)
    await storage.append([line(0, 1), line(1, 1)])
    await storage.append([line(0, 2), AUDIT_ONLY, line(1, 2, competitor="Ștefan")])
    await storage.write_checkpoints([(0, 1, {"v": 1}), (1, 2, {"v": 2})])
    await storage.write_document("users", USERS)


async def verify(staged: Storage) -> None:
    await staged.open(False)
    await staged.close()


@pytest.mark.parametrize(("source", "target"), [("json", "postgres"), ("postgres", "json")])
async def test_a_backup_restores_in_the_other_mode_byte_for_byte(source: str, target: str, tmp_path: Path,
                                                                postgres_url: str) -> None:
    original = storage_for(settings(source, tmp_path / "source", postgres_url))
    await fill(original)
    taken = await backup_of(original, tmp_path / "backups")
    await original.close()

    restored = storage_for(settings(target, tmp_path / "target", postgres_url))
    await restored.check_empty()
    await restored.adopt_backup(taken, verify)
    recovered = await restored.open(False)
    try:
        again = await backup_of(restored, tmp_path / "again")
        audit = await restored.read_audit(limit=10, box_id=0, include_payload=False)
        users = await restored.read_document("users")
    finally:
        await restored.close()

    assert again.files["events.ndjson"] == taken.files["events.ndjson"]
    checkpoints = {box: (cp.seq, cp.state) for box, cp in recovered.checkpoints.items()}
    assert checkpoints == {0: (1, {"v": 1}), 1: (2, {"v": 2})}
    assert seqs(recovered.events[0]) == [2] and 1 not in recovered.events
    assert [item["id"] for item in audit] == ["acct-1", "ev-0-2", "ev-0-1"]
    assert users == USERS
