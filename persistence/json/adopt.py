"""A backup restored into a new JSON storage directory, all or nothing: unpacked beside it, proven
by the caller, and only then moved in."""
from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path

from persistence.backup import BackupContents, Progress, extract
from persistence.errors import StorageNotEmpty
from persistence.storage import Storage


def check_empty(root: Path) -> None:
    if root.exists() and not root.is_dir():
        raise StorageNotEmpty(f"{root} exists and is not a directory; nothing was changed")
    if root.is_dir() and any(root.iterdir()):
        raise StorageNotEmpty(f"{root} is not empty; restore only into a new or empty directory "
                              f"(nothing was changed)")


async def adopt_backup(root: Path, contents: BackupContents, staged: Callable[[Path], Storage],
                       verify: Callable[[Storage], Awaitable[None]], progress: Progress | None) -> None:
    await asyncio.to_thread(check_empty, root)
    scratch = await asyncio.to_thread(_scratch_beside, root)
    try:
        await asyncio.to_thread(extract, contents, scratch, progress)
        await verify(staged(scratch))
        await asyncio.to_thread(_move_into_place, scratch, root)
    finally:
        await asyncio.to_thread(shutil.rmtree, scratch, True)


def _scratch_beside(root: Path) -> Path:
    """A new folder next to `root` (same file system, so moving it in is a rename), with the mode a
    plain mkdir would give it, not mkdtemp's 0700."""
    parent = root.resolve().parent
    parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{root.name}.restoring-", dir=parent))
    umask = os.umask(0)
    os.umask(umask)
    scratch.chmod(0o777 & ~umask)
    return scratch


def _move_into_place(scratch: Path, root: Path) -> None:
    check_empty(root)  # still: nobody filled it meanwhile
    if not root.exists():
        os.replace(scratch, root)
        return
    for entry in sorted(scratch.iterdir()):
        os.replace(entry, root / entry.name)
    if os.name != "nt":
        fd = os.open(root, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
