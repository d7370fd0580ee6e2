"""What every organiser command shares: exit statuses, errors, the storage, output.

The commands reach storage only through persistence/factory.py and the protocol: a `StorageReader`
to read beside a running server, a `Storage` (the one writer) to change anything.
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import TextIO

import orjson

from actors.recovery.replay import load_state
from persistence.errors import StorageLocked
from persistence.factory import StorageSettings, reader_for, storage_for
from persistence.storage import Recovered, StateLoader, Storage, StorageReader
from transport.config import ConfigError, load_config

OK, FAILED, USAGE = 0, 1, 2


class CliError(Exception):
    """Ends a command with a message for the organiser and an exit status."""

    def __init__(self, message: str, status: int = FAILED) -> None:
        super().__init__(message)
        self.status = status


def locked_error(refusal: StorageLocked, advice: str) -> CliError:
    """The storage is held by a running server: exit 2, saying by whom and what to do instead."""
    return CliError(str(refusal.advising(advice)), USAGE)


# -- progress -------------------------------------------------------------------------------------

class Progress:
    """`\\r[####      ] 40% 12.3 MB` on stderr, only when stderr is a terminal."""

    WIDTH = 30

    def __init__(self, label: str, stream: TextIO | None = None) -> None:
        self._stream = stream if stream is not None else sys.stderr
        self._label = label
        self.enabled = bool(getattr(self._stream, "isatty", lambda: False)())
        self._shown = False
        self._last = -1

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled:
            return
        fraction = 1.0 if total <= 0 else min(1.0, done / total)
        percent = int(fraction * 100)
        if percent == self._last and done < total:
            return
        self._last = percent
        filled = int(fraction * self.WIDTH)
        bar = "#" * filled + " " * (self.WIDTH - filled)
        self._stream.write(f"\r{self._label} [{bar}] {percent:3d}% {human_size(done)}")
        self._stream.flush()
        self._shown = True

    def finish(self) -> None:
        if self.enabled and self._shown:
            self._stream.write("\n")
            self._stream.flush()
            self._shown = False


def human_size(size: int) -> str:
    if size < 1000 * 1000:
        return f"{size / 1000:.1f} kB"
    if size < 1000 * 1000 * 1000:
        return f"{size / 1e6:.1f} MB"
    return f"{size / 1e9:.2f} GB"


# -- storage and output -----------------------------------------------------------------------------

def storage_settings(args: argparse.Namespace) -> StorageSettings:
    """STORAGE_MODE, and --storage-dir, else STORAGE_DIR, else ./data (the server's own rules)."""
    try:
        config = load_config(argparse.Namespace(storage_dir=args.storage_dir,
                                                backup_dir=getattr(args, "backup_dir", None)))
    except ConfigError as exc:
        raise CliError(str(exc), USAGE) from None
    args.resolved_backup_dir = config.backup_dir
    return config.storage


async def existing_reader(args: argparse.Namespace) -> StorageReader:
    """Read-only access to the storage; a storage that is not there is a usage error."""
    reader = reader_for(storage_settings(args))
    if not await reader.exists():
        where = ("DATABASE_URL and DATABASE_SCHEMA" if reader.mode == "postgres" else "--storage-dir or STORAGE_DIR")
        raise CliError(f"there is no storage at {reader.location} (check {where})",
                       USAGE)
    return reader


async def existing_storage(args: argparse.Namespace) -> tuple[Storage, StorageReader]:
    """The storage's writer (not opened yet: opening takes its lock), and a reader beside it."""
    reader = await existing_reader(args)
    return storage_for(storage_settings(args)), reader


@asynccontextmanager
async def opened(storage: Storage, advice: str, rule: StateLoader | None = load_state) -> AsyncIterator[Recovered]:
    """The storage opened as a server start opens it (same checkpoint rule), closed afterwards. A
    running server holding it is a usage error that says what to do instead (`advice`)."""
    try:
        recovered = await storage.open(False, rule)
    except BaseException as exc:
        await storage.close()
        if isinstance(exc, StorageLocked):
            raise locked_error(exc, advice) from None
        raise
    try:
        yield recovered
    finally:
        await storage.close()


def print_json(value: object) -> None:
    sys.stdout.write(orjson.dumps(value).decode() + "\n")


def print_table(header: list[str], rows: list[list[str]], write: Callable[[str], None] = print) -> None:
    widths = [max(len(header[i]), *(len(row[i]) for row in rows)) for i in range(len(header))]
    last = len(header) - 1
    for row in [header, *rows]:
        write("  ".join(cell if i == last else cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip())
