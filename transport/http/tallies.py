"""What the command route counts as it answers: commands by type and outcome, and how long each
took from the route's first line to its answer. Plain ints (actors/tallies.py): /metrics reads
them when scraped, and the hot path pays a few dict and list operations.

Labels stay bounded: a type is one of COMMAND_TYPES (anything else is "unknown"), an outcome one
of OUTCOMES. No box id, user or address is ever a label: per-box detail is the ops page's.
"""
from __future__ import annotations

from bisect import bisect_left
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


_OK_AT, _IGNORED_AT, _CLIENT_ERROR_AT, _RATE_LIMITED_AT, _UNAVAILABLE_AT, _SERVER_ERROR_AT = range(len(OUTCOMES))
_AT_STATUS: Final = {429: _RATE_LIMITED_AT, 503: _UNAVAILABLE_AT}
_BUCKETS_AT: Final = len(OUTCOMES)
_COUNTS: Final = len(OUTCOMES) + len(COMMAND_SECONDS) + 1  # the outcomes, then the buckets and +Inf


def type_of(body: Any) -> str:
    """The command type of a body that may not have been parsed (or not even read)."""
    kind = body.get("type") if isinstance(body, dict) else None
    return kind if isinstance(kind, str) and kind in KNOWN_TYPES else UNKNOWN_TYPE


class CommandTallies:
    """One row per command type: answers per outcome (in OUTCOMES order), answers per bucket of
    COMMAND_SECONDS (the last is +Inf), and the seconds in all. One flat list keeps the hot path
    to a dict lookup and three list adds."""

    def __init__(self) -> None:
        self._rows: dict[str, list[Any]] = {}

    def record(self, kind: str, status: int, body: Any, seconds: float) -> None:
        """`body`, the answer's, is read only for a 200: ok, or {"status": "ignored"}."""
        row = self._rows.get(kind)
        if row is None:
            row = self._rows[kind] = [0] * _COUNTS + [0.0]  # the sum of the seconds last
        if status == 200:
            row[_IGNORED_AT if body.get("status") == IGNORED else _OK_AT] += 1
        else:
            row[_AT_STATUS.get(status, _CLIENT_ERROR_AT if status < 500 else _SERVER_ERROR_AT)] += 1
        row[_BUCKETS_AT + bisect_left(COMMAND_SECONDS, seconds)] += 1
        row[-1] += seconds

    def outcomes(self) -> dict[tuple[str, str], int]:
        """(type, outcome) -> answers, for the outcomes a type has had."""
        return {(kind, outcome): row[index] for kind, row in self._rows.items()
                for index, outcome in enumerate(OUTCOMES) if row[index]}

    def latency(self) -> dict[str, Buckets]:
        """type -> its latency histogram (a copy)."""
        found = {}
        for kind, row in self._rows.items():
            buckets = found[kind] = Buckets(COMMAND_SECONDS)
            buckets.counts, buckets.total = row[_BUCKETS_AT:-1], row[-1]
        return found

    def latency_counts(self) -> list[int]:
        """Commands per bucket of COMMAND_SECONDS (not cumulative; the last is +Inf), every type
        together. Two readings some time apart give that span's distribution (the ops page's
        p99 chart: `actors.tallies.quantile(COMMAND_SECONDS, later - earlier, 0.99)`)."""
        merged = [0] * (len(COMMAND_SECONDS) + 1)
        for row in self._rows.values():
            for index, count in enumerate(row[_BUCKETS_AT:-1]):
                merged[index] += count
        return merged
