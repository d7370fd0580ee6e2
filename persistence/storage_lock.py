"""One process owns a storage directory: an exclusive lock on `belay.lock` refuses a second one."""
from __future__ import annotations

import os
from pathlib import Path

from persistence.errors import StorageError, StorageLocked
from persistence.fs import FileSystem

LOCK_NAME = "belay.lock"


class StorageLock:
    """Held from `acquire` to `release`; the kernel frees it if the process dies."""

    def __init__(self, root: Path, fs: FileSystem) -> None:
        self.path = root / LOCK_NAME
        self._fs = fs
        self._fd: int | None = None

    def acquire(self) -> None:
        try:
            fd = self._fs.open(self.path, os.O_RDWR | os.O_CREAT)
        except OSError as exc:
            raise StorageError(f"cannot open lock file {self.path}: {exc}") from exc
        try:
            locked = self._fs.try_lock(fd)
            if not locked:
                owner = self._owner_pid(fd)
                raise StorageLocked(
                    f"storage directory {self.path.parent} is in use by another Belay process "
                    f"(pid {owner}, lock file {self.path}); stop it or choose another STORAGE_DIR"
                )
            # The pid is only informational (for the message above), so no fsync.
            self._fs.ftruncate(fd, 0)
            self._fs.write_all(fd, f"{os.getpid()}\n".encode())
        except StorageLocked:
            self._fs.close(fd)
            raise
        except OSError as exc:
            self._fs.close(fd)
            raise StorageError(f"cannot lock {self.path}: {exc}") from exc
        self._fd = fd

    def release(self) -> None:
        """Closing the descriptor drops the lock. The file stays: unlinking it would let a
        newcomer lock a fresh inode while a late opener still waits on the old one."""
        if self._fd is not None:
            fd, self._fd = self._fd, None
            self._fs.close(fd)

    def _owner_pid(self, fd: int) -> str:
        try:
            text = self._fs.pread(fd, 32, 0).decode("ascii", "replace").strip()
        except OSError:
            text = ""
        return text or "unknown"
