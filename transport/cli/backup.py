"""`python run.py backup` and `python run.py restore BACKUP.zip`: offline backups of a storage."""
from __future__ import annotations

import argparse
import asyncio
from datetime import UTC, datetime
from pathlib import Path

from actors.recovery.restore import BackupBox, NotRebuildable, rebuild_backup, restore_boxes
from persistence.backup import BackupContents, BackupInvalid, build_zip, read_zip
from persistence.errors import StorageError, StorageNotEmpty
from persistence.factory import storage_for
from persistence.storage import Storage
from transport.cli.common import (
    OK,
    USAGE,
    CliError,
    Progress,
    existing_storage,
    human_size,
    opened,
    storage_settings,
)


def run_backup(args: argparse.Namespace) -> int:
    path = asyncio.run(_backup(args))
    print(f"backup written: {path} ({human_size(path.stat().st_size)})")
    return OK


async def _backup(args: argparse.Namespace) -> Path:
    storage, _ = await existing_storage(args)
    backup_dir: Path = args.resolved_backup_dir
    async with opened(storage, "an offline backup needs it stopped; while it runs, take the backup through it "
                               "instead: the control panel, or POST /api/admin/ops/backup/now") as recovered:
        for lost in restore_boxes(recovered).unavailable:
            print(f"warning: box {lost.box_id} cannot be rebuilt ({lost.reason}); the backup holds the files as "
                  f"they are, and restoring it is refused until the box is brought back (see the README)")
        frozen = await storage.freeze()
        progress = Progress("backup")
        try:
            point = await storage.lay_out(frozen)
            return await asyncio.to_thread(build_zip, point, backup_dir, datetime.now(UTC), progress)
        finally:
            progress.finish()
            await storage.release(frozen)


def run_restore(args: argparse.Namespace) -> int:
    source = Path(args.zip)
    if not source.is_file():
        raise CliError(f"there is no backup file at {source}", USAGE)
    target = storage_for(storage_settings(args))
    contents, boxes = asyncio.run(_restore(source, target))
    created = contents.manifest.get("createdAt", "an unknown time")
    print(f"restored {source} (taken {created}) into {target.location}: {len(boxes)} box(es), "
          f"{len(contents.files)} file(s); start the server with --storage-dir {target.location}")
    return OK


async def _restore(source: Path, target: Storage) -> tuple[BackupContents, list[BackupBox]]:
    try:
        await target.check_empty()  # before reading a zip of perhaps a gigabyte
        contents = await asyncio.to_thread(read_zip, source)
    except StorageNotEmpty as exc:
        raise CliError(str(exc), USAGE) from None
    except BackupInvalid as exc:
        raise CliError(f"{source} is not a usable backup: {exc}. Nothing was changed.") from None
    boxes: list[BackupBox] = []

    async def prove_it_starts(staged: Storage) -> None:
        """The same check as a restore through the server (POST /api/admin/restore): every box is
        rebuilt exactly and restorable, or nothing is restored."""
        try:
            boxes.extend(await rebuild_backup(staged, contents.manifest.get("createdAt")))
        except NotRebuildable as exc:
            raise CliError(f"this backup cannot be restored: {exc}. Nothing was changed.") from None
        except StorageError as exc:
            raise CliError(f"the backup unpacks but cannot be opened: {exc}. Nothing was changed.") from None

    progress = Progress("restore")
    try:
        await target.adopt_backup(contents, prove_it_starts, progress)
    except StorageNotEmpty as exc:  # filled meanwhile
        raise CliError(str(exc), USAGE) from None
    finally:
        progress.finish()
    return contents, boxes
