"""Every contract test runs once per backend in BACKENDS (backends.py)."""
from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from persistence.storage import Storage
from tests.persistence.contract.backends import BACKENDS, Backend


@pytest.fixture(params=sorted(BACKENDS))
def new_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], Backend]:
    """Makes a fresh competition of the backend under test; call it again for another one."""
    made = 0

    def make() -> Backend:
        nonlocal made
        made += 1
        folder = tmp_path / f"competition-{made}"
        folder.mkdir()
        return BACKENDS[request.param](folder, request)

    return make


@pytest.fixture
def backend(new_backend: Callable[[], Backend]) -> Backend:
    return new_backend()


@pytest.fixture
async def storage(backend: Backend) -> AsyncIterator[Storage]:
    """The competition's writer, opened; closed after the test."""
    opened = backend.storage()
    await opened.open(False)
    try:
        yield opened
    finally:
        await opened.close()
