"""How the command line reaches a running server: `run.py users disable|enable|remove` while the
server holds the storage directory's lock.

At start the server writes `server.json` in its storage directory (mode 0600): its pid, a URL on
the loopback and an admin token that only this process accepts (its session id lives in the
process's memory, never on disk; a restart or another process refuses it). The command line reads
the file, checks that its pid holds the lock, and calls the admin route on the loopback, with no
proxy. A clean stop removes the file; one left by a crash is overwritten at the next start.

Trust: whoever can read the storage directory can already read users.json and (unless JWT_SECRET
comes from the environment) jwt_secret, which signs any token; server.json adds nothing to that.
The token is never logged.
"""
from __future__ import annotations

import ipaddress
import logging
import secrets
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from actors.accounts.tokens import TokenService, write_private

log = logging.getLogger("belay")

SERVER_FILE = "server.json"
LOCAL_ADMIN_NAME = "run.py"  # who the audit log shows for changes made from the command line
LOCAL_ADMIN_TTL_S = 10 * 366 * 24 * 3600  # bounded by the process's life, not by a clock
CALL_TIMEOUT_S = 30.0


@dataclass(frozen=True, slots=True)
class LocalAdmin:
    sid: str  # the one session id a token without an account may carry
    token: str


@dataclass(frozen=True, slots=True)
class ServerFile:
    pid: int
    url: str
    token: str


class LocalCallFailed(Exception):
    """The running server could not be asked; the message says why, for the organiser."""


def new_local_admin(tokens: TokenService) -> LocalAdmin:
    sid = secrets.token_urlsafe(32)
    return LocalAdmin(sid, tokens.issue(LOCAL_ADMIN_NAME, "admin", [], sid=sid, ttl_s=LOCAL_ADMIN_TTL_S))


def loopback_url(host: str, port: int) -> str:
    """Where a process on this machine reaches a server listening on `host`."""
    if host in ("", "0.0.0.0"):
        return f"http://127.0.0.1:{port}"
    if host == "::":
        return f"http://[::1]:{port}"
    try:
        if ipaddress.ip_address(host).version == 6:
            return f"http://[{host}]:{port}"
    except ValueError:
        pass  # a host name
    return f"http://{host}:{port}"


def write_server_file(root: Path, pid: int, url: str, local: LocalAdmin) -> None:
    """Best effort: without the file the server runs as before, only the command line cannot reach it."""
    try:
        write_private(root / SERVER_FILE, orjson.dumps({"pid": pid, "url": url, "token": local.token}).decode())
    except OSError as exc:
        log.warning("could not write %s (run.py users disable/enable/remove will ask to stop the server): %s",
                    SERVER_FILE, exc.strerror or type(exc).__name__)


def remove_server_file(root: Path) -> None:
    try:
        (root / SERVER_FILE).unlink(missing_ok=True)
    except OSError:
        pass  # the next start overwrites it, and its token dies with this process anyway


def read_server_file(root: Path) -> ServerFile | None:
    try:
        raw = orjson.loads((root / SERVER_FILE).read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return None
    if not isinstance(raw, dict):
        return None
    pid, url, token = raw.get("pid"), raw.get("url"), raw.get("token")
    if not isinstance(pid, int) or isinstance(pid, bool) or not isinstance(url, str) or not isinstance(token, str):
        return None
    if not url.startswith("http://"):
        return None
    return ServerFile(pid, url, token)


def call(server: ServerFile, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """POST a JSON body as the local admin; (status, JSON reply). Raises LocalCallFailed."""
    request = urllib.request.Request(
        server.url + path, data=orjson.dumps(body), method="POST",
        headers={"Authorization": f"Bearer {server.token}", "Content-Type": "application/json"})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never through a proxy
    try:
        with opener.open(request, timeout=CALL_TIMEOUT_S) as response:
            return response.status, _json(response.read())
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, _json(exc.read())
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise LocalCallFailed(f"the server (pid {server.pid}) does not answer at {server.url}: {reason}") from None


def _json(raw: bytes) -> dict[str, Any]:
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return {"detail": raw[:200].decode("utf-8", "replace")}
    return value if isinstance(value, dict) else {"detail": str(value)[:200]}
