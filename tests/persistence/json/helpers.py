"""Opening the JSON backend's blocking store in its own tests."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from persistence.fs import FileSystem
from persistence.json.store import JsonStore
from persistence.types import Recovered


def open_store(root: Path, fs: FileSystem | None = None, **kwargs: Any) -> JsonStore:
    """A store opened on `root`, discarding the recovery report."""
    store = JsonStore(root, fs=fs, **kwargs)
    store.open()
    return store


def reopen(root: Path) -> Recovered:
    """What a restart on `root` would recover (the store is closed again)."""
    store = JsonStore(root)
    recovered = store.open()
    store.close()
    return recovered
