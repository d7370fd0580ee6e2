"""Score → lead result on the active route (reference-backend §7.1): the raw material of the ranking.

The ranking itself, with its manual tie-break workflow, is in `tiebreak.py`.
"""

import math
from collections.abc import Mapping
from typing import Any, NamedTuple

# A score this far above the hold counts as "+"; guards against 7.1 - 7 being 0.0999999.
_PLUS_EPSILON = 1e-9

# Ties on ranks 1..3 must be broken; ties below may stay shared.
PODIUM_PLACES = 3


class Performance(NamedTuple):
    """What the comparator looks at: topped, then the hold, then "+"."""

    topped: bool
    hold: int
    plus: bool

    @property
    def value(self) -> float:
        """The row's score/total: the hold (holdsCount for a top), plus 0.1 for a "+"."""
        return round(self.hold + 0.1, 1) if self.plus else float(self.hold)


class Entry(NamedTuple):
    """One scored athlete on the active route."""

    name: str
    performance: Performance
    time: float | None


class RouteResults(NamedTuple):
    route_index: int  # 1-based
    entries: list[Entry]  # scored athletes, best first, equal performances by casefolded name
    unscored: list[str]  # everyone else, by casefolded name


def performance(score: float, holds_count: int) -> Performance:
    if holds_count > 0 and score >= holds_count:
        return Performance(True, holds_count, False)
    hold = math.floor(max(score, 0.0))
    return Performance(False, hold, score - hold > _PLUS_EPSILON)


def name_key(name: str) -> tuple[str, str]:
    """Deterministic display order of athletes who share a rank."""
    return name.casefold(), name


def route_results(state: Mapping[str, Any]) -> RouteResults:
    """Everyone on the start list or with a score; only the active route's score counts."""
    route_index = state["routeIndex"]
    holds_count = state["holdsCount"]
    scores = state.get("scores") or {}
    times = state.get("times") or {}
    names = dict.fromkeys(c["nume"] for c in state["competitors"])
    names.update(dict.fromkeys(scores))
    entries = []
    unscored = []
    for name in names:
        score = route_value(scores.get(name), route_index - 1)
        if score is None:
            unscored.append(name)
        else:
            entries.append(Entry(name, performance(score, holds_count), route_value(times.get(name), route_index - 1)))
    entries.sort(key=_best_first)
    unscored.sort(key=name_key)
    return RouteResults(route_index, entries, unscored)


def _best_first(entry: Entry) -> tuple[int, int, int, str, str]:
    topped, hold, plus = entry.performance
    return (-int(topped), -hold, -int(plus), *name_key(entry.name))


def ranking_row(state: Mapping[str, Any], name: str, rank: int, value: float | None, time: float | None,
                tb_time: bool = False, tb_prev: bool = False) -> dict[str, Any]:
    """A `RankingRow` of reference-backend §2.2."""
    routes_count = state["routesCount"] if isinstance(state.get("routesCount"), int) else 1
    return {
        "name": name,
        "rank": rank,
        "score": value,
        "total": value,
        "time": time,
        "tb_time": tb_time,
        "tb_prev": tb_prev,
        "raw_scores": _padded((state.get("scores") or {}).get(name), routes_count),
        "raw_times": _padded((state.get("times") or {}).get(name), routes_count),
    }


def route_value(values: object, route: int) -> float | None:
    """The athlete's number on one route (0-based), or None when there is none (0 is a real value)."""
    if not isinstance(values, list) or not 0 <= route < len(values):
        return None
    value = values[route]
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return value
    return None


def _padded(values: object, length: int) -> list[Any]:
    row = list(values) if isinstance(values, list) else []
    return row + [None] * (length - len(row))
