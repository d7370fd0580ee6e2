"""The JSON backend's read-only side and the leftovers of its durable points."""
from __future__ import annotations

from pathlib import Path

import pytest

from persistence.errors import DocumentUnreadable
from persistence.json.reader import JsonReader
from persistence.json.storage import JsonStorage
from persistence.json.store import STAGING_DIR
from tests.persistence.helpers import line


async def test_a_reader_refuses_a_document_that_does_not_parse_and_moves_nothing(tmp_path: Path) -> None:
    root = tmp_path / "data"
    root.mkdir()
    (root / "users.json").write_bytes(b'{"admin": {')

    with pytest.raises(DocumentUnreadable) as refused:
        await JsonReader(root).read_document("users")

    assert refused.value.where == "users.json" and "is not valid JSON" in str(refused.value)
    assert [p.name for p in root.iterdir()] == ["users.json"]


async def test_the_writer_sets_an_unreadable_document_aside_and_reads_none(tmp_path: Path) -> None:
    root = tmp_path / "data"
    storage = JsonStorage(root)
    await storage.open(False)
    try:
        (root / "users.json").write_bytes(b'{"admin": {')
        assert await storage.read_document("users") is None
    finally:
        await storage.close()

    kept = [p for p in root.iterdir() if p.name.startswith("users.json.corrupt-")]
    assert len(kept) == 1 and kept[0].read_bytes() == b'{"admin": {'
    assert await JsonReader(root).read_document("users") is None


async def test_a_reader_never_reads_a_batch_still_being_written(tmp_path: Path) -> None:
    root = tmp_path / "data"
    storage = JsonStorage(root)
    await storage.open(False)
    await storage.append([line(0, 1)])
    await storage.close()
    with open(root / "events.ndjson", "ab") as log:
        log.write(line(0, 2)[:-9])  # half of the next batch

    reader = JsonReader(root)

    assert [e["seq"] for e in await reader.read_box_events(0)] == [1]
    assert [i["id"] for i in await reader.read_audit(limit=5, box_id=None, include_payload=False)] == ["ev-0-1"]


async def test_links_of_a_backup_cut_short_by_a_crash_are_removed_at_the_next_open(tmp_path: Path) -> None:
    root = tmp_path / "data"
    leftover = root / STAGING_DIR / "0123abcd" / "boxes"
    leftover.mkdir(parents=True)
    (leftover / "1.json").write_bytes(b"{}")
    storage = JsonStorage(root)

    await storage.open(False)
    await storage.close()

    assert not (root / STAGING_DIR).exists()
