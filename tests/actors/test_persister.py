"""The persister on its own: group commit, failures, coalesced checkpoints, documents and stop."""
from __future__ import annotations

import asyncio
import errno
from typing import Any

import orjson
import pytest

from actors.persister import Persister, WriteDocument
from actors.runtime import ActorStopped
from persistence.storage import StorageError
from tests.actors.conftest import LOG, Rig


def line(box_id: int, seq: int) -> bytes:
    return orjson.dumps({"boxId": box_id, "seq": seq, "boxVersion": seq, "action": "PROGRESS_UPDATE"}) + b"\n"


def state(version: int) -> dict[str, Any]:
    return {"boxVersion": version, "holdCount": float(version)}


def append(persister: Persister, box_id: int, seq: int) -> asyncio.Future[None]:
    return persister.append(box_id, seq, line(box_id, seq), state(seq))


def checkpoint(rig: Rig, box_id: int) -> dict[str, Any]:
    return orjson.loads((rig.root / "boxes" / f"{box_id}.json").read_bytes())


async def test_events_waiting_together_share_one_write_and_one_fdatasync(rig: Rig) -> None:
    rig.disk.hold()
    first = append(rig.persister, 0, 1)
    await rig.disk.until_holding()  # the first batch is on the disk; the next ones wait together
    waiting = [append(rig.persister, 0, 2), append(rig.persister, 1, 1), append(rig.persister, 0, 3)]
    rig.disk.release()
    await asyncio.gather(first, *waiting)

    assert rig.disk.syncs_of(LOG) == 2
    assert (rig.persister.status.batches, rig.persister.status.events) == (2, 4)
    assert [(e["boxId"], e["seq"]) for e in rig.log()] == [(0, 1), (0, 2), (1, 1), (0, 3)]


async def test_a_failed_batch_fails_every_event_in_it_and_commits_none(rig: Rig) -> None:
    await append(rig.persister, 0, 1)
    rig.disk.inject("fdatasync", errno.EIO, path_contains=LOG)
    batch = [append(rig.persister, 0, 2), append(rig.persister, 1, 1)]
    for verdict in batch:
        with pytest.raises(StorageError):
            await verdict
    assert [e["seq"] for e in rig.log()] == [1]
    assert rig.persister.status.degraded
    # Degraded until a write succeeds again.
    await append(rig.persister, 0, 2)
    assert not rig.persister.status.degraded and [e["seq"] for e in rig.log()] == [1, 2]


async def test_a_box_is_checkpointed_once_with_its_latest_committed_state(rig: Rig) -> None:
    for seq in (1, 2, 3):
        await append(rig.persister, 0, seq)
    await rig.persister.flush()
    saved = checkpoint(rig, 0)
    assert (saved["seq"], saved["state"]) == (3, state(3))
    assert sum(1 for op, path in rig.disk.calls if op == "open" and path.endswith("boxes/0.json.tmp")) == 1
    await rig.persister.flush()  # nothing dirty: nothing written again
    assert sum(1 for op, path in rig.disk.calls if op == "open" and path.endswith("boxes/0.json.tmp")) == 1


async def test_an_event_that_failed_is_never_checkpointed(rig: Rig) -> None:
    await append(rig.persister, 0, 1)
    rig.disk.inject("fdatasync", errno.EIO, path_contains=LOG)
    with pytest.raises(StorageError):
        await append(rig.persister, 0, 2)
    await rig.persister.flush()
    assert checkpoint(rig, 0)["seq"] == 1


async def test_a_checkpoint_never_moves_backwards_when_its_write_fails_while_a_newer_state_commits(rig: Rig) -> None:
    await append(rig.persister, 0, 1)
    rig.disk.hold("boxes")
    writing = asyncio.create_task(rig.persister.checkpoint_all())  # the checkpoint loop's turn
    await rig.disk.until_holding()
    await append(rig.persister, 0, 2)  # commits while the older state is being written
    rig.disk.inject("replace", errno.EIO, path_contains="0.json")
    rig.disk.release()
    with pytest.raises(StorageError):
        await writing
    await rig.persister.flush()  # the newer state stayed dirty; the failed older one is not retried
    assert checkpoint(rig, 0)["seq"] == 2
    rig.persister.remember([(0, 1, state(1))])  # a lagging state from a start never overrides a newer one
    await append(rig.persister, 0, 3)
    await rig.persister.flush()
    assert checkpoint(rig, 0)["seq"] == 3


async def test_stop_still_commits_the_events_already_queued(rig: Rig) -> None:
    rig.disk.hold()
    first = append(rig.persister, 0, 1)
    await rig.disk.until_holding()
    queued = [append(rig.persister, 0, 2), append(rig.persister, 0, 3)]
    rig.persister.stop()
    with pytest.raises(ActorStopped):
        append(rig.persister, 0, 4)
    rig.disk.release()
    await asyncio.wait_for(asyncio.gather(first, *queued), 10)  # answered, not left hanging
    await asyncio.wait_for(rig.persister.finished.wait(), 10)
    assert [e["seq"] for e in rig.log()] == [1, 2, 3]


async def test_a_document_that_cannot_be_written_fails_only_its_own_request(rig: Rig) -> None:
    rig.disk.hold()
    first = append(rig.persister, 0, 1)
    await rig.disk.until_holding()
    rig.disk.inject("open", errno.ENOSPC, path_contains="officials")
    document = asyncio.ensure_future(rig.persister.write_document("officials", {"judgeChief": "Ana"}))
    later = append(rig.persister, 0, 2)  # in the same batch as the document
    rig.disk.release()
    with pytest.raises(StorageError):
        await document
    await asyncio.gather(first, later)
    assert [e["seq"] for e in rig.log()] == [1, 2]
    assert await rig.persister.ask(WriteDocument("officials", {"judgeChief": "Ana"})) is None
    assert await rig.storage.read_document("officials") == {"judgeChief": "Ana"}
