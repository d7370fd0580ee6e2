"""Appending events: a batch is durable when append returns, all of it or none of it."""
from __future__ import annotations

from pathlib import Path

import pytest

from persistence.errors import StorageError
from persistence.storage import Storage
from tests.persistence.contract.backends import Backend
from tests.persistence.contract.helpers import backup_of, reopen
from tests.persistence.helpers import line, seqs

# Valid but unusual lines: whatever the backend stores, these bytes must come back unchanged.
ODD_LINES = [
    b'{"boxId": 0, "seq": 1, "action": "INIT_ROUTE", "note": "spaced out"}\n',
    b'{"seq":2,"boxId":0,"action":"SUBMIT_SCORE","competitor":"\\u0218tefan","club":"Clubul \xc8\x98"}\n',
    b'{"id":"legacy-1","boxId":0,"action":"INIT_ROUTE","payload":{"nested":[1,2.50,{"k":null}]}}\n',
]


async def test_a_batch_is_durable_once_append_returns(backend: Backend) -> None:
    storage = backend.storage()
    await storage.open(False)
    await storage.append([line(0, 1), line(0, 2), line(1, 1)])

    seen_beside = await backend.reader().read_box_events(0)  # another reader sees it at once
    await storage.close()
    recovered = await reopen(backend)

    assert seqs(seen_beside) == [1, 2]
    assert seqs(recovered.events[0]) == [1, 2] and seqs(recovered.events[1]) == [1]


async def test_lines_come_back_byte_for_byte_in_order(storage: Storage, tmp_path: Path) -> None:
    await storage.append(ODD_LINES[:2])
    await storage.append([*ODD_LINES[2:], line(1, 1)])

    contents = await backup_of(storage, tmp_path / "backups")

    assert contents.files["events.ndjson"] == b"".join(ODD_LINES) + line(1, 1)


async def test_a_failed_append_raises_and_leaves_nothing_of_its_batch(backend: Backend, storage: Storage,
                                                                      tmp_path: Path) -> None:
    await storage.append([line(0, 1)])
    backend.fail_next_commit()
    with pytest.raises(StorageError):
        await storage.append([line(0, 2, action="LOST"), line(1, 1, action="LOST")])
    await storage.append([line(0, 2)])  # the next batch works, where the failed one would have gone
    zipped = (await backup_of(storage, tmp_path / "backups")).files["events.ndjson"]
    await storage.close()

    recovered = await reopen(backend)

    assert zipped == line(0, 1) + line(0, 2)
    assert seqs(recovered.events[0]) == [1, 2] and recovered.events[0][1]["action"] == "PROGRESS_UPDATE"
    assert 1 not in recovered.events and recovered.unrecoverable == []
    audit = await backend.reader().read_audit(limit=10, box_id=None, include_payload=False)
    assert [item["action"] for item in audit] == ["PROGRESS_UPDATE", "PROGRESS_UPDATE"]


async def test_an_unavailable_storage_fails_every_append_and_resumes_when_it_is_back(
    backend: Backend, storage: Storage
) -> None:
    await storage.append([line(0, 1)])
    backend.make_unavailable()
    for _ in range(3):
        with pytest.raises(StorageError):
            await storage.append([line(0, 2)])
    backend.heal()
    await storage.append([line(0, 2)])
    await storage.append([line(0, 3)])
    await storage.close()

    assert seqs((await reopen(backend)).events[0]) == [1, 2, 3]


async def test_batches_of_several_boxes_keep_their_order(backend: Backend, storage: Storage) -> None:
    next_seq = {0: 1, 1: 1, 2: 1}
    for n in range(30):
        batch = []
        for box in range(n % 3 + 1):
            batch.append(line(box, next_seq[box]))
            next_seq[box] += 1
        if n % 5 == 0:
            batch.append(b'{"id":"audit-%d","action":"USER_ADDED"}\n' % n)  # audit-only: no box seq
        await storage.append(batch)
    await storage.close()

    recovered = await reopen(backend)

    assert {box: seqs(run) for box, run in recovered.events.items()} == {
        box: list(range(1, last)) for box, last in next_seq.items()}


async def test_an_empty_batch_stores_nothing(backend: Backend, storage: Storage) -> None:
    await storage.append([])
    assert await storage.read_audit(limit=5, box_id=None, include_payload=False) == []
    await storage.close()

    assert (await reopen(backend)).events == {}


@pytest.mark.parametrize("bad", [b'{"boxId":0,"seq":1}', b'{"boxId":0,"seq":1}\n{"boxId":0,"seq":2}\n'])
async def test_each_line_must_be_one_newline_terminated_line(backend: Backend, storage: Storage, bad: bytes) -> None:
    with pytest.raises(ValueError):
        await storage.append([line(0, 1), bad])
    await storage.close()

    assert (await reopen(backend)).events == {}
