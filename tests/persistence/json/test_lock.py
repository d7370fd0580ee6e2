"""One process owns a storage directory; a crash never blocks the restart."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from persistence.errors import StorageLocked
from persistence.json.store import JsonStore
from tests.persistence.json.helpers import open_store

REPO = Path(__file__).resolve().parents[3]


def python(code: str, *args: str, **kwargs) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,
    )


def test_a_second_store_in_the_same_process_is_refused(root: Path) -> None:
    first = open_store(root)
    try:
        with pytest.raises(StorageLocked) as refused:
            JsonStore(root).open()
        assert str(root) in str(refused.value)
        assert f"pid {os.getpid()}" in str(refused.value)
    finally:
        first.close()


def test_the_lock_is_free_again_after_close(root: Path) -> None:
    open_store(root).close()
    open_store(root).close()


def test_a_refused_open_leaves_the_owner_working(root: Path) -> None:
    first = open_store(root)
    with pytest.raises(StorageLocked):
        JsonStore(root).open()
    first.append([b'{"boxId":0,"seq":1}\n'])
    assert (root / "events.ndjson").read_bytes() == b'{"boxId":0,"seq":1}\n'
    first.close()


def test_another_process_is_refused_while_we_hold_the_directory(root: Path) -> None:
    store = open_store(root)
    try:
        child = python(
            """
            import sys
            from pathlib import Path
            from persistence.errors import StorageLocked
            from persistence.json.store import JsonStore
            try:
                JsonStore(Path(sys.argv[1])).open()
            except StorageLocked as exc:
                print("locked:", exc)
                sys.exit(3)
            """,
            str(root),
        )
        out, err = child.communicate(timeout=30)
    finally:
        store.close()
    assert child.returncode == 3, err
    assert f"pid {os.getpid()}" in out


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")
def test_a_killed_owner_does_not_block_the_restart(root: Path) -> None:
    child = python(
        """
        import sys, time
        from pathlib import Path
        from persistence.json.store import JsonStore
        JsonStore(Path(sys.argv[1])).open()
        print("ready", flush=True)
        time.sleep(60)
        """,
        str(root),
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "ready"
        with pytest.raises(StorageLocked) as refused:
            JsonStore(root).open()
        assert f"pid {child.pid}" in str(refused.value)
    finally:
        child.send_signal(signal.SIGKILL)
        child.communicate(timeout=30)

    open_store(root).close()  # the kernel released the lock with the process
