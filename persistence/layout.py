"""The names inside a backup zip. The JSON backend keeps its files under the same names (a backup is
its directory at one durable point); any other backend writes its durable points in this layout,
so a backup taken in one storage mode restores in another.
"""
from __future__ import annotations

import re
from typing import Final

from persistence.types import DOCUMENTS, MAX_STORED_BOX_ID

LOG_NAME: Final = "events.ndjson"  # the event log up to the durable point, one JSON object per line
ARCHIVE_RE: Final = re.compile(r"^events\.(\d+)\.ndjson$")  # earlier parts of the log, numbered in order
BOXES_DIR: Final = "boxes"  # one checkpoint per box: boxes/{boxId}.json
RESULTS_DIR: Final = "results"  # official result sheets, written by the export worker
RESULT_FILE: Final = re.compile(r"^(overall|route_\d{1,3})\.(xlsx|pdf)$")
DOCUMENT_FILES: Final = dict(zip(DOCUMENTS, ("users.json", "competition_officials.json", "revoked_sessions.json"),
                                  strict=True))
# A longer name than any storable box id can have is refused before it is even parsed.
BOX_ID_DIGITS: Final = len(str(MAX_STORED_BOX_ID))


def checkpoint_name(box_id: int) -> str:
    """The file name of a box's checkpoint: its id's canonical decimal spelling."""
    return f"{box_id}.json"


def parse_checkpoint_stem(stem: str) -> int | None:
    """The box id a checkpoint file is named after. Only the canonical spelling counts, so "7" and
    "007" can never both claim box 7; an absurdly long name is refused unread."""
    if not 0 < len(stem) <= BOX_ID_DIGITS or not stem.isascii() or not stem.isdigit() or str(int(stem)) != stem:
        return None
    box_id = int(stem)
    return box_id if box_id <= MAX_STORED_BOX_ID else None
