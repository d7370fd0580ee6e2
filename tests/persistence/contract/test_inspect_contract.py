"""The read-only inspection behind `run.py check`: the same facts in every backend (the findings
about how the data is held are each backend's own)."""
from __future__ import annotations

import os
from typing import Any

from persistence.storage import Storage
from persistence.types import PROBLEM
from tests.persistence.contract.backends import Backend
from tests.persistence.helpers import event, line


def as_stored(state: dict[str, Any]) -> dict[str, Any]:
    return state


async def test_an_inspection_gives_the_checkpoints_and_the_events_by_box_and_seq(backend: Backend,
                                                                                storage: Storage) -> None:
    await storage.append([line(0, 1), line(0, 2), line(3, 1), b'{"id":"a","action":"USER_ADDED"}\n'])
    await storage.write_checkpoints([(0, 2, {"v": 2})])

    inspection = await backend.reader().inspect(as_stored)

    assert inspection.holder is not None and inspection.holder.pid == str(os.getpid())
    assert [level for level, _ in inspection.findings if level == PROBLEM] == []
    assert inspection.events == {0: {1: event(0, 1), 2: event(0, 2)}, 3: {1: event(3, 1)}}
    assert inspection.events_read == 4
    stored = inspection.checkpoints[0]
    assert stored.checkpoint is not None and (stored.checkpoint.seq, stored.checkpoint.state) == (2, {"v": 2})
    assert (stored.stored_state, stored.named_seq) == ({"v": 2}, 2)


async def test_an_inspection_judges_a_checkpoint_as_opening_would(backend: Backend, storage: Storage) -> None:
    await storage.append([line(5, 1)])
    await storage.write_checkpoints([(5, 1, {"v": "unknown to these rules"})])
    await storage.close()

    def refuse(state: dict[str, Any]) -> dict[str, Any]:
        raise ValueError("no such state")

    inspection = await backend.reader().inspect(refuse)

    assert inspection.holder is None
    stored = inspection.checkpoints[5]
    assert stored.checkpoint is None and stored.stored_state == {"v": "unknown to these rules"}
    assert stored.named_seq == 1
    assert any(level == PROBLEM and "no such state" in sentence for level, sentence in inspection.findings)
