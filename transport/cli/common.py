"""What every organiser command shares: exit statuses, errors, the storage directory, output."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable

import orjson

from transport.config import ConfigError, load_config

OK, FAILED, USAGE = 0, 1, 2


class CliError(Exception):
    """Ends a command with a message for the organiser and an exit status."""

    def __init__(self, message: str, status: int = FAILED) -> None:
        super().__init__(message)
        self.status = status


def locked_error(root: Path, advice: str) -> CliError:
    """The directory is locked by a running server: exit 2, saying by whom and what to do instead."""
    from persistence.json.lock import locked_by_server

    return CliError(str(locked_by_server(root, advice)), USAGE)


# -- progress -------------------------------------------------------------------------------------

class Progress:
    """`\\r[####      ] 40% 12.3 MB` on stderr, only when stderr is a terminal."""

    WIDTH = 30

    def __init__(self, label: str, stream=None) -> None:  # type: ignore[no-untyped-def]
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

def storage_dir(args: argparse.Namespace, *, must_exist: bool = True) -> Path:
    """--storage-dir, else STORAGE_DIR, else ./data (the server's own rule)."""
    try:
        config = load_config(argparse.Namespace(storage_dir=args.storage_dir,
                                                backup_dir=getattr(args, "backup_dir", None)))
    except ConfigError as exc:
        raise CliError(str(exc), USAGE) from None
    args.resolved_backup_dir = config.backup_dir
    root = config.storage_dir
    if must_exist and not root.is_dir():
        raise CliError(f"there is no storage directory at {root} (check --storage-dir or STORAGE_DIR)", USAGE)
    return root


def print_json(value: object) -> None:
    sys.stdout.write(orjson.dumps(value).decode() + "\n")


def print_table(header: list[str], rows: list[list[str]], write: Callable[[str], None] = print) -> None:
    widths = [max(len(header[i]), *(len(row[i]) for row in rows)) for i in range(len(header))]
    last = len(header) - 1
    for row in [header, *rows]:
        write("  ".join(cell if i == last else cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip())
