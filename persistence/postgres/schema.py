"""The PostgreSQL schema of one competition, as numbered migrations applied at start.

Every competition lives in its own schema (DATABASE_SCHEMA); the connection's search_path points
at it, so the SQL here names no schema. `schema_version` records each step applied; `migrate`
applies the missing ones in one transaction, so a start either finds the schema whole or changes
nothing. Step texts never change once released: a change is a new step at the end.

The tables:
* `events`: every event line byte for byte (`line`), in commit order (`pos`, the audit's "newest
  first"), with the columns reads filter on. `era` counts resets: a reset starts a new era, the
  earlier events stay for the audit. Lines without a box seq (account changes) have NULL box/seq.
* `checkpoints`: one per box (the current era's); `state` is NULL for an Unrebuildable mark.
* `set_aside`: checkpoints no longer used (reset, or unusable), kept and never read back.
* `documents`: users, officials, revocations.
* `metadata`: the current era, the writer holding the lock, migrations of the competition
  (`run.py migrate` records them here), anything small of that kind.
"""
from __future__ import annotations

import re
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    import asyncpg

# A schema name is put into SQL (search_path, CREATE SCHEMA), so only plain lower-case identifiers.
SCHEMA_NAME_RE: Final = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")

# Keys in `metadata`.
ERA_KEY: Final = "era"  # the current era (an int); events of earlier eras are audit-only
WRITER_KEY: Final = "writer"  # {"host", "pid", "since", "backend_pid"} of the server holding the lock
MIGRATION_KEY_PREFIX: Final = "migration:"  # one row per `run.py migrate` into or out of this schema

# (version, description, SQL). Applied in order; never edit a released step.
MIGRATIONS: Final[tuple[tuple[int, str, str], ...]] = (
    (1, "events, checkpoints, set_aside, documents, metadata", """
CREATE TABLE events (
    pos       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,  -- commit order: the audit's newest first
    era       integer NOT NULL,
    box_id    bigint,            -- NULL: an audit-only line (no box, or no seq)
    seq       bigint,
    action    text,
    action_id text,
    time_ms   bigint,            -- nowMs, or createdAt in ms; NULL if the line has neither
    line      bytea NOT NULL     -- the exact log line, its newline included
);
CREATE UNIQUE INDEX events_era_box_seq ON events (era, box_id, seq) WHERE seq IS NOT NULL;
CREATE INDEX events_box_pos ON events (box_id, pos) WHERE box_id IS NOT NULL;

CREATE TABLE checkpoints (
    box_id      bigint PRIMARY KEY,
    seq         bigint NOT NULL,   -- the last event of the box folded into state
    box_version bigint NOT NULL,
    state       json,              -- NULL: an Unrebuildable mark (reason below)
    unrebuildable_reason text,
    saved_at    timestamptz NOT NULL DEFAULT now(),
    CHECK ((state IS NULL) <> (unrebuildable_reason IS NULL))
);

CREATE TABLE set_aside (
    id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    era      integer NOT NULL,
    box_id   bigint NOT NULL,
    seq      bigint NOT NULL,
    reason   text NOT NULL,        -- "reset", or why opening could not use it
    content  bytea NOT NULL,       -- the checkpoint as a backup's boxes/{id}.json would hold it
    set_aside_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE documents (
    name       text PRIMARY KEY,   -- users, officials, revocations
    value      json NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE metadata (
    key        text PRIMARY KEY,
    value      jsonb NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO metadata (key, value) VALUES ('era', '1');
"""),
)

LATEST_VERSION: Final = MIGRATIONS[-1][0]

_VERSION_TABLE: Final = """
CREATE TABLE IF NOT EXISTS schema_version (
    version     integer PRIMARY KEY,
    description text NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now()
)"""


class SchemaTooNew(Exception):
    """The schema was upgraded by a newer Belay: this one must not write into it."""


def check_schema_name(name: str) -> str:
    if not SCHEMA_NAME_RE.match(name):
        raise ValueError(f"DATABASE_SCHEMA {name!r} must be a lower-case identifier (a-z, 0-9, _; at most 63)")
    return name


async def migrate(conn: asyncpg.Connection, schema: str) -> tuple[int, list[int]]:
    """Create or upgrade `schema` to LATEST_VERSION in one transaction; returns (version now,
    steps applied). Two processes starting at once queue on a transaction lock, and the second
    finds nothing to do."""
    check_schema_name(schema)
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext('belay-migrate:' || $1))", schema)
        await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        await conn.execute(f'SET LOCAL search_path TO "{schema}"')
        await conn.execute(_VERSION_TABLE)
        current = await conn.fetchval("SELECT coalesce(max(version), 0) FROM schema_version")
        if current > LATEST_VERSION:
            raise SchemaTooNew(f"schema {schema!r} is at version {current}, newer than this Belay knows "
                               f"({LATEST_VERSION}): upgrade Belay")
        applied = []
        for version, description, sql in MIGRATIONS:
            if version <= current:
                continue
            await conn.execute(sql)
            await conn.execute("INSERT INTO schema_version (version, description) VALUES ($1, $2)",
                               version, description)
            applied.append(version)
        return max(current, LATEST_VERSION), applied


async def schema_version(conn: asyncpg.Connection, schema: str) -> int | None:
    """The version of `schema`, or None if it has no Belay tables (read-only)."""
    exists = await conn.fetchval("SELECT to_regclass(format('%I.schema_version', $1::text)) IS NOT NULL", schema)
    if not exists:
        return None
    value = await conn.fetchval(f'SELECT max(version) FROM "{check_schema_name(schema)}".schema_version')
    return int(value) if value is not None else None
