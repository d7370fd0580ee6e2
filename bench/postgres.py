"""The PostgreSQL side of the bench: the database (BENCH_DATABASE_URL, else the local server), a
fresh schema per server, commits counted by the database, PostgreSQL pinned to the clients' core
(as the bench pins its clients), and a JSON directory migrated into a schema.

Scenarios that seed a competition build it as JSON files (as before) and migrate it in with
`run.py migrate`'s own code, so both modes start from the same data.
"""
from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

DEFAULT_URL: Final = "postgresql://postgres@127.0.0.1:5432/postgres"


def database_url() -> str:
    return os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL)


def new_schema() -> str:
    return f"bench_{uuid.uuid4().hex[:12]}"


def _run(query: Callable[[Any], Any], url: str) -> Any:
    import asyncpg

    async def go() -> Any:
        conn = await asyncpg.connect(url, timeout=5)
        try:
            return await query(conn)
        finally:
            await conn.close()

    return asyncio.run(go())


def problem(url: str) -> str | None:
    """Why the bench cannot use the database, or None."""
    try:
        _run(lambda conn: conn.fetchval("SELECT 1"), url)
    except Exception as exc:  # whatever the driver says: the PostgreSQL scenarios are skipped with it
        return f"{type(exc).__name__}: {exc}"
    return None


def drop_schema(url: str, schema: str) -> None:
    _run(lambda conn: conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'), url)


def commits(url: str) -> int:
    """Transactions committed in the database so far (the server's statistics, flushed about once
    a second: good over a scenario's seconds, not over one command)."""
    return int(_run(lambda conn: conn.fetchval(
        "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()"), url))


def migrate_in(directory: Path, url: str, schema: str) -> dict[str, Any]:
    """A JSON storage directory into a new schema, as `run.py migrate` does it; its figures."""
    from persistence.migration.directory import DirectorySide
    from persistence.migration.schema import SchemaSide

    return _migrate(DirectorySide(directory), SchemaSide(url, schema))


def migrate_out(url: str, schema: str, directory: Path) -> dict[str, Any]:
    from persistence.migration.directory import DirectorySide
    from persistence.migration.schema import SchemaSide

    return _migrate(SchemaSide(url, schema), DirectorySide(directory))


def _migrate(source: Any, target: Any) -> dict[str, Any]:
    from actors.recovery.migrate import migrate

    result = asyncio.run(migrate(source, target))
    return {"events": result.events, "boxes": result.boxes, "mb": round(result.line_bytes / 1e6, 1),
            "seconds": {part: round(s, 2) for part, s in result.seconds.items()}}


def pin_postgres(url: str, cores: frozenset[int] | None) -> Callable[[], None]:
    """The postmaster and its backends onto `cores` (new backends inherit it); returns the undo.
    Only where the database runs on this machine and this process may (root, or its owner)."""
    if not cores:
        return lambda: None
    try:
        data = _run(lambda conn: conn.fetchval("SHOW data_directory"), url)
        postmaster = int(Path(data, "postmaster.pid").read_text().split()[0])
        pids = [postmaster, *_children(postmaster)]
        before = {pid: os.sched_getaffinity(pid) for pid in pids}
        for pid in pids:
            os.sched_setaffinity(pid, cores)
    except (OSError, ValueError, IndexError):
        return lambda: None

    def undo() -> None:
        for pid in [postmaster, *_children(postmaster)]:
            try:
                os.sched_setaffinity(pid, before.get(pid, before[postmaster]))  # a new backend: the postmaster's
            except OSError:
                continue

    return undo


def _children(pid: int) -> list[int]:
    try:
        return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []
