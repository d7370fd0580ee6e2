"""Names for ties (reference-backend §7.2): what a stored decision is attached to.

* A tie fingerprint ("tb3:…") names one tie exactly, times included: editing a member's time or
  score makes a new tie, and the old decision no longer applies to it. The UI only echoes it.
* A lineage key ("tb-lineage:…") names a performance on a route, whoever holds it, so
  previous-rounds ranks typed once survive time edits and athletes joining the tie. The UI
  recomputes it in the browser (ui-contract §5.4), so its payload must stay byte-exact.
"""

import hashlib
import json
from collections.abc import Sequence
from typing import Any

from .ranking import PODIUM_PLACES, Entry, Performance, name_key


def round_name(route_index: int) -> str:
    return f"Final|route:{route_index}"


def lineage_key(route_index: int, performance: Performance) -> str:
    payload = {
        "round": round_name(route_index),
        "context": "overall",
        "performance": {"topped": performance.topped, "hold": performance.hold, "plus": performance.plus},
    }
    return "tb-lineage:" + _sha1(payload)


def tie_fingerprint(route_index: int, stage: str, rank_start: int, affects_podium: bool,
                    members: Sequence[Entry]) -> str:
    payload = {
        "round": round_name(route_index),
        "stage": stage,
        "rank_start": rank_start,
        "rank_end": rank_start + len(members) - 1,
        "affects_podium": affects_podium,
        "members": _members(members),
    }
    return "tb3:" + _sha1(payload)


def ties_fingerprint(route_index: int, ties: Sequence[tuple[int, Sequence[Entry]]]) -> str | None:
    """`timeTiebreakCurrentFingerprint`: every tie of the route, as (start rank, members)."""
    if not ties:
        return None
    payload = {
        "round": round_name(route_index),
        "ties": [
            {"rank_start": start, "rank_end": start + len(members) - 1, "affects_podium": start <= PODIUM_PLACES,
             "members": _members(members)}
            for start, members in ties
        ],
    }
    return "tb3:" + _sha1(payload)


def _members(members: Sequence[Entry]) -> list[dict[str, Any]]:
    return [
        {"name": e.name, "topped": e.performance.topped, "hold": e.performance.hold, "plus": e.performance.plus,
         "time": None if e.time is None else float(e.time)}  # 44 and 44.0 are one time
        for e in sorted(members, key=lambda e: name_key(e.name))
    ]


def _sha1(payload: dict[str, Any]) -> str:
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha1(text.encode("utf-8")).hexdigest()
