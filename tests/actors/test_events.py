"""The event line's generated fields: ids are random version-4 UUIDs, timestamps are what
datetime's isoformat gives (the audit log's format must not change)."""
from __future__ import annotations

import random
import uuid
from datetime import datetime, timezone

from actors.events import iso_from_ms, new_event_id


def test_event_ids_are_distinct_version_4_uuids_in_canonical_text() -> None:
    ids = [new_event_id() for _ in range(2000)]
    assert len(set(ids)) == len(ids)
    for text in ids[:200]:
        parsed = uuid.UUID(text)
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122
        assert str(parsed) == text


def test_timestamps_match_datetime_isoformat_to_the_character() -> None:
    rng = random.Random(7)
    samples = [0, 999, 1000, 1_763_833_734_000, 1_763_833_734_001, 1_763_833_734_999, 951_782_400_000,
               4_102_444_799_999, *(rng.randrange(0, 4_102_444_800_000) for _ in range(5000))]
    for now_ms in samples:
        assert iso_from_ms(now_ms) == datetime.fromtimestamp(now_ms / 1000, tz=timezone.utc).isoformat(), now_ms
