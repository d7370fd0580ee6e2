"""What the contract tests share: a restart, and reading a durable point back as a backup zip."""
from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from persistence.backup import BackupContents, build_zip, read_zip
from persistence.storage import StateLoader, Storage
from persistence.types import Recovered
from tests.persistence.contract.backends import Backend


async def reopen(backend: Backend, *, reset_boxes: bool = False, load_state: StateLoader | None = None) -> Recovered:
    """What a restart would recover (the storage is closed again)."""
    storage = backend.storage()
    try:
        return await storage.open(reset_boxes, load_state)
    finally:
        await storage.close()


async def backup_of(storage: Storage, dest: Path) -> BackupContents:
    """A durable point of `storage` written as a backup zip and read back, verified."""
    frozen = await storage.freeze()
    try:
        return read_zip(build_zip(await storage.lay_out(frozen), dest, datetime.now(UTC)))
    finally:
        await storage.release(frozen)
