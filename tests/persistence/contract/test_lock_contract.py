"""One writer per competition: a second one is refused and told who holds it."""
from __future__ import annotations

import os

import pytest

from persistence.errors import StorageLocked
from persistence.storage import Storage
from tests.persistence.contract.backends import Backend
from tests.persistence.contract.helpers import reopen
from tests.persistence.helpers import line, seqs


async def test_a_second_writer_is_refused_and_named_the_holder(backend: Backend, storage: Storage) -> None:
    second = backend.storage()
    with pytest.raises(StorageLocked) as refused:
        await second.open(False)
    await second.close()

    assert refused.value.holder is not None and refused.value.holder.pid == str(os.getpid())
    assert f"pid {os.getpid()}" in str(refused.value)
    assert "pid" in str(refused.value.advising("stop it first"))
    holder = await backend.reader().holder()
    assert holder is not None and holder.pid == str(os.getpid())
    await storage.append([line(0, 1)])  # the refusal did not disturb the writer


async def test_the_storage_is_free_again_once_its_writer_closes(backend: Backend, storage: Storage) -> None:
    await storage.append([line(0, 1)])
    await storage.close()

    assert await backend.reader().holder() is None
    assert seqs((await reopen(backend)).events[0]) == [1]
