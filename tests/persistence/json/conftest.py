from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from persistence.fs import FaultyFileSystem
from persistence.json.store import JsonStore


@pytest.fixture
def fs() -> FaultyFileSystem:
    return FaultyFileSystem()


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def store(root: Path, fs: FaultyFileSystem) -> Iterator[JsonStore]:
    """An open store on a fresh directory, with fault injection available through `fs`."""
    s = JsonStore(root, fs=fs)
    s.open()
    yield s
    s.close()
