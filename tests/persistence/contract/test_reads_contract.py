"""Audit reads and a box's events, from the writer and from a reader beside it."""
from __future__ import annotations

import pytest

from persistence.errors import StorageError
from persistence.storage import Storage
from persistence.types import AUDIT_KEYS
from tests.persistence.contract.backends import Backend
from tests.persistence.helpers import event, line, seqs

AUDIT_ONLY = (b'{"id":"acct-1","createdAt":"2026-11-22T09:00:00+00:00","action":"USER_DISABLED",'
              b'"actorUsername":"admin"}\n')


async def fill(storage: Storage) -> None:
    """Boxes 0 and 1 with 3 events each, and an audit-only line (no box, no seq) in between."""
    await storage.append([line(0, 1), line(1, 1)])
    await storage.append([line(0, 2), AUDIT_ONLY, line(1, 2)])
    await storage.append([line(0, 3), line(1, 3)])


async def test_the_audit_is_newest_first_with_exactly_the_audit_keys(backend: Backend, storage: Storage) -> None:
    await fill(storage)

    for read in (storage.read_audit, backend.reader().read_audit):
        items = await read(limit=200, box_id=None, include_payload=False)
        assert [item["id"] for item in items] == ["ev-1-3", "ev-0-3", "ev-1-2", "acct-1", "ev-0-2", "ev-1-1",
                                                   "ev-0-1"]
        assert all(tuple(item) == AUDIT_KEYS for item in items)
        assert all(item["payload"] is None for item in items)
        assert items[3] == {**dict.fromkeys(AUDIT_KEYS), "id": "acct-1", "createdAt": "2026-11-22T09:00:00+00:00",
                            "action": "USER_DISABLED", "actorUsername": "admin"}


async def test_the_audit_takes_a_limit_a_box_and_the_payload_on_request(backend: Backend, storage: Storage) -> None:
    await fill(storage)

    for read in (storage.read_audit, backend.reader().read_audit):
        assert [i["id"] for i in await read(limit=2, box_id=None, include_payload=False)] == ["ev-1-3", "ev-0-3"]
        box = await read(limit=200, box_id=0, include_payload=True)
        assert [i["id"] for i in box] == ["ev-0-3", "ev-0-2", "ev-0-1"]
        assert box[0]["payload"] == event(0, 3)["payload"]
        assert await read(limit=5, box_id=42, include_payload=False) == []


async def test_a_failed_batch_never_shows_in_the_audit(backend: Backend, storage: Storage) -> None:
    await storage.append([line(0, 1)])
    backend.fail_next_commit()
    with pytest.raises(StorageError):
        await storage.append([line(0, 2, id="never")])
    await storage.append([line(0, 2)])

    ids = [i["id"] for i in await backend.reader().read_audit(limit=10, box_id=None, include_payload=False)]
    assert ids == ["ev-0-2", "ev-0-1"]


async def test_a_box_events_are_its_own_ascending_by_seq(backend: Backend, storage: Storage) -> None:
    await fill(storage)

    for read in (storage.read_box_events, backend.reader().read_box_events):
        events = await read(1)
        assert seqs(events) == [1, 2, 3] and {e["boxId"] for e in events} == {1}
        assert events[0] == event(1, 1)  # the whole event, as appended
        assert await read(42) == []
