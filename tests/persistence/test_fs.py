"""The fault-injecting file system that the other storage tests rely on."""
from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from persistence.fs import FaultyFileSystem, FileSystem, write_atomic


def test_a_fault_fires_after_skip_matches_for_times_calls(tmp_path: Path) -> None:
    fs = FaultyFileSystem()
    fd = fs.open(tmp_path / "a", os.O_WRONLY | os.O_CREAT)
    fs.inject("fsync", errno.EIO, skip=1, times=2)

    fs.fsync(fd)
    for _ in range(2):
        with pytest.raises(OSError) as failed:
            fs.fsync(fd)
        assert failed.value.errno == errno.EIO
    fs.fsync(fd)
    fs.close(fd)


def test_a_fault_can_target_one_path(tmp_path: Path) -> None:
    fs = FaultyFileSystem()
    fs.inject("open", errno.EMFILE, path_contains="b.json")

    fs.close(fs.open(tmp_path / "a.json", os.O_WRONLY | os.O_CREAT))
    with pytest.raises(OSError):
        fs.open(tmp_path / "b.json", os.O_WRONLY | os.O_CREAT)
    assert [op for op, _ in fs.calls] == ["open", "close", "open"]


def test_a_torn_write_leaves_the_prefix_on_disk(tmp_path: Path) -> None:
    fs = FaultyFileSystem()
    fd = fs.open(tmp_path / "log", os.O_WRONLY | os.O_CREAT)
    fs.inject("write_all", errno.ENOSPC, partial=4)

    with pytest.raises(OSError) as failed:
        fs.write_all(fd, b"0123456789")
    fs.close(fd)

    assert failed.value.errno == errno.ENOSPC
    assert (tmp_path / "log").read_bytes() == b"0123"


def test_pread_reads_exactly_what_exists(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"hello world")
    fs = FileSystem()
    fd = fs.open(tmp_path / "f", os.O_RDONLY)
    try:
        assert fs.pread(fd, 5, 6) == b"world"
        assert fs.pread(fd, 100, 6) == b"world"
        assert fs.pread(fd, 5, 100) == b""
    finally:
        fs.close(fd)


@pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX")
def test_write_atomic_never_reuses_a_leftover_temp_file_and_its_looser_mode(tmp_path: Path) -> None:
    leftover = tmp_path / "users.json.tmp"
    leftover.write_bytes(b"half of an older write")
    os.chmod(leftover, 0o666)
    write_atomic(FileSystem(), tmp_path / "users.json", b"{}", mode=0o600)
    assert (tmp_path / "users.json").read_bytes() == b"{}"
    assert os.stat(tmp_path / "users.json").st_mode & 0o777 == 0o600
    assert not leftover.exists()
