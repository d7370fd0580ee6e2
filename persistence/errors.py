"""Errors of every storage backend: the protocol raises these and nothing else for storage trouble."""
from __future__ import annotations

import asyncio

from persistence.types import Holder


class StorageError(Exception):
    """An I/O failure: the caller answers 503 storage_unavailable and retries later."""


class CommitUnknown(StorageError):
    """A batch whose COMMIT got no answer, and the database stayed away while it was looked up:
    `settled` says later whether it committed (True) or not. Until then its boxes answer
    box_unavailable; a batch found committed is applied then, as it would have been."""

    def __init__(self, message: str, settled: asyncio.Future[bool]) -> None:
        super().__init__(message)
        self.settled = settled


class StorageLocked(StorageError):
    """Another process is the storage's one writer."""

    def __init__(self, message: str, holder: Holder | None = None, location: str = "") -> None:
        super().__init__(message)
        self.holder = holder
        self.location = location

    def advising(self, advice: str) -> StorageLocked:
        """The same refusal for an organiser command: who holds it, and what to do instead."""
        holder = self.holder or Holder("unknown")
        return StorageLocked(f"a Belay server ({holder}) is using {self.location}: {advice}", self.holder,
                             self.location)


class DocumentUnreadable(StorageError):
    """A read-only look found a document that does not parse (a writer would set it aside)."""

    def __init__(self, name: str, where: str, location: str) -> None:
        super().__init__(f"{where} in {location} is not valid JSON")
        self.name = name
        self.where = where  # how the backend names the document ("users.json")


class StorageNotEmpty(StorageError):
    """A backup is restored only into a storage that holds nothing yet."""


class StorageModeUnavailable(StorageError):
    """STORAGE_MODE names a backend this build does not have."""
