"""A file-system double that knows what would survive a power cut.

`PowerLossFileSystem` works on a real directory (the server reads and writes real files) and keeps
a model of what the disk has *promised*:

* per file: the bytes as of its last fsync/fdatasync (``durable``) and the bytes written so far
  (``current``, kept in memory by replaying every write, checked against the real file at each
  sync);
* per directory: the entries as of its last fsync_dir. A create, rename or unlink is durable only
  once its directory is fsynced; until then the old name (or absence) is what survives.

Every mutating call (write_all, fsync, fdatasync, ftruncate, replace, fsync_dir, unlink, link) is a
"point". After each point the double records what would survive a cut right then, so one run gives
every point: `cut_power(mode, at=k, dest=...)` materialises the survivors of a cut after point k
into a new directory. `cut_after=k` makes point k+1 and every later call fail with `PowerCut` (an
OSError, so the server takes its "disk is dead" path) and freezes the model: a real cut mid-run.

Modes: "drop" keeps exactly the last synced bytes; "torn" also keeps a seeded random prefix of an
appended-but-unsynced tail, sometimes followed by garbage (a sector that was allocated but never
written). Everything is deterministic for a given seed.
"""
from __future__ import annotations

import errno
import hashlib
import os
import random
import stat
import threading
from dataclasses import dataclass, field
from pathlib import Path

from persistence.fs import FileSystem, StrPath

DIR = "<dir>"  # a directory entry in a directory listing


class PowerCut(OSError):
    def __init__(self) -> None:
        super().__init__(errno.EIO, "power cut (PowerLossFileSystem)")


@dataclass
class _Node:
    """One file (inode): survives renames and hard links."""

    current: bytes = b""
    durable: bytes = b""


@dataclass
class _Fd:
    node: _Node
    pos: int
    append: bool


# What survives a cut at one point: {dir relative path: {name: DIR | (durable, current)}}.
Survivors = dict[str, dict[str, "str | tuple[bytes, bytes]"]]


@dataclass
class PointInfo:
    op: str
    path: str
    survivors: Survivors = field(repr=False)


class PowerLossFileSystem(FileSystem):
    def __init__(self, root: StrPath, *, seed: int = 0, cut_after: int | None = None,
                 sync_data: bool = True, sync_dirs: bool = True) -> None:
        """`root` must exist; what is in it now counts as durable.

        sync_data=False / sync_dirs=False are broken disks for the checker's own test: fdatasync /
        fsync_dir still happen for real but the model does not count them as durable.
        """
        self.root = Path(root).resolve()
        self.seed = seed
        self.cut_after = cut_after
        self._sync_data = sync_data
        self._sync_dirs = sync_dirs
        self._lock = threading.RLock()
        self._by_ino: dict[int, _Node] = {}
        self._fds: dict[int, _Fd] = {}
        self._durable_dirs: dict[str, dict[str, object]] = {}
        self.cut = False
        self.frozen = False  # after restore_power(): calls work again, the model stays at the cut
        self.points = 0
        self.history: list[PointInfo] = []
        self.mismatches: list[str] = []  # model vs real file at a sync (must stay empty)
        for dirpath, _dirs, _files in os.walk(self.root):
            self._durable_dirs[self._rel(dirpath)] = self._listing(dirpath)
        self.history.append(PointInfo("start", "", self._survivors()))

    # -- bookkeeping -----------------------------------------------------------------------------

    def _rel(self, path: StrPath) -> str:
        return os.path.relpath(os.path.abspath(os.fspath(path)), self.root)

    def _inside(self, path: StrPath) -> bool:
        rel = self._rel(path)
        return rel == "." or not rel.startswith("..")

    def _node_for(self, st: os.stat_result, real_path: str | None = None) -> _Node:
        node = self._by_ino.get(st.st_ino)
        if node is None:  # written by someone else (plain os): take it as durable as it is
            content = Path(real_path).read_bytes() if real_path else b""
            node = self._by_ino[st.st_ino] = _Node(content, content)
        return node

    def _listing(self, path: StrPath) -> dict[str, object]:
        entries: dict[str, object] = {}
        with os.scandir(path) as it:
            for entry in it:
                st = entry.stat(follow_symlinks=False)
                if stat.S_ISDIR(st.st_mode):
                    entries[entry.name] = DIR
                elif stat.S_ISREG(st.st_mode):
                    entries[entry.name] = self._node_for(st, entry.path)
        return entries

    def _survivors(self) -> Survivors:
        return {
            rel: {name: (DIR if entry is DIR else (entry.durable, entry.current))  # type: ignore[union-attr]
                  for name, entry in entries.items()}
            for rel, entries in self._durable_dirs.items()
        }

    def _point(self, op: str, path: StrPath, action) -> object:  # type: ignore[no-untyped-def]
        """Run one mutating call as point k+1: fail it if the power is already off."""
        with self._lock:
            if self.frozen:
                return action()
            if self.cut or (self.cut_after is not None and self.points >= self.cut_after):
                self.cut = True
                raise PowerCut()
            result = action()
            self.points += 1
            self.history.append(PointInfo(op, os.fspath(path), self._survivors()))
            return result

    # -- FileSystem ------------------------------------------------------------------------------

    def open(self, path: StrPath, flags: int, mode: int = 0o644) -> int:
        with self._lock:
            creating = bool(flags & os.O_CREAT) and not os.path.lexists(path)
            if self.cut and not self.frozen and (creating or flags & (os.O_WRONLY | os.O_RDWR)):
                raise PowerCut()
            fd = super().open(path, flags, mode)
            st = os.fstat(fd)
            if creating:
                node = self._by_ino[st.st_ino] = _Node()  # a reused inode number is a new file
            else:
                node = self._node_for(st, os.fspath(path))
            if flags & os.O_TRUNC:
                node.current = b""
            self._fds[fd] = _Fd(node, 0, bool(flags & os.O_APPEND))
            return fd

    def close(self, fd: int) -> None:
        with self._lock:
            self._fds.pop(fd, None)
        super().close(fd)

    def write_all(self, fd: int, data: bytes) -> None:
        def act() -> None:
            super(PowerLossFileSystem, self).write_all(fd, data)
            handle = self._fds.get(fd)
            if handle is not None:
                node = handle.node
                pos = len(node.current) if handle.append else handle.pos
                head = node.current[:pos] + b"\0" * max(0, pos - len(node.current))
                node.current = head + bytes(data) + node.current[pos + len(data):]
                handle.pos = pos + len(data)
        self._point("write_all", self._path(fd), act)

    def ftruncate(self, fd: int, size: int) -> None:
        def act() -> None:
            super(PowerLossFileSystem, self).ftruncate(fd, size)
            handle = self._fds.get(fd)
            if handle is not None:
                cur = handle.node.current
                handle.node.current = cur[:size] + b"\0" * max(0, size - len(cur))
        self._point("ftruncate", self._path(fd), act)

    def fdatasync(self, fd: int) -> None:
        self._point("fdatasync", self._path(fd), lambda: self._sync(fd, super(PowerLossFileSystem, self).fdatasync,
                                                                     self._sync_data))

    def fsync(self, fd: int) -> None:
        self._point("fsync", self._path(fd), lambda: self._sync(fd, super(PowerLossFileSystem, self).fsync, True))

    def _sync(self, fd: int, real, count: bool) -> None:  # type: ignore[no-untyped-def]
        real(fd)
        handle = self._fds.get(fd)
        if handle is None:
            return
        on_disk = _read_fd(fd)
        if on_disk != handle.node.current:
            self.mismatches.append(f"model of fd {fd} differs from the real file at a sync")
            handle.node.current = on_disk
        if count:
            handle.node.durable = on_disk

    def replace(self, src: StrPath, dst: StrPath) -> None:
        self._point("replace", dst, lambda: super(PowerLossFileSystem, self).replace(src, dst))

    def unlink(self, path: StrPath) -> None:
        self._point("unlink", path, lambda: super(PowerLossFileSystem, self).unlink(path))

    def link(self, src: StrPath, dst: StrPath) -> None:
        self._point("link", dst, lambda: super(PowerLossFileSystem, self).link(src, dst))

    def makedirs(self, path: StrPath) -> None:
        with self._lock:
            if self.cut and not self.frozen:
                raise PowerCut()
        super().makedirs(path)

    def fsync_dir(self, path: StrPath) -> None:
        def act() -> None:
            super(PowerLossFileSystem, self).fsync_dir(path)
            if self._sync_dirs and self._inside(path):
                self._durable_dirs[self._rel(path)] = self._listing(path)
        self._point("fsync_dir", path, act)

    def restore_power(self) -> None:
        """Let calls succeed again (so the app can shut down) without changing what survived."""
        with self._lock:
            self.frozen = True

    def _path(self, fd: int) -> str:
        return f"fd:{fd}"

    # -- the cut ---------------------------------------------------------------------------------

    def cut_power(self, mode: str, dest: StrPath, *, at: int | None = None) -> Path:
        """Write what survives a cut right after point `at` (default: now) into the new dir `dest`."""
        if mode not in ("drop", "torn"):
            raise ValueError(mode)
        with self._lock:
            k = len(self.history) - 1 if at is None else at
            survivors = self.history[k].survivors
        dest = Path(dest)
        rng = random.Random(f"{self.seed}:{k}:{mode}")
        self._materialise(survivors, ".", dest, mode, rng)
        return dest

    def _materialise(self, survivors: Survivors, rel: str, dest: Path, mode: str, rng: random.Random) -> None:
        dest.mkdir(parents=True, exist_ok=False)
        for name, entry in sorted(survivors.get(rel, {}).items()):
            child_rel = name if rel == "." else f"{rel}/{name}"
            if entry == DIR:
                self._materialise(survivors, child_rel, dest / name, mode, rng)
                continue
            durable, current = entry  # type: ignore[misc]
            data = durable
            if mode == "torn" and len(current) > len(durable) and current.startswith(durable):
                tail = current[len(durable):]
                data = durable + tail[: rng.randint(0, len(tail))]
                if rng.random() < 0.3:  # garbage within one line: zeros, or random bytes without b"\n"
                    junk = rng.randbytes(rng.randint(1, 64)).replace(b"\n", b"?")
                    data += rng.choice([b"\0" * len(junk), junk])
            (dest / name).write_bytes(data)


def _read_fd(fd: int) -> bytes:
    """The whole file behind `fd`, even when it was opened write-only (Linux: via /proc)."""
    reader = os.open(f"/proc/self/fd/{fd}", os.O_RDONLY)
    try:
        size = os.fstat(reader).st_size
        return os.pread(reader, size, 0) if size else b""
    finally:
        os.close(reader)


def tree_digest(root: Path) -> str:
    """Names and contents under `root`: two cuts with the same digest restart the same way."""
    h = hashlib.sha256()
    for dirpath, dirs, files in sorted(os.walk(root)):
        dirs.sort()
        for name in sorted(files):
            path = Path(dirpath) / name
            h.update(os.path.relpath(path, root).encode() + b"\0" + path.read_bytes() + b"\1")
        h.update(os.path.relpath(dirpath, root).encode() + b"\2")
    return h.hexdigest()
