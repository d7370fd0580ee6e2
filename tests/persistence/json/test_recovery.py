"""What `JsonStore.open` hands back after a clean stop, a crash, or damaged files."""
from __future__ import annotations

from pathlib import Path

import orjson

from persistence.fs import FaultyFileSystem
from persistence.json.store import JsonStore
from tests.persistence.helpers import line, seqs
from tests.persistence.json.helpers import open_store, reopen


def test_a_fresh_directory_recovers_nothing_and_creates_the_layout(root: Path) -> None:
    store = JsonStore(root)
    recovered = store.open()
    store.close()

    assert recovered.checkpoints == {} and recovered.events == {}
    assert (root / "events.ndjson").read_bytes() == b""
    assert (root / "boxes").is_dir()
    assert (root / "belay.lock").is_file()


def test_reopen_returns_per_box_events_after_each_checkpoint_seq(root: Path) -> None:
    store = open_store(root)
    store.append([line(0, 1), line(1, 1)])
    store.append([line(0, 2), line(0, 3), line(1, 2)])
    store.write_checkpoint(0, 2, {"boxVersion": 2})
    store.append([line(0, 4)])
    store.close()

    recovered = reopen(root)

    assert recovered.checkpoints[0].seq == 2
    assert recovered.checkpoints[0].state == {"boxVersion": 2}
    assert seqs(recovered.events[0]) == [3, 4]
    assert seqs(recovered.events[1]) == [1, 2]  # no checkpoint: everything from seq 1
    assert recovered.events[1][0]["cmd"] == {"type": "PROGRESS_UPDATE", "delta": 1}
    assert recovered.unrecoverable == [] and recovered.quarantined == []


def test_a_box_checkpointed_at_its_last_event_has_nothing_to_replay(root: Path) -> None:
    store = open_store(root)
    store.append([line(3, 1), line(3, 2)])
    store.write_checkpoint(3, 2, {"v": 2})
    store.close()

    recovered = reopen(root)

    assert 3 not in recovered.events
    assert recovered.checkpoints[3].seq == 2


def test_checkpoint_file_has_the_documented_shape_and_keeps_non_ascii(store: JsonStore, root: Path) -> None:
    store.write_checkpoint(12, 7, {"competitors": [{"nume": "Ștefan O'Connor"}]})

    raw = (root / "boxes" / "12.json").read_bytes()
    doc = orjson.loads(raw)
    assert set(doc) == {"format", "boxId", "seq", "savedAt", "state"}
    assert (doc["format"], doc["boxId"], doc["seq"]) == (1, 12, 7)
    assert "Ștefan".encode() in raw  # not \u escaped
    assert raw.startswith(b'{\n  "format"')  # indented by 2
    assert not (root / "boxes" / "12.json.tmp").exists()


def test_checkpoint_is_written_to_a_temp_file_synced_then_renamed(store: JsonStore, fs: FaultyFileSystem) -> None:
    fs.calls.clear()
    store.write_checkpoint(1, 1, {})

    ops = [op for op, _ in fs.calls]
    assert ops == ["open", "write_all", "fsync", "close", "replace", "fsync_dir"]
    assert fs.calls[0][1].endswith("1.json.tmp")


def test_a_partial_last_line_is_cut_and_reported(root: Path) -> None:
    store = open_store(root)
    store.append([line(0, 1), line(0, 2)])
    store.close()
    good = (root / "events.ndjson").read_bytes()
    torn = b'{"boxId":0,"seq":3,"act'
    (root / "events.ndjson").write_bytes(good + torn)

    recovered = reopen(root)

    assert recovered.repairs == (f"cut {len(torn)} torn byte(s) from the end of events.ndjson",)
    assert (root / "events.ndjson").read_bytes() == good
    assert seqs(recovered.events[0]) == [1, 2]


def test_a_complete_but_garbage_last_line_is_cut_too(root: Path) -> None:
    store = open_store(root)
    store.append([line(0, 1)])
    store.close()
    good = (root / "events.ndjson").read_bytes()
    garbage = b"\x00" * 20 + b"\n"  # what a crash can leave in a preallocated block
    (root / "events.ndjson").write_bytes(good + garbage)

    recovered = reopen(root)

    assert recovered.repairs == (f"cut {len(garbage)} torn byte(s) from the end of events.ndjson",)
    assert (root / "events.ndjson").read_bytes() == good
    assert recovered.skipped_events == 0


def test_appends_after_a_cut_tail_start_on_a_line_boundary(root: Path) -> None:
    store = open_store(root)
    store.append([line(0, 1)])
    store.close()
    with open(root / "events.ndjson", "ab") as f:
        f.write(b'{"boxId":0,"se')

    store = open_store(root)
    store.append([line(0, 2)])
    store.close()

    recovered = reopen(root)
    assert seqs(recovered.events[0]) == [1, 2]
    assert recovered.repairs == ()


def test_an_unparsable_line_in_the_middle_is_skipped_and_counted(root: Path) -> None:
    store = open_store(root)
    store.append([line(0, 1), b"not json at all\n", line(1, 1)])
    store.close()

    recovered = reopen(root)

    assert recovered.skipped_events == 1
    assert recovered.repairs == ()
    assert seqs(recovered.events[0]) == [1] and seqs(recovered.events[1]) == [1]


def test_lines_without_a_box_seq_are_kept_but_not_replayed(root: Path) -> None:
    store = open_store(root)
    store.append([b'{"id":"legacy","boxId":0,"action":"INIT_ROUTE"}\n', line(0, 1)])
    store.close()

    recovered = reopen(root)

    assert seqs(recovered.events[0]) == [1]
    assert recovered.skipped_events == 0


def test_corrupt_checkpoint_is_quarantined_and_rebuilt_from_seq_1(root: Path) -> None:
    store = open_store(root)
    store.append([line(4, 1), line(4, 2), line(4, 3)])
    store.write_checkpoint(4, 3, {"v": 3})
    store.close()
    (root / "boxes" / "4.json").write_bytes(b'{"format":1,"boxId":4,"se')

    recovered = reopen(root)

    assert 4 not in recovered.checkpoints
    assert seqs(recovered.events[4]) == [1, 2, 3]
    assert recovered.unrecoverable == []
    assert len(recovered.quarantined) == 1
    moved = root / recovered.quarantined[0]  # named within the storage directory
    assert moved.parent == root / "boxes" / "quarantine"
    assert moved.read_bytes() == b'{"format":1,"boxId":4,"se'
    # In its place, a mark without a state keeps the box known until a state is written again.
    mark = orjson.loads((root / "boxes" / "4.json").read_bytes())
    assert mark["state"] is None and mark["unrebuildable"]["reason"] == "its checkpoint was set aside (not valid JSON)"
    assert reopen(root).events[4] == recovered.events[4]  # and its whole history is read again


def test_corrupt_checkpoint_without_full_history_is_unrecoverable(root: Path) -> None:
    store = open_store(root)
    store.append([line(5, 1), line(5, 2)])
    store.write_checkpoint(5, 2, {"v": 2})
    store.rotate()  # seqs 1-2 now live only in the archive...
    (root / "events.000001.ndjson").unlink()  # ...which an operator deleted
    store.append([line(5, 3)])
    store.close()
    (root / "boxes" / "5.json").write_text("[]")

    recovered = reopen(root)

    assert recovered.unrecoverable == [5]
    # What the log still holds is handed over (replay decides: a later restore event could rebuild it),
    # with the highest seq and version it names, so a box that starts over never reuses one.
    assert seqs(recovered.events[5]) == [3]
    assert recovered.highest[5] == (3, 3)
    assert recovered.unusable == {5: "its checkpoint was set aside (not a format-1 checkpoint)"}
    assert len(recovered.quarantined) == 1


def test_corrupt_checkpoint_with_no_events_at_all_is_unrecoverable(root: Path) -> None:
    open_store(root).close()
    (root / "boxes" / "8.json").write_text("{}")

    recovered = reopen(root)

    assert recovered.unrecoverable == [8]
    assert recovered.checkpoints == {}


def test_history_for_a_quarantined_box_is_read_from_archives_when_needed(root: Path) -> None:
    store = open_store(root)
    store.append([line(2, 1), line(2, 2)])
    store.write_checkpoint(2, 2, {"v": 2})
    store.rotate()
    store.append([line(2, 3)])
    store.close()
    (root / "boxes" / "2.json").write_text("garbage")

    recovered = reopen(root)

    assert seqs(recovered.events[2]) == [1, 2, 3]
    assert recovered.unrecoverable == []


def test_every_kind_of_invalid_checkpoint_is_quarantined_with_a_unique_name(root: Path) -> None:
    boxes = root / "boxes"
    open_store(root).close()
    bad = {
        "notanumber.json": b'{"format":1,"boxId":1,"seq":0,"state":{}}',
        "007.json": b'{"format":1,"boxId":7,"seq":0,"state":{}}',  # not the canonical name
        "12345678901234567.json": b'{"format":1,"boxId":1,"seq":0,"state":{}}',  # longer than any box id
        "9007199254740992.json": b'{"format":1,"boxId":9007199254740992,"seq":0,"state":{}}',  # past 2**53 - 1
        "1.json": b'{"format":1,"boxId":2,"seq":0,"state":{}}',  # boxId does not match
        "2.json": b'{"format":1,"boxId":2,"seq":0}',  # no state
        "3.json": b'{"format":2,"boxId":3,"seq":0,"state":{}}',  # unknown format
        "4.json": b'{"format":1,"boxId":4,"seq":true,"state":{}}',  # seq not an int
        "5.json": b'{"initiated":false}',  # the old backend's bare state dict
    }
    for name, data in bad.items():
        (boxes / name).write_bytes(data)
    (boxes / "6.json").write_bytes(b'{"format":1,"boxId":6,"seq":0,"state":{"ok":true}}')
    (boxes / "10000.json").write_bytes(b'{"format":1,"boxId":10000,"seq":0,"state":{"ok":true}}')
    (boxes / "quarantine").mkdir()
    # A file quarantined earlier under the same name must not be overwritten.
    first = reopen(root)
    (boxes / "1.json").write_bytes(b"again")
    second = reopen(root)

    assert sorted(first.checkpoints) == [6, 10000]  # the rules' range is not storage's business
    assert len(first.quarantined) == len(bad)
    assert sorted(first.unrecoverable) == [1, 2, 3, 4, 5]  # named like a box, no history
    assert len(second.quarantined) == 1
    kept = sorted(p.read_bytes() for p in (boxes / "quarantine").iterdir())
    assert len(kept) == len(bad) + 1 and b"again" in kept


def test_stray_temp_files_are_removed_and_counted(root: Path) -> None:
    open_store(root).close()
    (root / "boxes" / "3.json.tmp").write_text('{"half')
    (root / "boxes" / "4.json.tmp").write_text("")

    recovered = reopen(root)

    assert recovered.repairs == ("removed 2 stray temp file(s) from boxes/",)
    assert list((root / "boxes").glob("*.tmp")) == []
    assert recovered.quarantined == []


def test_a_hole_after_a_valid_checkpoint_is_reported_and_left_to_replay(root: Path) -> None:
    store = open_store(root)
    store.append([line(1, 1)])
    store.write_checkpoint(1, 1, {})
    store.append([line(1, 2), line(1, 4)])  # seq 3 never reached the log
    store.close()

    recovered = reopen(root)

    assert seqs(recovered.events[1]) == [2, 4]  # the hole is left to replay, which refuses it
    assert recovered.unrecoverable == [1]
