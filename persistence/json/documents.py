"""Small whole-file JSON documents in the storage root: users.json, competition_officials.json,
revoked_sessions.json.

Each is replaced atomically on every change. A document that does not parse is moved aside
(never deleted) so the server can still start; the caller decides what an absent one means.
"""
from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from persistence.errors import DocumentUnreadable, StorageError
from persistence.fs import FileSystem, write_atomic
from persistence.json.checkpoints import unique_path
from persistence.layout import DOCUMENT_FILES

log = logging.getLogger("belay.persistence")


class Documents:
    def __init__(self, root: Path, fs: FileSystem) -> None:
        self.root = root
        self._fs = fs

    def path(self, name: str) -> Path:
        return self.root / DOCUMENT_FILES[name]

    def read(self, name: str) -> Any | None:
        path = self.path(name)
        if not self._fs.exists(path):
            return None
        try:
            raw = self._fs.read_bytes(path)
        except OSError as exc:
            raise StorageError(f"cannot read {path}: {exc}") from exc
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
            aside = unique_path(self._fs, self.root, f"{path.name}.corrupt-{stamp}")
            try:
                self._fs.replace(path, aside)
                self._fs.fsync_dir(self.root)
            except OSError as exc:
                raise StorageError(f"{path} is corrupt and cannot be moved aside: {exc}") from exc
            log.error("%s did not parse; moved to %s", path, aside)
            return None

    def peek(self, name: str) -> Any | None:
        """The document without changing anything (beside a running server): one that does not
        parse raises DocumentUnreadable instead of being set aside."""
        path = self.path(name)
        try:
            raw = self._fs.read_bytes(path)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StorageError(f"cannot read {path}: {exc}") from exc
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise DocumentUnreadable(name, path.name, str(self.root)) from None

    def write(self, name: str, value: Any) -> None:
        path = self.path(name)
        data = orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE)
        try:
            write_atomic(self._fs, path, data, mode=0o600)
        except OSError as exc:
            raise StorageError(f"cannot write {path}: {exc}") from exc
