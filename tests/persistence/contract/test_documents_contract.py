"""Documents: users, officials and revocations, each replaced whole and durably."""
from __future__ import annotations

import pytest

from persistence.errors import StorageError
from persistence.storage import Storage
from persistence.types import DOCUMENTS
from tests.persistence.contract.backends import Backend

USERS = {"admin": {"username": "admin", "role": "admin", "password_hash": "scrypt$x", "is_active": True}}
OFFICIALS = {"judgeChief": "Ana Pop", "competitionDirector": "Ștefan Ionescu", "chiefRoutesetter": None}


async def test_a_document_never_written_reads_as_none(backend: Backend, storage: Storage) -> None:
    for name in DOCUMENTS:
        assert await storage.read_document(name) is None
        assert await backend.reader().read_document(name) is None


async def test_a_document_is_replaced_whole_and_survives_a_reopen(backend: Backend, storage: Storage) -> None:
    await storage.write_document("users", USERS)
    await storage.write_document("officials", {"judgeChief": "first"})
    await storage.write_document("officials", OFFICIALS)
    await storage.write_document("revocations", [])
    assert await storage.read_document("officials") == OFFICIALS
    await storage.close()

    again = backend.storage()
    await again.open(False)
    try:
        assert await again.read_document("users") == USERS
        assert await again.read_document("officials") == OFFICIALS
        assert await again.read_document("revocations") == []
    finally:
        await again.close()
    assert await backend.reader().read_document("officials") == OFFICIALS


async def test_a_failed_document_write_raises_and_keeps_the_stored_one(backend: Backend, storage: Storage) -> None:
    await storage.write_document("users", USERS)
    backend.make_unavailable()
    with pytest.raises(StorageError):
        await storage.write_document("users", {})
    backend.heal()

    assert await storage.read_document("users") == USERS
    assert await backend.reader().read_document("users") == USERS
