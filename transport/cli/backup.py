"""`python run.py backup` and `python run.py restore BACKUP.zip`: offline backups of a storage directory."""
from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import uuid
from datetime import datetime, timezone
from pathlib import Path

from actors.jobs.backups import STAGING_DIR
from actors.recovery.restore import BackupBox, NotRebuildable, open_store, rebuild_backup, restore_boxes
from persistence.backup import BackupContents, BackupInvalid, build_zip, extract, read_zip, remove_staging
from persistence.errors import StorageError, StorageLocked
from persistence.json.store import JsonStore
from transport.cli.common import OK, USAGE, CliError, Progress, human_size, locked_error, storage_dir


def run_backup(args: argparse.Namespace) -> int:
    root = storage_dir(args)
    backup_dir: Path = args.resolved_backup_dir
    store = JsonStore(root)
    try:
        recovered = open_store(store)
    except StorageLocked:
        raise locked_error(root, "an offline backup needs it stopped; while it runs, take the backup through it "
                                 "instead: the control panel, or POST /api/admin/ops/backup/now") from None
    progress = Progress("backup")
    try:
        for lost in restore_boxes(recovered).unavailable:
            print(f"warning: box {lost.box_id} cannot be rebuilt ({lost.reason}); the backup holds the files as "
                  f"they are, and restoring it is refused until the box is brought back (see the README)")
        point = store.freeze(root / STAGING_DIR / uuid.uuid4().hex)
        try:
            path = build_zip(point, backup_dir, datetime.now(timezone.utc), progress)
        finally:
            progress.finish()
            remove_staging(point)
            try:
                (root / STAGING_DIR).rmdir()  # only if no other backup's links are in it
            except OSError:
                pass
    finally:
        store.close()
    print(f"backup written: {path} ({human_size(path.stat().st_size)})")
    return OK


def run_restore(args: argparse.Namespace) -> int:
    source = Path(args.zip)
    target = storage_dir(args, must_exist=False)
    if not source.is_file():
        raise CliError(f"there is no backup file at {source}", USAGE)
    _require_empty(target)
    try:
        contents = read_zip(source)
    except BackupInvalid as exc:
        raise CliError(f"{source} is not a usable backup: {exc}. Nothing was changed.") from None
    # Unpack beside the target and start a store on it there; only a copy that works is moved in.
    parent = target.resolve().parent
    parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{target.name}.restoring-", dir=parent))
    umask = os.umask(0)
    os.umask(umask)
    scratch.chmod(0o777 & ~umask)  # as a plain mkdir would make it, not mkdtemp's 0700
    try:
        _unpack(contents, scratch)
        boxes = _prove_it_starts(scratch, contents.manifest.get("createdAt"))
        _require_empty(target)  # still: nobody filled it meanwhile
        _move_into_place(scratch, target)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    created = contents.manifest.get("createdAt", "an unknown time")
    print(f"restored {source} (taken {created}) into {target}: {len(boxes)} box(es), "
          f"{len(contents.files)} file(s); start the server with --storage-dir {target}")
    return OK


def _require_empty(target: Path) -> None:
    if target.exists() and not target.is_dir():
        raise CliError(f"{target} exists and is not a directory; nothing was changed", USAGE)
    if target.is_dir() and any(target.iterdir()):
        raise CliError(f"{target} is not empty; restore only into a new or empty directory "
                       f"(nothing was changed)", USAGE)


def _unpack(contents: BackupContents, scratch: Path) -> None:
    progress = Progress("restore")
    total = sum(len(data) for data in contents.files.values())
    done = 0
    try:
        for name, data in contents.files.items():
            extract(BackupContents(contents.manifest, {name: data}), scratch)
            if name == "users.json":
                (scratch / name).chmod(0o600)  # password hashes: as the server writes it
            done += len(data)
            progress(done, total)
    finally:
        progress.finish()


def _prove_it_starts(scratch: Path, created_at: object) -> list[BackupBox]:
    """The same check as a restore through the server (POST /api/admin/restore): every box is
    rebuilt exactly and restorable, or nothing is restored."""
    try:
        return rebuild_backup(scratch, created_at)
    except StorageError as exc:
        raise CliError(f"the backup unpacks but cannot be opened: {exc}. Nothing was changed.") from None
    except NotRebuildable as exc:
        raise CliError(f"this backup cannot be restored: {exc}. Nothing was changed.") from None


def _move_into_place(scratch: Path, target: Path) -> None:
    if not target.exists():
        os.replace(scratch, target)
        return
    for entry in sorted(scratch.iterdir()):
        os.replace(entry, target / entry.name)
    fd = os.open(target, os.O_RDONLY) if os.name != "nt" else None
    if fd is not None:
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
