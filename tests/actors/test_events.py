"""The event line's generated id: a random version-4 UUID in its canonical text."""
from __future__ import annotations

import uuid

from actors.events import new_event_id


def test_event_ids_are_distinct_version_4_uuids_in_canonical_text() -> None:
    ids = [new_event_id() for _ in range(2000)]
    assert len(set(ids)) == len(ids)
    for text in ids[:200]:
        parsed = uuid.UUID(text)
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122
        assert str(parsed) == text
