"""One process owns a storage directory: an exclusive lock on `belay.lock` refuses a second one.

Tools that work beside a server (the storage check, the organiser commands) ask who holds it."""
from __future__ import annotations

import os
import sys
from pathlib import Path

from persistence.errors import StorageError, StorageLocked
from persistence.fs import FileSystem
from persistence.types import Holder

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
                owner = Holder(self._owner_pid(fd))
                raise StorageLocked(
                    f"storage directory {self.path.parent} is in use by another Belay process "
                    f"({owner}, lock file {self.path}); stop it or choose another STORAGE_DIR",
                    owner, str(self.path.parent),
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


def lock_holder(root: Path) -> Holder | None:
    """Who holds the directory lock, or None if it is free. Never creates the lock file: it is
    opened read-only, tried without waiting, and let go at once."""
    flags = os.O_RDWR if sys.platform == "win32" else os.O_RDONLY  # msvcrt needs a writable descriptor
    try:
        fd = os.open(root / LOCK_NAME, flags)
    except FileNotFoundError:
        return None
    try:
        if FileSystem().try_lock(fd):
            return None
        try:
            os.lseek(fd, 0, os.SEEK_SET)
            text = os.read(fd, 32).decode("ascii", "replace").strip()
        except OSError:
            text = ""
        return Holder(text or "unknown")
    finally:
        os.close(fd)  # closing drops a lock we took
