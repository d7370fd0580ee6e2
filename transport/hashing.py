"""Password hashing off the event loop: slow on purpose, so it runs on its own threads."""
from __future__ import annotations

import asyncio
import secrets
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, TypeVar

from transport.passwords import hash_password

T = TypeVar("T")


class Hashing:
    def __init__(self, workers: int = 2) -> None:
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="belay-hash")
        self._dummy_hash = ""

    async def dummy_hash(self) -> str:
        """Unknown users are checked against this, so a login fails in the same time either way.
        Made on first use: start-up stays fast."""
        if not self._dummy_hash:
            self._dummy_hash = await self.run(hash_password, secrets.token_urlsafe(16))
        return self._dummy_hash

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    def close(self) -> None:
        self._pool.shutdown(wait=True)
