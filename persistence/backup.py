"""Backup zips: built from a storage's durable point, verified before anything is restored.

A backup holds the box checkpoints, the audit log (up to the durable point) and its archives,
users.json, competition_officials.json, revoked_sessions.json, the result sheets and a
manifest.json with each file's size and sha256, named as in persistence/layout.py. The JWT secret
is never included. Reading a zip checks every entry name, the unpacked size and every checksum
before anything is used, so a restore is all or nothing. The format is the same in every storage
mode, so a backup taken in one restores in another.
"""
from __future__ import annotations

import hashlib
import io
import os
import re
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from persistence.layout import BOX_ID_DIGITS, BOXES_DIR, DOCUMENT_FILES, LOG_NAME, RESULTS_DIR
from persistence.types import DurablePoint

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
PREFIX = "belay-backup-"
# What a backup may contain: nothing else is ever extracted.
_ENTRY = re.compile(rf"^({re.escape(LOG_NAME)}|events\.\d{{1,9}}\.ndjson"
                    rf"|{'|'.join(re.escape(name) for name in DOCUMENT_FILES.values())}"
                    rf"|{BOXES_DIR}/\d{{1,{BOX_ID_DIGITS}}}\.json"
                    rf"|{RESULTS_DIR}/[^/\\\x00-\x1f]{{1,200}}/(overall|route_\d{{1,3}})\.(xlsx|pdf))$")
# Backups hold users.json: like it, they are for the server's account only.
PRIVATE_FILE_MODE = 0o600
PRIVATE_DIR_MODE = 0o700
MAX_ENTRIES = 20_000
MAX_UNPACKED_BYTES = 1 << 30
_CHUNK = 1 << 20

Progress = Callable[[int, int], None]  # (bytes done, bytes total)


class BackupInvalid(ValueError):
    """The zip is not a Belay backup we can trust; the message says why."""


def belay_version() -> str:
    from importlib import metadata  # slow to import, and only a backup's manifest needs it

    try:
        return metadata.version("belay")
    except metadata.PackageNotFoundError:
        return "unknown"


def backup_name(now: datetime) -> str:
    return f"{PREFIX}{now.astimezone(UTC).strftime('%Y%m%dT%H%M%S%fZ')}.zip"


def build_zip(point: DurablePoint, dest_dir: Path, now: datetime, progress: Progress | None = None) -> Path:
    """Write the zip next to its final name, fsync it, then rename: a half-written backup never
    looks like a backup. Runs in any process: it only reads the point's files."""
    dest_dir.mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)  # an existing folder keeps its mode
    final = dest_dir / backup_name(now)
    partial = final.with_name(final.name + ".part")
    sizes = {rel: _source_size(point, rel, size) for rel, size in point.entries}
    total, done = sum(sizes.values()), 0
    entries: list[dict[str, Any]] = []
    with _create_private(partial) as raw:
        with zipfile.ZipFile(raw, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as archive:
            for rel, _ in point.entries:
                digest = hashlib.sha256()
                remaining = sizes[rel]
                with open(point.folder / rel, "rb") as source, archive.open(rel, "w", force_zip64=True) as target:
                    while remaining > 0:
                        chunk = source.read(min(_CHUNK, remaining))
                        if not chunk:
                            break
                        digest.update(chunk)
                        target.write(chunk)
                        remaining -= len(chunk)
                        done += len(chunk)
                        if progress is not None:
                            progress(done, total)
                entries.append({"path": rel, "size": sizes[rel], "sha256": digest.hexdigest()})
            manifest = {
                "format": "belay-backup",
                "storageFormatVersion": FORMAT_VERSION,
                "belayVersion": belay_version(),
                "createdAt": now.astimezone(UTC).isoformat(),
                "committedLogOffset": sizes.get(LOG_NAME, 0),
                "files": entries,
            }
            archive.writestr(MANIFEST, orjson.dumps(manifest, option=orjson.OPT_INDENT_2))
        raw.flush()
        os.fsync(raw.fileno())
    os.replace(partial, final)
    _fsync_dir(dest_dir)
    return final


def _create_private(path: Path) -> BinaryIO:
    """A new file readable by its owner only from the first byte (users.json's password hashes)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_BINARY", 0), PRIVATE_FILE_MODE)
    if hasattr(os, "fchmod"):
        os.fchmod(fd, PRIVATE_FILE_MODE)  # a leftover file of that name would keep its old mode
    return os.fdopen(fd, "wb")


def _source_size(point: DurablePoint, rel: str, part: int | None) -> int:
    size = (point.folder / rel).stat().st_size
    # A file that goes on growing (the JSON backend's live log) counts only up to the point.
    return size if part is None else min(size, part)


def backups(dest_dir: Path) -> list[Path]:
    """Finished backups, oldest first (the name carries the UTC time)."""
    if not dest_dir.is_dir():
        return []
    return sorted(p for p in dest_dir.iterdir() if p.name.startswith(PREFIX) and p.name.endswith(".zip"))


def prune(dest_dir: Path, keep: int) -> list[Path]:
    """Delete all but the newest `keep` backups (and stale .part files); returns what was removed."""
    removed = backups(dest_dir)[:-keep] if keep > 0 else []
    removed += list(dest_dir.glob(f"{PREFIX}*.zip.part")) if dest_dir.is_dir() else []
    for path in removed:
        path.unlink(missing_ok=True)
    return removed


@dataclass(frozen=True)
class BackupContents:
    manifest: dict[str, Any]
    files: dict[str, bytes]  # verified, by entry name


def read_zip(source: Path | bytes | BinaryIO, *, max_unpacked: int = MAX_UNPACKED_BYTES) -> BackupContents:
    """Open and verify a backup; raises BackupInvalid before anything is used."""
    stream = io.BytesIO(source) if isinstance(source, bytes) else source
    try:
        archive = zipfile.ZipFile(stream)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise BackupInvalid(f"not a zip file: {exc}") from None
    with archive:
        infos = archive.infolist()
        if len(infos) > MAX_ENTRIES:
            raise BackupInvalid(f"too many entries ({len(infos)})")
        names = [info.filename for info in infos]
        if len(set(names)) != len(names):
            raise BackupInvalid("duplicate entry names")
        for name in names:
            if name != MANIFEST and (not _ENTRY.match(name) or ".." in name.split("/")):
                raise BackupInvalid(f"unexpected entry {name!r}")
        if sum(info.file_size for info in infos) > max_unpacked:
            raise BackupInvalid("the backup is too large once unpacked")
        if MANIFEST not in names:
            raise BackupInvalid("manifest.json is missing")
        manifest = _parse_manifest(_read_entry(archive, MANIFEST, 1 << 24))
        listed = {entry["path"]: entry for entry in manifest["files"]}
        if set(listed) != set(names) - {MANIFEST}:
            raise BackupInvalid("the manifest does not list exactly the files in the zip")
        files: dict[str, bytes] = {}
        for name, entry in listed.items():
            data = _read_entry(archive, name, entry["size"])
            if len(data) != entry["size"] or hashlib.sha256(data).hexdigest() != entry["sha256"]:
                raise BackupInvalid(f"{name} does not match its checksum")
            files[name] = data
    return BackupContents(manifest, files)


def _read_entry(archive: zipfile.ZipFile, name: str, limit: int) -> bytes:
    """Never trusts the declared size: reads at most limit+1 bytes, so a lying header is caught."""
    try:
        with archive.open(name) as entry:
            return entry.read(limit + 1)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, RuntimeError) as exc:
        raise BackupInvalid(f"{name} cannot be read: {exc}") from None


def _parse_manifest(raw: bytes) -> dict[str, Any]:
    try:
        manifest = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise BackupInvalid("manifest.json is not JSON") from None
    if not isinstance(manifest, dict) or manifest.get("format") != "belay-backup":
        raise BackupInvalid("manifest.json is not a Belay backup manifest")
    if manifest.get("storageFormatVersion") != FORMAT_VERSION:
        raise BackupInvalid(f"unsupported storage format {manifest.get('storageFormatVersion')!r}")
    files = manifest.get("files")
    if not isinstance(files, list) or not all(
            isinstance(f, dict) and isinstance(f.get("path"), str) and isinstance(f.get("size"), int)
            and f["size"] >= 0 and isinstance(f.get("sha256"), str) for f in files):
        raise BackupInvalid("manifest.json has a bad file list")
    return manifest


def extract(contents: BackupContents, target: Path, progress: Progress | None = None) -> None:
    """Write verified files into an empty folder, laid out as in the zip (names were checked by read_zip)."""
    total, done = sum(len(data) for data in contents.files.values()), 0
    for name, data in contents.files.items():
        path = target / name
        path.parent.mkdir(parents=True, exist_ok=True)
        with (_create_private(path) if name == DOCUMENT_FILES["users"] else open(path, "wb")) as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        done += len(data)
        if progress is not None:
            progress(done, total)
    for folder in {target, target / BOXES_DIR}:
        if folder.is_dir():
            _fsync_dir(folder)


def _fsync_dir(path: Path) -> None:
    if os.name == "nt":
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
