"""The backends the storage contract runs against, and what each must provide to join it.

A backend joins the suite with a class that satisfies `Backend` and one line in `BACKENDS`
(conftest.py builds one fresh competition per call of `make`). Its storages come from the same
factory the server uses, so the suite also proves that STORAGE_MODE picks it.
"""
from __future__ import annotations

import errno
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from persistence.factory import StorageSettings, reader_for, storage_for
from persistence.fs import FaultyFileSystem
from persistence.storage import Storage, StorageReader


class Backend(Protocol):
    """One competition in one backend, and the faults the suite injects into it."""

    name: str

    def storage(self) -> Storage:
        """A new writer on this competition, not opened yet (a reopen is a new one)."""
        ...

    def reader(self) -> StorageReader:
        """Read-only access to this competition."""
        ...

    def fail_next_commit(self) -> None:
        """The next append fails after part of its batch may have reached the medium (JSON: a torn
        write; a database: the connection cut before its COMMIT)."""
        ...

    def make_unavailable(self) -> None:
        """Every write fails from now on (a full disk; a database that went away) until `heal`."""
        ...

    def heal(self) -> None:
        """The storage works again."""
        ...


class JsonBackend:
    name = "json"

    def __init__(self, root: Path) -> None:
        self.root = root
        self.fs = FaultyFileSystem()
        # A tiny log limit: every `maintain` rotates, so the suite exercises rotation.
        self._settings = StorageSettings("json", root, max_log_bytes=1)

    def storage(self) -> Storage:
        return storage_for(self._settings, fs=self.fs)

    def reader(self) -> StorageReader:
        return reader_for(self._settings)

    def fail_next_commit(self) -> None:
        self.fs.inject("write_all", errno.EIO, path_contains="events.ndjson", partial=7)

    def make_unavailable(self) -> None:
        for op in ("write_all", "fsync", "fdatasync", "replace"):
            self.fs.inject(op, errno.ENOSPC, times=10**9)

    def heal(self) -> None:
        self.fs.heal()


# name -> how to make a fresh competition of that backend in a test's own tmp folder
BACKENDS: dict[str, Callable[[Path], Backend]] = {
    "json": lambda folder: JsonBackend(folder / "data"),
}
