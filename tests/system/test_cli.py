"""run.py's command line: help, bad flags, the storage lock, and a clean start."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT
from transport.config import OPTIONS


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(ROOT / "run.py"), *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=60, env=env)


def test_help_documents_every_flag_and_environment_variable() -> None:
    result = run("--help")
    assert result.returncode == 0
    for flag, env, _name, _help in OPTIONS:
        assert flag in result.stdout and env in result.stdout


@pytest.mark.parametrize("args", [("--port", "abc"), ("--port", "70000"), ("--storage-mode", "mongo"),
                                  ("--log-level", "LOUD"), ("--reset-boxes-on-start", "maybe")])
def test_bad_flags_exit_with_a_message(args: tuple[str, str]) -> None:
    result = run(*args)
    assert result.returncode == 2
    assert "run.py:" in result.stderr and "Traceback" not in result.stderr


def test_a_second_server_on_the_same_directory_is_refused(spawn_server, tmp_path: Path) -> None:
    spawn_server(tmp_path / "data")
    result = run("--host", "127.0.0.1", "--port", "0", "--storage-dir", str(tmp_path / "data"))
    assert result.returncode == 2
    assert "in use by another Belay process" in result.stderr
    assert "Traceback" not in result.stderr


def test_production_mode_refuses_the_default_admin_password(tmp_path: Path) -> None:
    env = {**os.environ, "ENV": "production", "DEFAULT_ADMIN_PASSWORD": "admin"}
    result = run("--host", "127.0.0.1", "--port", "0", "--storage-dir", str(tmp_path / "data"), env=env)
    assert result.returncode == 2
    assert "DEFAULT_ADMIN_PASSWORD is weak" in result.stderr and "Traceback" not in result.stderr
