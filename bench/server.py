"""Belay in a subprocess: start on a fresh temp dir, learn its port, sample CPU and peak RSS, stop.

Also the per-process setup every bench process shares: a raised fd limit and CPU pinning.
"""
from __future__ import annotations

import json
import os
import resource
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import fsync_shim, postgres
from bench.credentials import SERVER_ENV, admin_headers, seed_admin

REPO = Path(__file__).resolve().parent.parent
# Where run.py lives; `--server-dir` points it at a stable export when the work tree is being edited.
SERVER_DIR = [REPO]
CLK_TCK = os.sysconf("SC_CLK_TCK")
# No proxies: every request of the harness goes to loopback and must not be routed anywhere else.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def raise_nofile() -> int:
    """Soft RLIMIT_NOFILE up to the hard limit (a subscriber process holds thousands of sockets)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
    if target > soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError):
            return soft
    return target


@dataclass(frozen=True, slots=True)
class Affinity:
    server: frozenset[int] | None
    clients: frozenset[int] | None

    @property
    def note(self) -> str:
        if self.server is None or self.clients is None:
            return "not pinned (fewer than 2 usable cores)"
        return f"server pinned to core {min(self.server)}, client processes pinned to core {min(self.clients)}"


def plan_affinity() -> Affinity:
    """Server on the first usable core, clients on the second, so they do not steal each other's CPU."""
    try:
        cores = sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return Affinity(None, None)
    if len(cores) < 2:
        return Affinity(None, None)
    return Affinity(frozenset({cores[0]}), frozenset({cores[1]}))


def filesystem_of(path: str) -> str:
    """The mount's filesystem type (fdatasync on tmpfs is free; on ext4 it reaches the disk)."""
    best, kind = "", "unknown"
    try:
        with open("/proc/mounts") as f:
            for line in f:
                parts = line.split()
                if len(parts) > 2 and path.startswith(parts[1]) and len(parts[1]) > len(best):
                    best, kind = parts[1], f"{parts[2]} ({parts[0]} on {parts[1]})"
    except OSError:
        pass
    return kind


def prepare_process(cores: frozenset[int] | None) -> None:
    """Run first in every bench process: the fd limit, then the pinning."""
    raise_nofile()
    if cores:
        try:
            os.sched_setaffinity(0, cores)
        except OSError:
            pass


def http_json(url: str, timeout: float = 10.0) -> tuple[int, Any]:
    """A blocking GET for the orchestrator (health polls, state checks); never on a measured path."""
    try:
        request = urllib.request.Request(url, headers=admin_headers())
        with _OPENER.open(request, timeout=timeout) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        body = exc.read()
        try:
            return exc.code, json.loads(body or b"null")
        except ValueError:
            return exc.code, body.decode(errors="replace")


class BelayServer:
    """One `python run.py` on 127.0.0.1 and a free port, in its own temp dir (or a given one)."""

    def __init__(self, affinity: Affinity, storage_dir: Path | None = None, *, bare: bool = False,
                 count_fsyncs: bool = False, wrapper: Sequence[str] = (), env: dict[str, str] | None = None,
                 edge_of: str | None = None, mode: str = "json", database_url: str = "",
                 schema: str | None = None) -> None:
        """`env`: more environment variables; `edge_of`: a Redis URL, to run `run.py edge` on it
        instead of the server (its environment then has no JWT_SECRET, which an edge refuses)."""
        self.affinity = affinity
        self.extra_env = env or {}
        self.edge_of = edge_of
        # STORAGE_MODE=postgres: a fresh schema of its own (dropped by cleanup), or the given one (kept).
        self.mode = mode
        self.database_url = database_url
        self._own_schema = mode == "postgres" and schema is None
        self.schema = schema or (postgres.new_schema() if mode == "postgres" else "")
        self._seeded = False
        self.drop_on_cleanup = False  # a given schema the scenario made for this server only
        self.bare = bare  # bench.ceilings instead of run.py
        self.count_fsyncs = count_fsyncs
        self.wrapper = list(wrapper)  # a command the server runs under (valgrind for bench.instructions)
        self._own_tmp = storage_dir is None
        self.root = Path(tempfile.mkdtemp(prefix="belay-bench-")) if storage_dir is None else storage_dir.parent
        self.storage_dir = self.root / "data" if storage_dir is None else storage_dir
        self.storage_dir.mkdir(parents=True, exist_ok=True)
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""
        self.listening_s = 0.0  # Popen -> "listening on" line
        self.ready_s = 0.0  # Popen -> first 200 from /api/health/ready

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self, timeout: float = 120.0) -> BelayServer:
        cores = self.affinity.server
        log = open(self.root / "server.log", "ab")  # noqa: SIM115 - handed to the child, closed after the fork
        t0 = time.monotonic()
        args = ["--host", "127.0.0.1", "--port", "0", "--storage-dir", str(self.storage_dir), "--log-level", "WARNING"]
        env = {**os.environ, **SERVER_ENV, **self.extra_env}
        if self.mode == "postgres":
            env.update(STORAGE_MODE="postgres", DATABASE_URL=self.database_url, DATABASE_SCHEMA=self.schema)
        # A venue PC runs with cached bytecode; a harness environment that forbids writing it would
        # make every start-up recompile the project and measure that instead.
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        # Backups on, as at a venue, but into this temp dir: run.py's default is its working directory.
        belay_args = [*args, "--backup-dir", str(self.root / "backups")]
        if not self.bare and self.edge_of is None:
            seed_admin(self.storage_dir)
        if self._own_schema and not self._seeded:  # the bench's admin goes into the database as users.json would
            (self.storage_dir / "boxes").mkdir(exist_ok=True)
            postgres.migrate_in(self.storage_dir, self.database_url, self.schema)
            self._seeded = True
        if self.edge_of is not None:
            env.pop("JWT_SECRET", None)
            argv, cwd = [sys.executable, "run.py", "edge", *args[:4], "--log-level", "WARNING",
                         "--redis-url", self.edge_of], SERVER_DIR[0]
        elif self.bare:
            argv, cwd = [sys.executable, "-m", "bench.ceilings", *args], REPO
        elif self.count_fsyncs:
            env["BENCH_FSYNC_COUNTER"] = str(self.root / "fsync-counter")
            argv, cwd = [sys.executable, str(REPO / "bench" / "fsync_shim.py"), "run.py", *belay_args], SERVER_DIR[0]
        else:
            argv, cwd = [sys.executable, "run.py", *belay_args], SERVER_DIR[0]
        self.proc = subprocess.Popen(self.wrapper + argv, cwd=cwd, stdout=subprocess.PIPE, stderr=log,
                                     stdin=subprocess.DEVNULL, preexec_fn=lambda: prepare_process(cores), env=env)  # noqa: PLW1509 - affinity before exec
        log.close()
        self.url = self._read_url(timeout)
        self.listening_s = time.monotonic() - t0
        self._wait_ready(t0, timeout)
        self.ready_s = time.monotonic() - t0
        return self

    def _read_url(self, timeout: float) -> str:
        assert self.proc is not None and self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        buffer = b""
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.proc.stdout], [], [], 0.2)
            if ready:
                chunk = os.read(self.proc.stdout.fileno(), 4096)
                if not chunk:
                    break
                buffer += chunk
                for line in buffer.decode(errors="replace").splitlines():
                    if line.startswith("listening on "):
                        return line.split("listening on ", 1)[1].strip()
            elif self.proc.poll() is not None:
                break
        self.stop()
        raise RuntimeError(f"Belay did not start: {self.log_tail()}")

    def _wait_ready(self, t0: float, timeout: float) -> None:
        while time.monotonic() - t0 < timeout:
            try:
                status, _ = http_json(self.url + ("/health" if self.edge_of else "/api/health/ready"), timeout=5)
                if status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.005)
        raise RuntimeError("Belay never answered 200 on /api/health/ready")

    def cpu_seconds(self) -> float:
        """utime+stime of the whole process (all threads) from /proc/<pid>/stat."""
        with open(f"/proc/{self.pid}/stat", "rb") as f:
            raw = f.read()
        fields = raw[raw.rindex(b")") + 2:].split()  # the command name may hold spaces
        return (int(fields[11]) + int(fields[12])) / CLK_TCK  # fields 14 and 15 of proc(5)

    def max_rss_mb(self) -> float:
        return self.memory_mb()["VmHWM"]

    def memory_mb(self) -> dict[str, float]:
        """VmHWM (peak resident) and VmRSS (now) in MB, from /proc/<pid>/status."""
        out = {"VmHWM": 0.0, "VmRSS": 0.0}
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                key = line.split(":", 1)[0]
                if key in out:
                    out[key] = round(int(line.split()[1]) / 1024.0, 1)
        return out

    def fsync_counts(self) -> tuple[int, int]:
        """(fdatasync, fsync) calls so far, when started with count_fsyncs."""
        data = self._fsync_record()
        return fsync_shim.HEADER.unpack_from(data)[:2] if data else (0, 0)

    def slow_fdatasyncs(self) -> list[tuple[float, float]]:
        """(start, seconds) of the last fsync_shim.SLOW_RING fdatasyncs that took fsync_shim.SLOW_S
        or more, oldest first, when started with count_fsyncs; start is on time.monotonic()."""
        data = self._fsync_record()
        if not data:
            return []
        slow = fsync_shim.HEADER.unpack_from(data)[2]
        kept = range(max(0, slow - fsync_shim.SLOW_RING), slow)
        return [fsync_shim.ENTRY.unpack_from(data, fsync_shim.HEADER.size + (i % fsync_shim.SLOW_RING)
                                             * fsync_shim.ENTRY.size) for i in kept]

    def _fsync_record(self) -> bytes:
        try:
            data = (self.root / "fsync-counter").read_bytes()
        except OSError:
            return b""
        return data if len(data) >= fsync_shim.SIZE else b""

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join((self.root / "server.log").read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM (Belay flushes and checkpoints every box), SIGKILL only if it hangs."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()
        finally:
            if self.proc.stdout:
                self.proc.stdout.close()

    def cleanup(self) -> None:
        self.stop()
        if self._own_tmp:
            shutil.rmtree(self.root, ignore_errors=True)
        if self._own_schema or self.drop_on_cleanup:
            postgres.drop_schema(self.database_url, self.schema)

    def __enter__(self) -> BelayServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.cleanup()


class CpuWindow:
    """Server CPU % over a measured window (utime+stime delta / wall delta)."""

    def __init__(self, server: BelayServer) -> None:
        self.server = server
        self.t0 = time.monotonic()
        self.cpu0 = server.cpu_seconds()

    def close(self) -> tuple[float, float]:
        """(wall seconds, server CPU % of one core)."""
        wall = time.monotonic() - self.t0
        cpu = self.server.cpu_seconds() - self.cpu0
        return wall, round(100.0 * cpu / wall, 1) if wall > 0 else 0.0
