"""What opening a PostgreSQL storage finds to replay: the checkpoints (judged by the caller's rule)
and every later event of the current era, per box. A reset starts a new era; an unusable
checkpoint is copied to `set_aside` and replaced by an Unrebuildable mark, as the JSON backend
moves its file to the quarantine."""
from __future__ import annotations

import logging
from typing import Any

import asyncpg
import orjson

from persistence.checkpoint_file import encode_checkpoint
from persistence.lines import parse_line
from persistence.postgres.reads import current_era
from persistence.postgres.schema import ERA_KEY
from persistence.types import Checkpoint, Recovered, StateLoader, Unrebuildable

log = logging.getLogger("belay.persistence")

MARK_SQL = ("INSERT INTO checkpoints (box_id, seq, box_version, state, unrebuildable_reason) "
            "VALUES ($1, $2, $3, NULL, $4) ON CONFLICT (box_id) DO UPDATE SET seq = excluded.seq, "
            "box_version = excluded.box_version, state = NULL, unrebuildable_reason = excluded.unrebuildable_reason, "
            "saved_at = now()")


async def recover(conn: asyncpg.Connection, reset_boxes: bool, load_state: StateLoader | None) -> tuple[int, Recovered]:
    """(era, what to replay), in one transaction of the writer."""
    async with conn.transaction():
        era = await current_era(conn)
        if reset_boxes:
            era = await _new_era(conn, era)
            return era, Recovered({}, {}, [], [])
        valid, marks, quarantined = await _checkpoints(conn, era, load_state)
        after = {box: cp.seq for box, cp in valid.items()}
        rows = await conn.fetch(
            "SELECT e.box_id, e.seq, e.line FROM events e "
            "LEFT JOIN unnest($2::bigint[], $3::bigint[]) AS c(box_id, seq) ON c.box_id = e.box_id "
            "WHERE e.era = $1 AND e.seq IS NOT NULL AND e.seq > coalesce(c.seq, 0) "
            "ORDER BY e.box_id, e.seq", era, list(after), list(after.values()))
    events: dict[int, list[dict[str, Any]]] = {}
    skipped = 0
    for row in rows:
        event = parse_line(row["line"])
        if event is None:
            skipped += 1
            continue
        events.setdefault(row["box_id"], []).append(event)
    holes = {box for box, run in events.items()
             if [e["seq"] for e in run] != list(range(after.get(box, 0) + 1, after.get(box, 0) + 1 + len(run)))}
    missing = {box for box in marks if box not in events}
    unrecoverable = sorted(holes | missing)
    if unrecoverable:
        log.warning("boxes whose history after the checkpoint has a hole: %s (replay decides whether a later "
                    "restore still rebuilds them)", unrecoverable)
    highest = _highest(valid, marks, events, holes)
    unusable = {box: mark.reason for box, (_, mark) in marks.items()}
    return era, Recovered(valid, events, quarantined, unrecoverable, skipped, (), unusable, highest)


async def _new_era(conn: asyncpg.Connection, era: int) -> int:
    """Every checkpoint set aside under the old era; the events stay where they are."""
    rows = await conn.fetch("SELECT box_id, seq, box_version, state, unrebuildable_reason FROM checkpoints")
    await conn.executemany("INSERT INTO set_aside (era, box_id, seq, reason, content) VALUES ($1, $2, $3, 'reset', $4)",
                           [(era, r["box_id"], r["seq"], checkpoint_file_bytes(r)) for r in rows])
    await conn.execute("DELETE FROM checkpoints")
    await conn.execute("UPDATE metadata SET value = to_jsonb($2::int), updated_at = now() WHERE key = $1",
                       ERA_KEY, era + 1)
    log.warning("reset: %d checkpoint(s) set aside; era %d begins", len(rows), era + 1)
    return era + 1


def checkpoint_file_bytes(row: asyncpg.Record) -> bytes:
    """A stored checkpoint as a backup's boxes/{id}.json holds it."""
    if row["state"] is None:
        return encode_checkpoint(row["box_id"], row["seq"], Unrebuildable(row["box_version"],
                                                                          row["unrebuildable_reason"]))
    return encode_checkpoint(row["box_id"], row["seq"], orjson.loads(row["state"]))


async def _checkpoints(conn: asyncpg.Connection, era: int, load_state: StateLoader | None
                       ) -> tuple[dict[int, Checkpoint], dict[int, tuple[int, Unrebuildable]], list[str]]:
    valid: dict[int, Checkpoint] = {}
    marks: dict[int, tuple[int, Unrebuildable]] = {}
    quarantined: list[str] = []
    for row in await conn.fetch("SELECT box_id, seq, box_version, state, unrebuildable_reason FROM checkpoints"):
        box, seq = row["box_id"], row["seq"]
        if row["state"] is None:
            marks[box] = (seq, Unrebuildable(row["box_version"], row["unrebuildable_reason"]))
            continue
        state = orjson.loads(row["state"])
        try:
            valid[box] = Checkpoint(box, seq, load_state(state) if load_state is not None else state)
            continue
        except Exception as exc:  # whatever the rule refuses; the checkpoint is kept in set_aside
            reason = f"invalid state: {exc}"
        aside = await conn.fetchval("INSERT INTO set_aside (era, box_id, seq, reason, content) "
                                    "VALUES ($1, $2, $3, $4, $5) RETURNING id", era, box, seq, reason,
                                    checkpoint_file_bytes(row))
        mark = Unrebuildable(row["box_version"], f"its checkpoint was set aside ({reason})")
        await conn.execute(MARK_SQL, box, seq, mark.box_version, mark.reason)
        log.warning("unusable checkpoint of box %d (%s) set aside as set_aside row %d", box, reason, aside)
        quarantined.append(f"set_aside/{aside}")
        marks[box] = (seq, mark)
    return valid, marks, quarantined


def _highest(valid: dict[int, Checkpoint], marks: dict[int, tuple[int, Unrebuildable]],
             events: dict[int, list[dict[str, Any]]], holes: set[int]) -> dict[int, tuple[int, int]]:
    """Per box, the highest (seq, boxVersion) its checkpoint, mark or later events name."""
    highest: dict[int, tuple[int, int]] = {}

    def note(box: int, seq: int, version: object) -> None:
        seen_seq, seen_version = highest.get(box, (0, 0))
        known = version if isinstance(version, int) and not isinstance(version, bool) else 0
        highest[box] = (max(seq, seen_seq), max(known, seen_version))

    for box, checkpoint in valid.items():
        note(box, checkpoint.seq, checkpoint.state.get("boxVersion"))
    for box, (seq, mark) in marks.items():
        note(box, seq, mark.box_version)
    for box, run in events.items():
        for event in run if box in holes or box in marks else run[-1:]:
            note(box, event["seq"], event.get("boxVersion"))
    return highest
