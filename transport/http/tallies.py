"""What the command route counts as it answers: commands by type and outcome, and how long each
took from the route's first line to its answer. Plain ints (actors/tallies.py): /metrics reads
them when scraped, and the hot path pays a few dict and list operations.

Labels stay bounded: a type is one of COMMAND_TYPES (anything else is "unknown"), an outcome one
of OUTCOMES. No box id, user or address is ever a label: per-box detail is the ops page's.
"""
from __future__ import annotations

from typing import Any, Final

from actors.rules import COMMAND_TYPES
from actors.tallies import Buckets

OK: Final = "ok"
IGNORED: Final = "ignored"  # answered 200 {"status": "ignored"}: stale, or nothing to change
CLIENT_ERROR: Final = "4xx"  # bad body, not allowed, invalid command...
RATE_LIMITED: Final = "429"
UNAVAILABLE: Final = "503"  # storage down, box unavailable, shutting down
SERVER_ERROR: Final = "5xx"  # any other 5xx: a bug
OUTCOMES: Final = (OK, IGNORED, CLIENT_ERROR, RATE_LIMITED, UNAVAILABLE, SERVER_ERROR)
UNKNOWN_TYPE: Final = "unknown"  # a refused body whose type is not a command type
KNOWN_TYPES: Final = frozenset(COMMAND_TYPES)
# A clock sync served in the caller's task takes about 0.3 ms here; a score waits for its
# fdatasync; a stalled disk makes it 100 ms or more (docs/performance.md).
COMMAND_SECONDS: Final = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
AUDIT_READ_SECONDS: Final = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def outcome_of(status: int, body: Any) -> str:
    if status == 200:
        return IGNORED if isinstance(body, dict) and body.get("status") == IGNORED else OK
    if status == 429:
        return RATE_LIMITED
    if status == 503:
        return UNAVAILABLE
    return CLIENT_ERROR if status < 500 else SERVER_ERROR


def type_of(body: Any) -> str:
    """The command type of a body that may not have been parsed (or not even read)."""
    kind = body.get("type") if isinstance(body, dict) else None
    return kind if isinstance(kind, str) and kind in KNOWN_TYPES else UNKNOWN_TYPE


class CommandTallies:
    def __init__(self) -> None:
        self.outcomes: dict[tuple[str, str], int] = {}  # (type, outcome) -> commands answered
        self.latency: dict[str, Buckets] = {}  # type -> seconds to answer, every outcome

    def record(self, kind: str, outcome: str, seconds: float) -> None:
        key = (kind, outcome)
        outcomes = self.outcomes
        outcomes[key] = outcomes.get(key, 0) + 1
        latency = self.latency.get(kind)
        if latency is None:
            latency = self.latency[kind] = Buckets(COMMAND_SECONDS)
        latency.observe(seconds)

    def latency_counts(self) -> list[int]:
        """Commands per bucket of COMMAND_SECONDS (not cumulative; the last is +Inf), every type
        together. Two readings some time apart give that span's distribution (the ops page's
        p99 chart: `actors.tallies.quantile(COMMAND_SECONDS, later - earlier, 0.99)`)."""
        merged = [0] * (len(COMMAND_SECONDS) + 1)
        for buckets in self.latency.values():
            for index, count in enumerate(buckets.counts):
                merged[index] += count
        return merged
