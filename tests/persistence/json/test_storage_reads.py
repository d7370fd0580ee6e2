"""Audit reads through JsonStorage while the log rotates: the log, its committed end and the
archives are taken together on the IO thread, so a read never misses the events a rotation just
moved into an archive."""
from __future__ import annotations

import asyncio
import threading
from pathlib import Path

from persistence.fs import FileSystem, StrPath
from persistence.json.storage import JsonStorage
from tests.persistence.helpers import line


class HeldDocumentReads(FileSystem):
    """A real file system whose reads of documents can be held, keeping the IO thread busy."""

    def __init__(self) -> None:
        self.free = threading.Event()
        self.free.set()

    def read_bytes(self, path: StrPath) -> bytes:
        if "officials" in Path(path).name:
            self.free.wait(10)
        return super().read_bytes(path)


async def test_a_read_queued_across_a_rotation_still_sees_the_rotated_events(tmp_path: Path) -> None:
    fs = HeldDocumentReads()
    storage = JsonStorage(tmp_path / "data", max_log_bytes=1, fs=fs)  # every batch makes rotation due
    await storage.open(False)
    try:
        await storage.write_document("officials", {"chiefJudge": "Ana"})
        await storage.append([line(0, 1), line(0, 2)])
        fs.free.clear()
        busy = asyncio.create_task(storage.read_document("officials"))  # holds the IO thread
        await asyncio.sleep(0.05)
        reading = asyncio.create_task(storage.read_audit(limit=10, box_id=None, include_payload=False))
        await asyncio.sleep(0.05)

        async def nothing_to_checkpoint() -> None:
            return None

        assert await storage.maintain(nothing_to_checkpoint)  # while the read waits its turn
        fs.free.set()
        assert await busy == {"chiefJudge": "Ana"}
        assert [item["id"] for item in await reading] == ["ev-0-2", "ev-0-1"]
    finally:
        fs.free.set()
        await storage.close()
