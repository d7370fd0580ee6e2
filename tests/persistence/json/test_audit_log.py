"""The audit reader: newest first, filtered, bounded, and cheap however long the log grows."""
from __future__ import annotations

from pathlib import Path

import orjson

from persistence.fs import FaultyFileSystem
from persistence.json.audit_log import BLOCK_SIZE, read_latest
from persistence.json.store import JsonStore
from persistence.types import AUDIT_KEYS
from tests.persistence.helpers import line


def latest(store: JsonStore, **kwargs) -> list[dict]:
    """What the audit endpoint would answer for the store's current files."""
    options = {"limit": 200, "box_id": None, "include_payload": False, **kwargs}
    return read_latest(store.log_path, store.committed_offset, store.archives()[::-1], **options)


def ids(items: list[dict]) -> list[str]:
    return [item["id"] for item in items]


def test_events_come_newest_first_with_exactly_the_audit_keys(store: JsonStore) -> None:
    store.append([line(0, 1), line(1, 1)])
    store.append([line(0, 2)])

    items = latest(store)

    assert ids(items) == ["ev-0-2", "ev-1-1", "ev-0-1"]
    assert all(tuple(item) == AUDIT_KEYS for item in items)
    assert "seq" not in items[0] and "cmd" not in items[0]


def test_payload_is_null_unless_asked_for(store: JsonStore) -> None:
    store.append([line(0, 1)])

    assert latest(store)[0]["payload"] is None
    assert latest(store, include_payload=True)[0]["payload"] == {"type": "PROGRESS_UPDATE", "boxId": 0, "delta": 1}


def test_missing_audit_keys_read_as_null(store: JsonStore) -> None:
    store.append([b'{"id":"bare","boxId":3}\n'])

    (item,) = latest(store, include_payload=True)

    assert item["id"] == "bare" and item["boxId"] == 3
    assert item["action"] is None and item["payload"] is None


def test_box_filter_and_limit(store: JsonStore) -> None:
    store.append([line(box, seq) for seq in range(1, 6) for box in (0, 1, 2)])

    assert ids(latest(store, box_id=1, limit=3)) == ["ev-1-5", "ev-1-4", "ev-1-3"]
    assert ids(latest(store, limit=2)) == ["ev-2-5", "ev-1-5"]
    assert latest(store, box_id=9) == []


def test_reading_continues_into_archives_newest_first(store: JsonStore) -> None:
    store.append([line(0, 1), line(1, 1)])
    store.rotate()
    store.append([line(0, 2)])
    store.rotate()
    store.append([line(0, 3)])

    assert ids(latest(store)) == ["ev-0-3", "ev-0-2", "ev-1-1", "ev-0-1"]
    assert ids(latest(store, box_id=1)) == ["ev-1-1"]
    assert ids(latest(store, limit=2)) == ["ev-0-3", "ev-0-2"]


def test_archives_are_not_opened_when_the_current_log_has_enough(store: JsonStore, fs: FaultyFileSystem) -> None:
    store.append([line(0, 1)])
    store.rotate()
    store.append([line(0, 2), line(0, 3)])
    fs.calls.clear()

    read_latest(store.log_path, store.committed_offset, store.archives()[::-1],
                limit=2, box_id=None, include_payload=False, fs=fs)

    assert not any("events.000001" in path for _, path in fs.calls)


def test_nothing_past_the_committed_end_is_read(store: JsonStore, fs: FaultyFileSystem) -> None:
    store.append([line(0, 1)])
    with open(store.log_path, "ab") as f:  # a batch being written, not yet fdatasync'ed
        f.write(line(0, 2))

    assert ids(latest(store)) == ["ev-0-1"]
    fs.calls.clear()
    read_latest(store.log_path, store.committed_offset, [], limit=10, box_id=None, include_payload=False, fs=fs)
    assert fs.bytes_read == store.committed_offset


def test_unparsable_lines_are_skipped(store: JsonStore) -> None:
    store.append([line(0, 1), b"{oops\n", b"[1,2]\n", b"\n", line(0, 2)])

    assert ids(latest(store)) == ["ev-0-2", "ev-0-1"]


def test_a_missing_log_or_archive_reads_as_empty(tmp_path: Path) -> None:
    gone = tmp_path / "events.000001.ndjson"

    assert read_latest(tmp_path / "events.ndjson", 0, [gone], limit=5, box_id=None, include_payload=False) == []


def test_lines_spanning_block_boundaries_are_read_whole(tmp_path: Path) -> None:
    lines = [line(seq % 4, seq, note="x" * (seq * 7 % 300)) for seq in range(1, 200)]
    log = tmp_path / "events.ndjson"
    log.write_bytes(b"".join(lines))
    expected = [orjson.loads(raw)["id"] for raw in reversed(lines)]

    for block_size in (1, 13, 64, 1000, BLOCK_SIZE):
        items = read_latest(log, log.stat().st_size, [], limit=1000, box_id=None,
                            include_payload=False, block_size=block_size)
        assert ids(items) == expected, block_size


def test_a_huge_log_costs_only_the_blocks_that_hold_the_answer(tmp_path: Path) -> None:
    log = tmp_path / "events.ndjson"
    log.write_bytes(b"".join(line(seq % 10, seq) for seq in range(1, 100_001)))
    fs = FaultyFileSystem()

    items = read_latest(log, log.stat().st_size, [], limit=50, box_id=None, include_payload=False, fs=fs)

    assert len(items) == 50 and items[0]["id"] == "ev-0-100000"
    assert log.stat().st_size > 100 * BLOCK_SIZE
    assert fs.bytes_read <= 2 * BLOCK_SIZE

    fs.bytes_read = 0
    items = read_latest(log, log.stat().st_size, [], limit=50, box_id=3, include_payload=False, fs=fs)
    assert len(items) == 50 and items[0]["id"] == "ev-3-99993"
    # Only box 3's share of the tail: 50 matches sit in the last ~500 lines, well under 5 blocks.
    assert fs.bytes_read <= 5 * BLOCK_SIZE
    assert fs.bytes_read < log.stat().st_size // 100


def test_a_long_read_hands_the_gil_over_every_few_events(store: JsonStore, monkeypatch) -> None:
    """The event loop waits for the GIL while a read parses on its thread: every
    EVENTS_PER_GIL_HANDOVER events the reader lets it go (counted, not timed)."""
    from persistence.json import audit_log

    handovers = []
    monkeypatch.setattr(audit_log, "_hand_over_gil", lambda: handovers.append(1))
    store.append([line(n % 3, n // 3 + 1) for n in range(3 * audit_log.EVENTS_PER_GIL_HANDOVER + 7)])

    assert len(latest(store, limit=2000)) == 3 * audit_log.EVENTS_PER_GIL_HANDOVER + 7
    assert len(handovers) == 3


def test_a_filtered_read_hands_the_gil_over_while_it_skips_other_boxes(store: JsonStore, monkeypatch) -> None:
    """Events of other boxes are parsed too: they count towards the handovers."""
    from persistence.json import audit_log

    handovers = []
    monkeypatch.setattr(audit_log, "_hand_over_gil", lambda: handovers.append(1))
    events = 4 * audit_log.EVENTS_PER_GIL_HANDOVER
    store.append([line(0 if n == 0 else 1, n + 1) for n in range(events)])  # box 0 only in the oldest

    assert ids(latest(store, box_id=0)) == ["ev-0-1"]
    assert len(handovers) == 4
