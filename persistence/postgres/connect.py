"""Connections to PostgreSQL: the DSN shown without its password, the settings a writer checks,
the advisory lock that makes one writer per schema, and which driver errors mean "unavailable"."""
from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg
import orjson

from persistence.errors import StorageError
from persistence.postgres.schema import WRITER_KEY, check_schema_name
from persistence.types import Holder

CONNECT_TIMEOUT_S: Final = 5.0
# The advisory lock's first key: Belay's own number (the second is the schema's hash), so another
# application's advisory locks on the same database cannot collide with it.
LOCK_CLASS: Final = 0x42E1A7
# What the writer reads at open and health shows; fsync off refuses the start.
SETTINGS: Final = ("fsync", "synchronous_commit", "full_page_writes")

# A connection that failed, was cut or timed out: the database is unavailable, not wrong.
UNAVAILABLE: Final = (OSError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError, asyncpg.CannotConnectNowError,
                      asyncpg.AdminShutdownError, asyncpg.CrashShutdownError, TimeoutError, ConnectionError)


def redact(dsn: str) -> str:
    """The DSN for logs and health: a password, in the user part or the query, shown as ***."""
    parts = urlsplit(dsn)
    if parts.password is not None:
        user = (parts.username or "") + ":***"
        parts = parts._replace(netloc=f"{user}@{parts.netloc.rsplit('@', 1)[1]}")
    if "password" in parts.query.lower():
        query = [(key, "***" if key.lower() == "password" else value) for key, value in parse_qsl(parts.query)]
        parts = parts._replace(query=urlencode(query, safe="*"))
    return urlunsplit(parts)


@dataclass(frozen=True)
class Target:
    """A competition's place: the database and the schema in it."""

    dsn: str
    schema: str

    def __post_init__(self) -> None:
        check_schema_name(self.schema)

    @property
    def location(self) -> str:
        return f"{redact(self.dsn)} schema {self.schema}"

    async def connect(self, *, writer: bool = False) -> asyncpg.Connection:
        """A connection whose search_path is the schema; a writer's commits wait for the disk."""
        settings = {"search_path": f'"{self.schema}"', "application_name": "belay-writer" if writer else "belay"}
        if writer:
            settings["synchronous_commit"] = "on"  # "ok" means committed, whatever the server's default
        try:
            return await asyncpg.connect(self.dsn, timeout=CONNECT_TIMEOUT_S, server_settings=settings)
        except UNAVAILABLE as exc:
            raise StorageError(f"cannot connect to {redact(self.dsn)}: {describe_error(exc)}") from exc
        except asyncpg.PostgresError as exc:  # a wrong database name, password, ...
            raise StorageError(f"cannot connect to {redact(self.dsn)}: {describe_error(exc)}") from exc


def describe_error(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


async def read_settings(conn: asyncpg.Connection) -> dict[str, str]:
    rows = await conn.fetch("SELECT name, setting FROM pg_settings WHERE name = any($1::text[])", list(SETTINGS))
    settings = {row["name"]: row["setting"] for row in rows}
    settings["server_version"] = str(await conn.fetchval("SHOW server_version"))
    return settings


def check_durable(settings: dict[str, str], location: str) -> None:
    if settings.get("fsync") != "on":
        raise StorageError(f"{location}: the server runs with fsync={settings.get('fsync')}: a commit would not "
                           f"survive a power cut, so Belay refuses to write there")


async def try_lock(conn: asyncpg.Connection, schema: str) -> bool:
    """The schema's one-writer lock, held by this connection's session until it ends."""
    return bool(await conn.fetchval("SELECT pg_try_advisory_lock($1, hashtext($2))", LOCK_CLASS, schema))


async def record_writer(conn: asyncpg.Connection) -> None:
    """Who holds the lock, for a second server's refusal and `run.py check`."""
    me = {"host": socket.gethostname(), "pid": str(os.getpid()), "since": datetime.now(UTC).isoformat(),
          "backend_pid": conn.get_server_pid()}
    await conn.execute("INSERT INTO metadata (key, value) VALUES ($1, $2::jsonb) ON CONFLICT (key) DO UPDATE "
                       "SET value = excluded.value, updated_at = now()", WRITER_KEY, orjson.dumps(me).decode())


async def lock_holder(conn: asyncpg.Connection, schema: str) -> Holder | None:
    """The writer holding the schema's lock now, or None. The lock says whether one does (a crashed
    writer's session is gone, and its lock with it); the metadata row says who."""
    held = await lock_holder_pid(conn, schema)
    if held is None:
        return None
    raw = await _writer_row(conn, schema)
    if not isinstance(raw, dict) or raw.get("backend_pid") != held:
        return Holder("unknown", None, None)
    return Holder(str(raw.get("pid") or "unknown"), raw.get("host"), raw.get("since"))


async def lock_holder_pid(conn: asyncpg.Connection, schema: str) -> int | None:
    """The backend pid of the session holding the schema's lock, or None."""
    pid: int | None = await conn.fetchval(
        "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND classid = $1::bigint::oid "
        "AND objid = (hashtext($2)::bigint & 4294967295)::oid AND objsubid = 2 "
        "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())", LOCK_CLASS, schema)
    return pid


async def _writer_row(conn: asyncpg.Connection, schema: str) -> Any:
    exists = await conn.fetchval("SELECT to_regclass(format('%I.metadata', $1::text)) IS NOT NULL", schema)
    if not exists:
        return None
    raw = await conn.fetchval(f'SELECT value FROM "{schema}".metadata WHERE key = $1', WRITER_KEY)
    return orjson.loads(raw) if raw is not None else None
