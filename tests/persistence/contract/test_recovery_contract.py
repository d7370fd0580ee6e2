"""Opening a storage: what a restart replays, eras (RESET_BOXES_ON_START), housekeeping."""
from __future__ import annotations

from persistence.storage import Storage
from tests.persistence.contract.backends import Backend
from tests.persistence.contract.helpers import reopen
from tests.persistence.helpers import line, seqs


async def test_a_new_storage_recovers_nothing(backend: Backend) -> None:
    recovered = await reopen(backend)

    assert (recovered.checkpoints, recovered.events, recovered.unrecoverable, recovered.quarantined) == ({}, {}, [], [])
    assert recovered.skipped_events == 0 and recovered.repairs == ()


async def test_each_box_replays_its_own_events_in_seq_order(backend: Backend, storage: Storage) -> None:
    await storage.append([line(0, 1), line(7, 1)])
    await storage.append([line(7, 2), line(0, 2), b'{"id":"u1","action":"USER_ADDED","boxId":null}\n'])
    await storage.append([line(0, 3)])
    await storage.close()

    recovered = await reopen(backend)

    assert {box: seqs(run) for box, run in recovered.events.items()} == {0: [1, 2, 3], 7: [1, 2]}
    assert recovered.events[7][1] == {**recovered.events[7][1], "boxId": 7, "seq": 2, "id": "ev-7-2"}


async def test_a_hole_in_a_box_history_is_reported_and_left_to_replay(backend: Backend, storage: Storage) -> None:
    await storage.append([line(2, 1), line(2, 2), line(2, 4)])  # seq 3 never reached storage
    await storage.close()

    recovered = await reopen(backend)

    assert recovered.unrecoverable == [2]
    assert seqs(recovered.events[2]) == [1, 2, 4]  # replay decides whether a later event still rebuilds it
    assert recovered.highest[2] == (4, 4)


async def test_a_reset_starts_a_new_era_and_loses_nothing(backend: Backend, storage: Storage) -> None:
    await storage.append([line(1, 1), line(1, 2)])
    await storage.write_checkpoints([(1, 2, {"v": 2})])
    await storage.close()

    fresh = backend.storage()
    recovered = await fresh.open(True)
    assert (recovered.checkpoints, recovered.events) == ({}, {})
    await fresh.append([line(1, 1, action="NEW_ERA")])
    assert [e["action"] for e in await fresh.read_box_events(1)] == ["NEW_ERA"]
    await fresh.close()

    again = await reopen(backend)
    assert (again.checkpoints, seqs(again.events[1])) == ({}, [1])
    # The audit keeps every era, newest first.
    audit = await backend.reader().read_audit(limit=10, box_id=1, include_payload=False)
    assert [(item["action"], item["boxVersion"]) for item in audit] == [
        ("NEW_ERA", 1), ("PROGRESS_UPDATE", 2), ("PROGRESS_UPDATE", 1)]


async def test_housekeeping_keeps_every_committed_event_where_readers_find_it(backend: Backend,
                                                                           storage: Storage) -> None:
    await storage.append([line(0, 1), line(0, 2)])

    async def checkpoint_all() -> None:
        await storage.write_checkpoints([(0, 2, {"v": 2})])

    assert isinstance(await storage.maintain(checkpoint_all), bool)
    await storage.append([line(0, 3)])
    assert seqs(await storage.read_box_events(0)) == [1, 2, 3]
    await storage.close()

    recovered = await reopen(backend)
    if 0 in recovered.checkpoints:
        assert recovered.checkpoints[0].seq == 2 and seqs(recovered.events[0]) == [3]
    else:  # no housekeeping was due, so nothing needed a checkpoint
        assert seqs(recovered.events[0]) == [1, 2, 3]
    audit = await backend.reader().read_audit(limit=10, box_id=0, include_payload=False)
    assert [item["boxVersion"] for item in audit] == [3, 2, 1]


def test_describe_names_the_mode(backend: Backend) -> None:
    storage = backend.storage()

    assert storage.describe()["mode"] == storage.mode == backend.name
