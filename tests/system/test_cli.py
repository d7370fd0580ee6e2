"""run.py's command line: help, bad flags, the storage lock, and a clean start."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT
from transport.cli.main import COMMANDS
from transport.config import OPTIONS


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(ROOT / "run.py"), *args], check=False, cwd=ROOT, capture_output=True,
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


def test_a_taken_port_fails_before_anything_is_created_or_printed(tmp_path: Path) -> None:
    """The first start creates `admin` and prints its one-time password: never in a run that cannot listen."""
    env = {k: v for k, v in os.environ.items() if k != "DEFAULT_ADMIN_PASSWORD"}
    env.update(BACKUP_DIR=str(tmp_path / "backups"), BACKUP_INTERVAL_MIN="0")
    with socket.socket() as holder:  # another program on the port
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        result = run("--host", "127.0.0.1", "--port", str(port), "--storage-dir", str(tmp_path / "data"), env=env)
    assert result.returncode == 2, result.stderr
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr and "--port" in result.stderr
    assert "password" not in result.stderr + result.stdout
    assert "listening on" not in result.stdout
    assert not (tmp_path / "data").exists(), "nothing may be created by a start that cannot listen"
    assert "Traceback" not in result.stderr


def test_a_free_port_given_by_number_is_served_and_announced_once(spawn_server, tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = spawn_server(tmp_path / "data", "--port", str(port))
    assert server.url == f"http://127.0.0.1:{port}"
    assert server.terminate() == 0
    assert server.proc.stdout is not None
    assert b"listening on" not in server.proc.stdout.read()


@pytest.mark.parametrize("word", ["bogus", "serve", "bakup"])
def test_an_unknown_command_lists_the_organiser_commands(word: str, tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, str(ROOT / "run.py"), word], check=False, cwd=tmp_path,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert f"unknown command {word!r}" in result.stderr and "Traceback" not in result.stderr
    for command in COMMANDS:
        assert f"  {command} " in result.stderr, command
    assert "--help" in result.stderr
    assert list(tmp_path.iterdir()) == [], "an unknown command must not start a server"
    if word == "bakup":
        assert "did you mean 'backup'?" in result.stderr
