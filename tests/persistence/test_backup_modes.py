"""Backups hold users.json (password hashes): they are readable by the server's account only,
from their first byte, whatever the umask; so is a users.json unpacked from one."""
from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from persistence.backup import backup_name, build_zip, extract, read_zip
from persistence.json.store import JsonStore
from persistence.types import DurablePoint
from tests.conftest import ROOT

pytestmark = pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX")


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def open_umask() -> Iterator[None]:
    """The usual umask (files 0644, folders 0755), so a missing restriction shows."""
    old = os.umask(0o022)
    yield
    os.umask(old)


def frozen_store(root: Path) -> tuple[JsonStore, DurablePoint]:
    store = JsonStore(root)
    store.open()
    (root / "users.json").write_bytes(b'{"admin": {"password_hash": "scrypt$secret"}}\n')
    frozen = store.freeze()  # the JSON backend's frozen point is laid out already
    return store, DurablePoint(frozen.folder, frozen.entries)


def test_a_backup_zip_is_private_from_its_first_byte(tmp_path: Path, open_umask: None) -> None:
    store, point = frozen_store(tmp_path / "data")
    dest = tmp_path / "backups"
    seen: list[int] = []

    def progress(done: int, total: int) -> None:  # called while the .part file is being written
        seen.extend(mode(part) for part in dest.glob("*.zip.part"))

    try:
        path = build_zip(point, dest, datetime.now(UTC), progress)
    finally:
        store.close()
    assert seen and set(seen) == {0o600}, [oct(m) for m in seen]
    assert mode(path) == 0o600
    assert mode(dest) == 0o700, "a backup folder Belay creates is the server account's only"
    assert "users.json" in read_zip(path).files


def test_an_existing_backup_folder_keeps_its_mode(tmp_path: Path, open_umask: None) -> None:
    dest = tmp_path / "shared-backups"
    dest.mkdir(mode=0o755)
    store, point = frozen_store(tmp_path / "data")
    try:
        path = build_zip(point, dest, datetime.now(UTC))
    finally:
        store.close()
    assert mode(dest) == 0o755 and mode(path) == 0o600


def test_a_leftover_part_file_does_not_lend_its_mode(tmp_path: Path, open_umask: None) -> None:
    store, point = frozen_store(tmp_path / "data")
    dest = tmp_path / "backups"
    dest.mkdir()
    now = datetime.now(UTC)
    leftover = dest / (backup_name(now) + ".part")
    leftover.write_bytes(b"old")
    leftover.chmod(0o644)
    try:
        path = build_zip(point, dest, now)
    finally:
        store.close()
    assert mode(path) == 0o600


def test_users_json_unpacked_from_a_backup_is_private(tmp_path: Path, open_umask: None) -> None:
    store, point = frozen_store(tmp_path / "data")
    try:
        path = build_zip(point, tmp_path / "backups", datetime.now(UTC))
    finally:
        store.close()
    target = tmp_path / "unpacked"
    target.mkdir()
    extract(read_zip(path), target)
    assert mode(target / "users.json") == 0o600


def test_run_py_backup_writes_a_private_zip(tmp_path: Path) -> None:
    store, _point = frozen_store(tmp_path / "data")
    store.close()
    result = subprocess.run([sys.executable, str(ROOT / "run.py"), "backup", "--storage-dir", str(tmp_path / "data"),
                             "--backup-dir", str(tmp_path / "bk")], check=False, cwd=ROOT, capture_output=True,
                            text=True, timeout=60, umask=0o022)
    assert result.returncode == 0, result.stderr
    (made,) = (tmp_path / "bk").glob("belay-backup-*.zip")
    assert mode(made) == 0o600 and mode(tmp_path / "bk") == 0o700
