"""Checkpoints: what a reopen starts from, never moving backwards, judged by the caller's rule."""
from __future__ import annotations

from typing import Any

import pytest

from persistence.errors import StorageError
from persistence.storage import Storage
from persistence.types import Unrebuildable
from tests.persistence.contract.backends import Backend
from tests.persistence.contract.helpers import reopen
from tests.persistence.helpers import line, seqs


async def test_a_reopen_starts_from_the_checkpoint_and_replays_only_later_events(backend: Backend,
                                                                                storage: Storage) -> None:
    await storage.append([line(3, 1), line(3, 2), line(4, 1)])
    await storage.write_checkpoints([(3, 2, {"v": 2, "name": "Ștefan"}), (4, 1, {"v": 1})])
    await storage.append([line(3, 3)])
    await storage.close()

    recovered = await reopen(backend)

    assert (recovered.checkpoints[3].seq, recovered.checkpoints[3].state) == (2, {"v": 2, "name": "Ștefan"})
    assert seqs(recovered.events[3]) == [3]
    assert recovered.checkpoints[4].seq == 1 and 4 not in recovered.events  # nothing after it
    assert recovered.unrecoverable == [] and recovered.quarantined == []


async def test_a_checkpoint_never_moves_backwards(backend: Backend, storage: Storage) -> None:
    await storage.write_checkpoints([(1, 5, {"v": 5}), (2, 1, {"v": 1})])
    await storage.write_checkpoints([(1, 3, {"v": 3}), (2, 2, {"v": 2})])  # box 1's is older: ignored
    await storage.write_checkpoints([(1, 4, {"v": 4})])
    await storage.close()

    recovered = await reopen(backend)

    assert (recovered.checkpoints[1].seq, recovered.checkpoints[1].state) == (5, {"v": 5})
    assert (recovered.checkpoints[2].seq, recovered.checkpoints[2].state) == (2, {"v": 2})


async def test_a_checkpoint_at_the_same_seq_replaces_the_stored_one(backend: Backend, storage: Storage) -> None:
    await storage.write_checkpoints([(1, 5, {"v": "first"})])
    await storage.write_checkpoints([(1, 5, {"v": "again"})])
    await storage.close()

    assert (await reopen(backend)).checkpoints[1].state == {"v": "again"}


async def test_no_checkpoint_moves_backwards_across_a_reopen(backend: Backend, storage: Storage) -> None:
    await storage.write_checkpoints([(1, 5, {"v": 5})])
    await storage.close()
    second = backend.storage()
    await second.open(False)
    await second.write_checkpoints([(1, 2, {"v": 2})])
    await second.close()

    assert (await reopen(backend)).checkpoints[1].seq == 5


async def test_a_mark_keeps_a_box_its_history_cannot_rebuild_known(backend: Backend, storage: Storage) -> None:
    await storage.write_checkpoints([(4, 7, Unrebuildable(9, "its log lost seq 3"))])
    await storage.close()

    recovered = await reopen(backend)

    assert 4 not in recovered.checkpoints
    assert recovered.unusable[4] == "its log lost seq 3"
    assert recovered.highest[4] == (7, 9)


async def test_a_checkpoint_the_callers_rule_refuses_is_set_aside_and_the_box_replayed(
    backend: Backend, storage: Storage
) -> None:
    await storage.append([line(0, 1), line(0, 2)])
    await storage.write_checkpoints([(0, 2, {"v": "from an older version"})])
    await storage.close()

    def refuse_old(state: dict[str, Any]) -> dict[str, Any]:
        if state.get("v") == "from an older version":
            raise ValueError("not a state these rules know")
        return state

    recovered = await reopen(backend, load_state=refuse_old)

    assert 0 not in recovered.checkpoints and seqs(recovered.events[0]) == [1, 2]
    assert "not a state these rules know" in recovered.unusable[0]
    assert len(recovered.quarantined) == 1  # kept somewhere, never deleted
    assert (await reopen(backend)).events[0] == recovered.events[0]  # still unusable: the whole history again


async def test_a_failed_checkpoint_write_raises_and_keeps_the_stored_one(backend: Backend, storage: Storage) -> None:
    await storage.write_checkpoints([(1, 1, {"v": 1})])
    backend.make_unavailable()
    with pytest.raises(StorageError):
        await storage.write_checkpoints([(1, 2, {"v": 2})])
    backend.heal()
    await storage.close()

    assert (await reopen(backend)).checkpoints[1].state == {"v": 1}


@pytest.mark.parametrize("box_id", [-1, True, 2**53])
async def test_a_box_id_storage_cannot_keep_is_refused(storage: Storage, box_id: int) -> None:
    with pytest.raises(ValueError):
        await storage.write_checkpoints([(box_id, 1, {})])
