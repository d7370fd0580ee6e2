"""The one door between the JSON storage and the operating system.

Every write, sync, rename, unlink and truncate of `persistence/` goes through a `FileSystem`, so
tests can swap in `FaultyFileSystem` and make any single call fail (root ignores chmod, so a full
disk or a dying drive can only be simulated in code).
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

if sys.platform == "win32":
    import msvcrt
else:
    import fcntl

StrPath = str | os.PathLike[str]


class FileSystem:
    """Thin wrappers over `os.*` for Linux and macOS, with Windows fallbacks."""

    def open(self, path: StrPath, flags: int, mode: int = 0o644) -> int:
        # O_BINARY matters on Windows only: without it "\n" would be written as "\r\n".
        return os.open(path, flags | getattr(os, "O_BINARY", 0), mode)

    def write_all(self, fd: int, data: bytes) -> None:
        """os.write may write less than asked (signals, pipes, some file systems): loop."""
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]

    def fdatasync(self, fd: int) -> None:
        # macOS has no fdatasync; fsync also flushes metadata, which is merely slower.
        sync = getattr(os, "fdatasync", os.fsync)
        sync(fd)

    def fsync(self, fd: int) -> None:
        os.fsync(fd)

    def ftruncate(self, fd: int, size: int) -> None:
        os.ftruncate(fd, size)

    def close(self, fd: int) -> None:
        os.close(fd)

    def replace(self, src: StrPath, dst: StrPath) -> None:
        os.replace(src, dst)

    def fsync_dir(self, path: StrPath) -> None:
        """Make a rename or a new file in `path` survive a power cut (no-op on Windows)."""
        if sys.platform == "win32":
            return
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def unlink(self, path: StrPath) -> None:
        os.unlink(path)

    def link(self, src: StrPath, dst: StrPath) -> None:
        """A second name for the same file; a checkpoint replaced later keeps the linked version."""
        os.link(src, dst)

    def makedirs(self, path: StrPath) -> None:
        os.makedirs(path, exist_ok=True)

    def read_bytes(self, path: StrPath) -> bytes:
        return Path(path).read_bytes()

    def pread(self, fd: int, size: int, offset: int) -> bytes:
        """Read up to `size` bytes at `offset`; shorter only at end of file."""
        chunks: list[bytes] = []
        while size > 0:
            chunk = self._pread_once(fd, size, offset)
            if not chunk:
                break
            chunks.append(chunk)
            size -= len(chunk)
            offset += len(chunk)
        return b"".join(chunks)

    def file_size(self, fd: int) -> int:
        return os.fstat(fd).st_size

    def exists(self, path: StrPath) -> bool:
        return os.path.lexists(path)

    def list_files(self, path: StrPath) -> list[str]:
        """Names of the regular files in `path`, sorted; [] if it does not exist."""
        return self._list(path, want_dirs=False)

    def list_dirs(self, path: StrPath) -> list[str]:
        return self._list(path, want_dirs=True)

    def try_lock(self, fd: int) -> bool:
        """Exclusive, non-blocking lock on an open file; False if someone else holds it.

        The kernel drops the lock when the holder dies, so a crash never blocks a restart.
        """
        if sys.platform == "win32":
            os.lseek(fd, 0, os.SEEK_SET)
            try:
                msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
            except OSError:  # msvcrt reports a held lock as a plain OSError
                return False
            return True
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def _pread_once(self, fd: int, size: int, offset: int) -> bytes:
        if hasattr(os, "pread"):
            return os.pread(fd, size, offset)
        os.lseek(fd, offset, os.SEEK_SET)  # Windows: no pread
        return os.read(fd, size)

    def _list(self, path: StrPath, *, want_dirs: bool) -> list[str]:
        try:
            with os.scandir(path) as entries:
                return sorted(
                    e.name
                    for e in entries
                    if (e.is_dir(follow_symlinks=False) if want_dirs else e.is_file(follow_symlinks=False))
                )
        except FileNotFoundError:
            return []



def write_atomic(fs: FileSystem, path: Path, data: bytes, mode: int = 0o644, *, sync_dir: bool = True) -> None:
    """Temp file, fsync, replace, directory fsync: a reader sees the old or the new file, never a mix.

    `sync_dir=False` leaves the directory fsync to the caller (one for many files). Raises OSError;
    the temp file is removed on failure (or at the next start if that fails too).
    """
    tmp = path.with_name(path.name + ".tmp")
    try:
        try:
            fd = fs.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        except FileExistsError:  # a crash's leftover keeps its own mode (maybe looser): never reuse it
            fs.unlink(tmp)
            fd = fs.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        try:
            fs.write_all(fd, data)
            fs.fsync(fd)
        finally:
            fs.close(fd)
        fs.replace(tmp, path)
        if sync_dir:
            fs.fsync_dir(path.parent)
    except OSError:
        try:
            fs.unlink(tmp)
        except OSError:
            pass
        raise

@dataclass
class _Fault:
    op: str
    err: int
    path_contains: str | None
    skip: int
    times: int
    partial: int | None

    def matches(self, op: str, path: str) -> bool:
        return self.times > 0 and op == self.op and (self.path_contains is None or self.path_contains in path)


class FaultyFileSystem(FileSystem):
    """A real file system whose chosen calls fail on demand; logs every call for assertions."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []
        self.bytes_read = 0  # by pread and read_bytes: lets tests prove a reader stays cheap
        self._faults: list[_Fault] = []
        self._fd_paths: dict[int, str] = {}

    def inject(
        self,
        op: str,
        err: int,
        *,
        path_contains: str | None = None,
        skip: int = 0,
        times: int = 1,
        partial: int | None = None,
    ) -> None:
        """Make the next matching `op` calls raise OSError(err) after `skip` successful matches,
        `times` times. `partial` (write_all only) first writes that many bytes: a torn write."""
        self._faults.append(_Fault(op, err, path_contains, skip, times, partial))

    def heal(self) -> None:
        """No more faults: every later call succeeds."""
        self._faults.clear()

    def open(self, path: StrPath, flags: int, mode: int = 0o644) -> int:
        self._enter("open", path)
        fd = super().open(path, flags, mode)
        self._fd_paths[fd] = os.fspath(path)
        return fd

    def write_all(self, fd: int, data: bytes) -> None:
        fault = self._enter("write_all", self._fd_paths.get(fd, f"fd:{fd}"), raise_now=False)
        if fault is not None:
            if fault.partial:
                super().write_all(fd, data[: fault.partial])
            raise OSError(fault.err, os.strerror(fault.err))
        super().write_all(fd, data)

    def fdatasync(self, fd: int) -> None:
        self._enter("fdatasync", self._path_of(fd))
        super().fdatasync(fd)

    def fsync(self, fd: int) -> None:
        self._enter("fsync", self._path_of(fd))
        super().fsync(fd)

    def ftruncate(self, fd: int, size: int) -> None:
        self._enter("ftruncate", self._path_of(fd))
        super().ftruncate(fd, size)

    def close(self, fd: int) -> None:
        self._enter("close", self._path_of(fd))
        self._fd_paths.pop(fd, None)
        super().close(fd)

    def replace(self, src: StrPath, dst: StrPath) -> None:
        self._enter("replace", f"{os.fspath(src)} -> {os.fspath(dst)}")
        super().replace(src, dst)

    def fsync_dir(self, path: StrPath) -> None:
        self._enter("fsync_dir", path)
        super().fsync_dir(path)

    def unlink(self, path: StrPath) -> None:
        self._enter("unlink", path)
        super().unlink(path)

    def makedirs(self, path: StrPath) -> None:
        self._enter("makedirs", path)
        super().makedirs(path)

    def read_bytes(self, path: StrPath) -> bytes:
        self._enter("read_bytes", path)
        data = super().read_bytes(path)
        self.bytes_read += len(data)
        return data

    def pread(self, fd: int, size: int, offset: int) -> bytes:
        self._enter("pread", self._path_of(fd))
        data = super().pread(fd, size, offset)
        self.bytes_read += len(data)
        return data

    def _path_of(self, fd: int) -> str:
        return self._fd_paths.get(fd, f"fd:{fd}")

    def _enter(self, op: str, path: StrPath, *, raise_now: bool = True) -> _Fault | None:
        """Log the call; return (or raise) the fault that fires for it, if any."""
        path = os.fspath(path)
        self.calls.append((op, path))
        matching = [f for f in self._faults if f.matches(op, path)]
        fault = next((f for f in matching if f.skip == 0), None)
        if fault is None:
            for f in matching:  # this call succeeds: it counts towards every pending skip
                f.skip -= 1
            return None
        fault.times -= 1
        if fault.times <= 0:
            self._faults.remove(fault)
        if raise_now:
            raise OSError(fault.err, os.strerror(fault.err))
        return fault
