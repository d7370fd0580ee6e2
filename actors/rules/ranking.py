"""Live lead ranking of the active route (reference-backend §7.1), before any manual tie-break."""

import math
from collections.abc import Mapping
from typing import Any

# A score this far above the hold counts as "+"; guards against 7.1 - 7 being 0.0999999.
_PLUS_EPSILON = 1e-9


def lead_ranking_rows(state: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Topped > higher hold > "+"; ties share a rank (1, 1, 3); unscored athletes share the last rank."""
    route = state["routeIndex"] - 1
    holds_count = state["holdsCount"]
    routes_count = state["routesCount"] if isinstance(state.get("routesCount"), int) else 1
    scores = state.get("scores") or {}
    times = state.get("times") or {}

    names = dict.fromkeys(c["nume"] for c in state["competitors"])
    names.update(dict.fromkeys(scores))
    scored: list[tuple[tuple[bool, int, bool], str, float]] = []
    unscored: list[str] = []
    for name in names:
        score = _route_value(scores.get(name), route)
        if score is None:
            unscored.append(name)
        else:
            scored.append((_performance(score, holds_count), name, score))
    scored.sort(key=lambda item: (_descending(item[0]), item[1].casefold(), item[1]))
    unscored.sort(key=lambda name: (name.casefold(), name))

    rows = []
    rank = 0
    previous: tuple[bool, int, bool] | None = None
    for position, (performance, name, _) in enumerate(scored, start=1):
        if performance != previous:
            rank, previous = position, performance
        topped, hold, plus = performance
        value = round(hold + 0.1, 1) if plus else float(hold)
        rows.append(_row(name, rank, value, scores, times, route, routes_count))
    for name in unscored:
        rows.append(_row(name, len(scored) + 1, None, scores, times, route, routes_count))
    return rows


def _performance(score: float, holds_count: int) -> tuple[bool, int, bool]:
    """(topped, hold, plus): what the comparator and the displayed score are made of."""
    if holds_count > 0 and score >= holds_count:
        return True, holds_count, False
    hold = math.floor(max(score, 0.0))
    return False, hold, score - hold > _PLUS_EPSILON


def _descending(performance: tuple[bool, int, bool]) -> tuple[int, int, int]:
    topped, hold, plus = performance
    return -int(topped), -hold, -int(plus)


def _row(
    name: str,
    rank: int,
    value: float | None,
    scores: Mapping[str, Any],
    times: Mapping[str, Any],
    route: int,
    routes_count: int,
) -> dict[str, Any]:
    return {
        "name": name,
        "rank": rank,
        "score": value,
        "total": value,
        "time": _route_value(times.get(name), route),
        "tb_time": False,
        "tb_prev": False,
        "raw_scores": _padded(scores.get(name), routes_count),
        "raw_times": _padded(times.get(name), routes_count),
    }


def _route_value(values: object, route: int) -> float | None:
    """The athlete's number on one route, or None when there is none (0 is a real value)."""
    if not isinstance(values, list) or not 0 <= route < len(values):
        return None
    value = values[route]
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return value
    return None


def _padded(values: object, length: int) -> list[Any]:
    row = list(values) if isinstance(values, list) else []
    return row + [None] * (length - len(row))
