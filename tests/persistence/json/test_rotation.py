"""Log rotation and RESET_BOXES_ON_START: old files are kept, names never reused."""
from __future__ import annotations

import errno
from pathlib import Path

import pytest

from persistence.errors import StorageError
from persistence.fs import FaultyFileSystem
from persistence.json.store import JsonStore
from tests.persistence.helpers import line, seqs
from tests.persistence.json.helpers import open_store, reopen


def test_rotation_is_due_once_the_log_reaches_its_limit(root: Path) -> None:
    store = open_store(root, max_log_bytes=2 * len(line(0, 1)))
    store.append([line(0, 1)])
    assert not store.rotation_due()
    store.append([line(0, 2)])
    assert store.rotation_due()
    store.rotate()
    assert not store.rotation_due()
    store.close()


def test_rotation_names_count_up_and_never_collide(store: JsonStore, root: Path) -> None:
    names = []
    for seq in (1, 2, 3):
        store.append([line(0, seq)])
        names.append(store.rotate().name)

    assert names == ["events.000001.ndjson", "events.000002.ndjson", "events.000003.ndjson"]
    assert store.archives() == [root / n for n in names]
    assert [(root / n).read_bytes() for n in names] == [line(0, 1), line(0, 2), line(0, 3)]
    assert store.log_path.read_bytes() == b"" and store.committed_offset == 0


def test_numbering_continues_after_the_highest_existing_archive(store: JsonStore, root: Path) -> None:
    (root / "events.000007.ndjson").write_bytes(b"kept\n")
    store.append([line(0, 1)])

    assert store.rotate().name == "events.000008.ndjson"
    assert (root / "events.000007.ndjson").read_bytes() == b"kept\n"


def test_checkpoint_then_rotate_leaves_nothing_to_replay(store: JsonStore, root: Path) -> None:
    store.append([line(0, 1), line(1, 1), line(0, 2)])
    store.write_checkpoint(0, 2, {"v": 2})
    store.write_checkpoint(1, 1, {"v": 1})
    store.rotate()
    store.close()

    recovered = reopen(root)

    assert recovered.events == {}
    assert {b: cp.seq for b, cp in recovered.checkpoints.items()} == {0: 2, 1: 1}


def test_appends_after_rotation_go_to_the_fresh_log(store: JsonStore, root: Path) -> None:
    store.append([line(0, 1)])
    store.write_checkpoint(0, 1, {})
    archive = store.rotate()
    store.append([line(0, 2)])
    store.close()

    assert archive.read_bytes() == line(0, 1)
    assert (root / "events.ndjson").read_bytes() == line(0, 2)
    assert seqs(reopen(root).events[0]) == [2]


def test_a_failed_rename_keeps_the_current_log(store: JsonStore, fs: FaultyFileSystem, root: Path) -> None:
    store.append([line(0, 1)])
    fs.inject("replace", errno.EIO, path_contains="events.ndjson")

    with pytest.raises(StorageError):
        store.rotate()

    assert store.archives() == []
    assert store.append([line(0, 2)]) == len(line(0, 1) + line(0, 2))


def test_a_fresh_log_that_could_not_be_created_is_created_by_the_next_append(
    store: JsonStore, fs: FaultyFileSystem, root: Path
) -> None:
    store.append([line(0, 1)])
    store.write_checkpoint(0, 1, {})
    fs.inject("open", errno.EMFILE, path_contains="events.ndjson")

    with pytest.raises(StorageError):
        store.rotate()

    assert (root / "events.000001.ndjson").read_bytes() == line(0, 1)
    store.append([line(0, 2)])
    assert (root / "events.ndjson").read_bytes() == line(0, 2)
    assert (root / "events.000001.ndjson").read_bytes() == line(0, 1)  # never written through a stale fd


def test_reset_moves_the_log_and_checkpoints_aside_and_loses_nothing(root: Path) -> None:
    store = open_store(root)
    store.append([line(0, 1), line(1, 1)])
    store.write_checkpoint(0, 1, {"v": "kept"})
    store.write_checkpoint(1, 1, {"v": "kept too"})
    store.close()
    old_log = (root / "events.ndjson").read_bytes()

    store = JsonStore(root)
    recovered = store.open(reset_boxes=True)
    store.close()

    assert recovered.checkpoints == {} and recovered.events == {}
    assert (root / "events.000001.ndjson").read_bytes() == old_log
    assert (root / "events.ndjson").read_bytes() == b""
    aside = root / "boxes" / "reset-000001"
    assert sorted(p.name for p in aside.iterdir()) == ["0.json", "1.json"]
    assert list((root / "boxes").glob("*.json")) == []
    assert reopen(root).checkpoints == {}  # a later normal start does not bring them back


def test_history_from_before_a_reset_is_never_replayed(root: Path) -> None:
    store = open_store(root)
    store.append([line(0, 1, era="old"), line(0, 2, era="old")])
    store.close()
    store = JsonStore(root)
    store.open(reset_boxes=True)
    store.append([line(0, 1, era="new")])  # the box starts over at seq 1
    store.write_checkpoint(0, 1, {})
    store.rotate()
    store.append([line(0, 2, era="new")])
    store.close()
    (root / "boxes" / "0.json").write_text("corrupt")

    recovered = reopen(root)

    assert [(e["seq"], e["era"]) for e in recovered.events[0]] == [(1, "new"), (2, "new")]
    assert recovered.unrecoverable == []


def test_repeated_resets_use_new_numbers_and_keep_earlier_ones(root: Path) -> None:
    for generation in range(3):
        store = JsonStore(root)
        store.open(reset_boxes=True)
        store.append([line(0, 1, generation=generation)])
        store.write_checkpoint(0, 1, {"generation": generation})
        store.close()

    resets = sorted(p.name for p in (root / "boxes").iterdir() if p.name.startswith("reset-"))
    assert resets == ["reset-000001", "reset-000002", "reset-000003"]
    # The first reset had an empty log, so it archived nothing; later numbers skip past it.
    assert [p.name for p in sorted(root.glob("events.*.ndjson"))] == ["events.000002.ndjson", "events.000003.ndjson"]
    assert (root / "boxes" / "reset-000003" / "0.json").exists()
    assert reopen(root).checkpoints[0].state == {"generation": 2}
