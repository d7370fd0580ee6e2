"""Group commit, and what a failing disk does to the log: never an "ok" for bytes not on disk."""
from __future__ import annotations

import errno
from pathlib import Path

import pytest

from persistence.errors import StorageError
from persistence.fs import FaultyFileSystem
from persistence.json.store import JsonStore
from tests.persistence.helpers import line, seqs
from tests.persistence.json.helpers import open_store, reopen


def log_ops(fs: FaultyFileSystem, op: str) -> int:
    return sum(1 for o, path in fs.calls if o == op and path.endswith("events.ndjson"))


def test_a_batch_is_one_write_and_one_fdatasync(store: JsonStore, fs: FaultyFileSystem) -> None:
    fs.calls.clear()
    store.append([line(0, 1), line(1, 1), line(2, 1)])

    assert log_ops(fs, "write_all") == 1
    assert log_ops(fs, "fdatasync") == 1

    store.append([line(0, 2)])
    assert log_ops(fs, "write_all") == 2
    assert log_ops(fs, "fdatasync") == 2


def test_append_returns_the_new_committed_offset(store: JsonStore, root: Path) -> None:
    batch = [line(0, 1), line(0, 2)]

    offset = store.append(batch)

    assert offset == len(b"".join(batch)) == store.committed_offset
    assert (root / "events.ndjson").stat().st_size == offset


def test_an_empty_batch_touches_nothing(store: JsonStore, fs: FaultyFileSystem) -> None:
    fs.calls.clear()
    assert store.append([]) == 0
    assert fs.calls == []


def test_lines_must_be_newline_terminated_single_lines(store: JsonStore) -> None:
    with pytest.raises(ValueError):
        store.append([b'{"boxId":0,"seq":1}'])
    with pytest.raises(ValueError):
        store.append([b'{"boxId":0,\n"seq":1}\n'])
    assert store.committed_offset == 0


def test_disk_full_with_a_torn_write_fails_and_leaves_only_committed_bytes(
    store: JsonStore, fs: FaultyFileSystem, root: Path
) -> None:
    committed = store.append([line(0, 1)])
    fs.inject("write_all", errno.ENOSPC, path_contains="events.ndjson", partial=10)

    with pytest.raises(StorageError):
        store.append([line(0, 2), line(1, 1)])

    assert (root / "events.ndjson").stat().st_size == committed
    assert store.committed_offset == committed
    # Service resumes by itself once the disk has room again.
    assert store.append([line(0, 2)]) == committed + len(line(0, 2))


def test_fdatasync_failure_fails_the_batch_and_cuts_it_back(
    store: JsonStore, fs: FaultyFileSystem, root: Path
) -> None:
    committed = store.append([line(0, 1)])
    fs.inject("fdatasync", errno.EIO, path_contains="events.ndjson")

    with pytest.raises(StorageError):
        store.append([line(0, 2)])

    assert (root / "events.ndjson").stat().st_size == committed
    store.append([line(0, 2)])
    store.close()
    recovered = reopen(root)
    assert seqs(recovered.events[0]) == [1, 2]  # the failed copy of seq 2 is not in the log


def test_a_failed_cut_back_is_retried_before_the_next_write(
    store: JsonStore, fs: FaultyFileSystem, root: Path
) -> None:
    committed = store.append([line(0, 1)])
    fs.inject("fdatasync", errno.EIO, path_contains="events.ndjson")
    fs.inject("ftruncate", errno.EIO, path_contains="events.ndjson")

    with pytest.raises(StorageError):
        store.append([line(0, 2)])
    assert (root / "events.ndjson").stat().st_size > committed  # the failed batch is still there

    fs.calls.clear()
    store.append([line(0, 2)])

    ops = [op for op, path in fs.calls if path.endswith("events.ndjson")]
    assert ops == ["ftruncate", "fdatasync", "write_all", "fdatasync"]
    assert (root / "events.ndjson").read_bytes() == line(0, 1) + line(0, 2)


def test_while_the_log_cannot_be_cut_back_nothing_is_written(
    store: JsonStore, fs: FaultyFileSystem, root: Path
) -> None:
    committed = store.append([line(0, 1)])
    fs.inject("write_all", errno.EIO, path_contains="events.ndjson", partial=5)
    fs.inject("ftruncate", errno.EIO, path_contains="events.ndjson", times=2)

    with pytest.raises(StorageError):
        store.append([line(0, 2)])
    fs.calls.clear()
    with pytest.raises(StorageError):
        store.append([line(0, 2)])

    assert ("write_all", str(root / "events.ndjson")) not in fs.calls
    assert store.append([line(0, 2)]) == committed + len(line(0, 2))
    assert (root / "events.ndjson").read_bytes() == line(0, 1) + line(0, 2)


def test_checkpoint_failure_raises_storage_error_and_keeps_the_old_file(
    store: JsonStore, fs: FaultyFileSystem, root: Path
) -> None:
    store.write_checkpoint(1, 1, {"v": 1})
    before = (root / "boxes" / "1.json").read_bytes()
    for op in ("write_all", "fsync", "replace"):
        fs.inject(op, errno.ENOSPC, path_contains="1.json")
        with pytest.raises(StorageError):
            store.write_checkpoint(1, 2, {"v": 2})
        assert (root / "boxes" / "1.json").read_bytes() == before
        assert not (root / "boxes" / "1.json.tmp").exists()


def test_checkpoint_rejects_box_ids_storage_cannot_keep(store: JsonStore, root: Path) -> None:
    for bad in (-1, True, 2**53):
        with pytest.raises(ValueError):
            store.write_checkpoint(bad, 1, {})
    # The rules' range (0..9999) is the actors' business: storage keeps any id it can name.
    store.write_checkpoint(10000, 1, {})
    assert (root / "boxes" / "10000.json").exists()


def test_the_store_must_be_open_to_write(root: Path) -> None:
    store = JsonStore(root)
    with pytest.raises(RuntimeError):
        store.append([line(0, 1)])
    store = open_store(root)
    store.close()
    with pytest.raises(RuntimeError):
        store.write_checkpoint(0, 1, {})
