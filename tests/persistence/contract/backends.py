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

import pytest

from persistence.factory import StorageSettings, reader_for, storage_for
from persistence.fs import FaultyFileSystem
from persistence.storage import Storage, StorageReader
from tests.persistence.postgres.database import new_schema, refuse_connections, run, terminate


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


class PostgresBackend:
    """A competition in a schema of its own in the test run's database. Its faults are made by the
    server: the writer's session terminated before its COMMIT, the database refusing connections."""

    name = "postgres"

    def __init__(self, folder: Path, url: str) -> None:
        self.url = url
        self._settings = StorageSettings("postgres", folder / "data", 0, url, new_schema())
        self._cut_next = False

    def storage(self) -> Storage:
        return storage_for(self._settings, before_commit=self._before_commit)

    def reader(self) -> StorageReader:
        return reader_for(self._settings)

    async def _before_commit(self, backend_pid: int) -> None:
        if self._cut_next:
            self._cut_next = False
            await terminate(self.url, backend_pid)

    def fail_next_commit(self) -> None:
        self._cut_next = True

    def make_unavailable(self) -> None:
        run(refuse_connections(self.url, True))

    def heal(self) -> None:
        run(refuse_connections(self.url, False))


# name -> how to make a fresh competition of that backend in a test's own tmp folder
BACKENDS: dict[str, Callable[[Path, pytest.FixtureRequest], Backend]] = {
    "json": lambda folder, _: JsonBackend(folder / "data"),
    "postgres": lambda folder, request: PostgresBackend(folder, request.getfixturevalue("postgres_url")),
}
