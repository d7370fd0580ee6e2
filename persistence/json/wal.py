"""The write-ahead log `events.ndjson`: group-committed appends, a cut torn tail, rotation.

Invariant: the bytes on disk end at `committed_offset`, the end of the last line that was
fdatasync'ed. A failed append is cut back to it before anything else is written, because a later
successful fsync proves nothing about the one that failed.
"""
from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from persistence.errors import StorageError
from persistence.fs import FileSystem
from persistence.layout import ARCHIVE_RE, LOG_NAME
from persistence.lines import check_lines, parse_line

log = logging.getLogger("belay.persistence")

_APPEND_FLAGS = os.O_WRONLY | os.O_APPEND | os.O_CREAT


class WriteAheadLog:
    def __init__(self, root: Path, fs: FileSystem) -> None:
        self.root = root
        self.path = root / LOG_NAME
        self._fs = fs
        self._fd: int | None = None
        self._committed = 0
        self._needs_cut = False  # a failed append could not be cut back yet

    @property
    def committed_offset(self) -> int:
        return self._committed

    def open(self) -> tuple[bytes, int]:
        """Open for appending after cutting a torn tail; returns (committed bytes, bytes cut)."""
        try:
            fd = self._open_log()
            try:
                data = self._fs.read_bytes(self.path)
                end = committed_length(data)
                if end < len(data):
                    self._fs.ftruncate(fd, end)
                    self._fs.fsync(fd)
                    log.warning("cut %d torn byte(s) from the end of %s", len(data) - end, self.path)
            except OSError:
                self._fs.close(fd)
                raise
        except OSError as exc:
            raise StorageError(f"cannot open {self.path}: {exc}") from exc
        self._fd, self._committed = fd, end
        return data[:end], len(data) - end

    def append(self, lines: Sequence[bytes]) -> int:
        """Group commit: one write and one fdatasync for the whole batch."""
        check_lines(lines)
        data = b"".join(lines)
        fd = self._ready_fd()
        if not data:
            return self._committed
        try:
            self._fs.write_all(fd, data)
            self._fs.fdatasync(fd)
        except OSError as exc:
            self._cut_back(fd)
            raise StorageError(f"cannot append to {self.path}: {exc}") from exc
        self._committed += len(data)
        return self._committed

    def rotate(self, archive: Path) -> None:
        """Rename the log to `archive` and start a fresh one."""
        old_fd = self._ready_fd()
        try:
            self._fs.replace(self.path, archive)
        except OSError as exc:
            raise StorageError(f"cannot rotate {self.path} to {archive}: {exc}") from exc
        self._fd, self._committed = None, 0
        self._close_quietly(old_fd)
        # A failure from here on leaves no open log; the next append creates it.
        self._ready_fd()

    def archives(self) -> list[tuple[int, Path]]:
        """(number, path) of every rotated log, oldest first."""
        return list_archives(self.root, self._fs)

    def close(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            self._fs.close(fd)

    def _ready_fd(self) -> int:
        """The log descriptor, after finishing any repair a previous failure left pending."""
        if self._fd is None:
            try:
                self._fd = self._open_log()
            except OSError as exc:
                raise StorageError(f"cannot open {self.path}: {exc}") from exc
            self._committed = self._fs.file_size(self._fd)
        if self._needs_cut:
            self._cut_back(self._fd)
            if self._needs_cut:
                raise StorageError(f"{self.path} still holds an uncommitted batch that cannot be cut")
        return self._fd

    def _open_log(self) -> int:
        created = not self._fs.exists(self.path)
        fd = self._fs.open(self.path, _APPEND_FLAGS)
        if created:
            try:
                self._fs.fsync_dir(self.root)  # the new directory entry must survive a crash
            except OSError:
                self._fs.close(fd)
                raise
        return fd

    def _cut_back(self, fd: int) -> None:
        try:
            self._fs.ftruncate(fd, self._committed)
            self._fs.fdatasync(fd)
        except OSError as exc:
            self._needs_cut = True
            log.error("cannot cut %s back to %d bytes (will retry): %s", self.path, self._committed, exc)
        else:
            self._needs_cut = False

    def _close_quietly(self, fd: int) -> None:
        try:
            self._fs.close(fd)
        except OSError as exc:  # its data was fdatasync'ed already
            log.warning("closing the rotated log failed: %s", exc)


def list_archives(root: Path, fs: FileSystem) -> list[tuple[int, Path]]:
    """(number, path) of every rotated log in `root`, oldest first."""
    found = []
    for name in fs.list_files(root):
        match = ARCHIVE_RE.match(name)
        if match:
            found.append((int(match.group(1)), root / name))
    return sorted(found)


def committed_length(data: bytes) -> int:
    """Length of `data` without its torn tail: bytes after the last "\n", and any last complete
    lines that do not parse (a crash can leave a full-length line of garbage or zeros, and torn
    garbage may itself contain a newline)."""
    end = data.rfind(b"\n") + 1
    while end > 0:
        start = data.rfind(b"\n", 0, end - 1) + 1
        if parse_line(data[start : end - 1]) is not None:
            return end
        end = start
    return 0


def iter_lines(data: bytes) -> Iterator[dict[str, Any] | None]:
    """Decoded objects of complete lines in order; None for a line that does not parse."""
    start = 0
    while True:
        end = data.find(b"\n", start)
        if end < 0:
            return
        yield parse_line(data[start:end])
        start = end + 1
