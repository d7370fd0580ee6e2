"""A storage laid out as files (a backup's contents, a JSON storage directory) loaded into an empty
schema, in the caller's transaction. Restoring a backup in PostgreSQL mode uses it; so may
`run.py migrate`."""
from __future__ import annotations

from collections.abc import Mapping

import asyncpg
import orjson

from persistence.checkpoint_file import named_point, parse_checkpoint, parse_unrebuildable
from persistence.layout import ARCHIVE_RE, BOXES_DIR, DOCUMENT_FILES, LOG_NAME, parse_checkpoint_stem
from persistence.postgres.recovery import MARK_SQL
from persistence.postgres.rows import EVENT_COLUMNS, assign_eras, split_lines
from persistence.postgres.schema import ERA_KEY

CHECKPOINT_SQL = ("INSERT INTO checkpoints (box_id, seq, box_version, state) VALUES ($1, $2, $3, $4)")


def log_files_in_order(names: list[str]) -> list[str]:
    """The archives by number, then the live log: the order the lines were committed in."""
    archives = sorted((int(m.group(1)), name) for name in names if (m := ARCHIVE_RE.match(name)))
    return [name for _, name in archives] + ([LOG_NAME] if LOG_NAME in names else [])


async def load_files(conn: asyncpg.Connection, files: Mapping[str, bytes]) -> int:
    """Events, checkpoints and documents of `files` (named as in persistence/layout.py) into the
    connection's schema, which must be empty; returns the number of event lines."""
    lines = [line for name in log_files_in_order(list(files)) for line in split_lines(files[name])]
    rows = assign_eras(lines)
    if rows:
        await conn.copy_records_to_table("events", records=rows, columns=EVENT_COLUMNS)
    era = rows[-1][0] if rows else 1
    await conn.execute("UPDATE metadata SET value = to_jsonb($2::int) WHERE key = $1", ERA_KEY, era)
    for name, raw in files.items():
        if name.startswith(f"{BOXES_DIR}/") and name.endswith(".json"):
            await _checkpoint(conn, name, raw, era)
    for document, file_name in DOCUMENT_FILES.items():
        if file_name in files:
            await conn.execute("INSERT INTO documents (name, value) VALUES ($1, $2)", document,
                               orjson.dumps(orjson.loads(files[file_name])).decode())
    return len(rows)


async def _checkpoint(conn: asyncpg.Connection, name: str, raw: bytes, era: int) -> None:
    box_id = parse_checkpoint_stem(name[len(BOXES_DIR) + 1: -len(".json")])
    if box_id is None:
        return  # a backup's names were checked when it was read; a directory's stray file stays there
    checkpoint, reason = parse_checkpoint(raw, box_id)
    if checkpoint is not None:
        version = checkpoint.state.get("boxVersion")
        await conn.execute(CHECKPOINT_SQL, box_id, checkpoint.seq, version if isinstance(version, int) else 0,
                           orjson.dumps(checkpoint.state).decode())
        return
    mark = parse_unrebuildable(raw, box_id)
    if mark is not None:
        await conn.execute(MARK_SQL, box_id, mark[0], mark[1].box_version, mark[1].reason)
        return
    # Unusable as it is: kept aside and marked, so opening reads the box's whole history (as JSON does).
    seq, version = named_point(raw) or (0, 0)
    await conn.execute("INSERT INTO set_aside (era, box_id, seq, reason, content) VALUES ($1, $2, $3, $4, $5)",
                       era, box_id, seq, reason, raw)
    await conn.execute(MARK_SQL, box_id, seq, version, f"its checkpoint was set aside ({reason})")
