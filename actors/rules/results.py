"""Multi-route results: per-route ranks and the overall ranking (reference-backend §7.3, with §10.10 fixed).

Pure: plain values in (so a live box state and a save_ranking body feed the same code), rows out.

* Route k: athletes with a score on k, best first. With the route's holds count known, scores compare
  as §7.1 performances (top > higher hold > "+", so 7.1 and 7.5 tie as "7+"); otherwise as numbers.
  Tied athletes share the AVERAGE of the positions they occupy (points 2.5); the displayed rank is
  competition style (1, 1, 3). An athlete without a score on k gets no rank and n + 1 points
  (n = number of athletes).
* Overall: Total = geometric mean of the route points over all routes, rounded to 3 decimals, lower
  is better; equal Totals share a rank. It comes from the scores alone: the active route's order
  never overrides it (the reference's §7.3 bug).
* Active-route tie-break decisions (the lead ranking's `rank` after the §7.2 workflow) separate ONLY
  athletes who are tied on the overall Total AND have the same performance on the active route.
  Inside each such group every member gets a decision offset = its lead rank − the group's best lead
  rank (0 when the group has no decision or a member has no lead rank). Rows are ordered by
  (Total, offset, name) and share a rank exactly when Total and offset are equal. So the decided
  winners keep the rank the Total gives them (shared with equal-Total athletes the decision does not
  concern), and a decided loser moves behind the whole equal-Total group. Points and Totals never
  change; on the active route's own sheet the same offsets order its equal-performance groups.
"""

import math
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

TOTAL_DECIMALS = 3
# As in the live ranking (§7.1): a score this far above the hold counts as "+".
_PLUS_EPSILON = 1e-9

# A route's comparison key, best = largest: (topped, hold, plus) or (score,).
_Key = tuple[float, ...]


@dataclass(frozen=True, slots=True)
class ResultsInput:
    """Everything the results are computed from; `scores`/`times` lists may be short or hold None."""

    category: str
    routes_count: int
    scores: Mapping[str, Sequence[float | None]]
    times: Mapping[str, Sequence[float | None]] = field(default_factory=dict)
    clubs: Mapping[str, str] = field(default_factory=dict)
    holds_counts: Sequence[int] = ()  # per route; 0 or missing = unknown
    show_times: bool = False  # the box's time criterion: adds the Time columns
    active_route: int | None = None  # 1-based; the route the decisions below belong to
    active_ranks: Mapping[str, int] = field(default_factory=dict)  # lead ranking rank after decisions
    tb_time: Collection[str] = frozenset()  # names the lead ranking flags tb_time / tb_prev
    tb_prev: Collection[str] = frozenset()


@dataclass(frozen=True, slots=True)
class RouteRow:
    rank: int | None  # None: no score on this route
    name: str
    club: str
    score: float | None
    time: float | None
    tb_time: bool
    tb_prev: bool
    points: float  # average position, or n + 1 without a score


@dataclass(frozen=True, slots=True)
class OverallRow:
    rank: int
    name: str
    club: str
    scores: tuple[float | None, ...]
    times: tuple[float | None, ...]
    points: tuple[float, ...]
    total: float
    tb_time: bool  # a decision of that kind changed this athlete's overall place
    tb_prev: bool


@dataclass(frozen=True, slots=True)
class Results:
    category: str
    routes_count: int
    show_times: bool
    overall: tuple[OverallRow, ...]
    routes: tuple[Sequence[RouteRow], ...]  # routes[k - 1] = route k


def compute_results(given: ResultsInput) -> Results:
    names = sorted(given.scores, key=_name_order)
    missing_points = float(len(names) + 1)
    keys = [_route_keys(given, names, route) for route in range(given.routes_count)]
    points = [_average_positions(route_keys) for route_keys in keys]
    totals = {name: _geometric_mean([route_points.get(name, missing_points) for route_points in points])
              for name in names}

    active = given.active_route - 1 if given.active_route and 0 < given.active_route <= given.routes_count else None
    active_keys = keys[active] if active is not None else {}
    offsets = _decision_offsets(names, lambda n: (totals[n], active_keys.get(n)), given.active_ranks)
    overall = _overall_rows(given, names, points, totals, offsets)
    routes = []
    for route in range(given.routes_count):
        route_offsets = (_decision_offsets(names, active_keys.get, given.active_ranks)
                         if route == active else {})
        routes.append(_route_rows(given, route, keys[route], points[route], route_offsets, route == active))
    return Results(given.category, given.routes_count, given.show_times, tuple(overall), tuple(routes))


def decisions_from_rows(rows: Iterable[Mapping[str, Any]]) -> tuple[dict[str, int], frozenset[str], frozenset[str]]:
    """(rank by name, tb_time names, tb_prev names) out of leadRankingRows."""
    rows = list(rows)
    ranks = {row["name"]: row["rank"] for row in rows if isinstance(row.get("rank"), int)}
    return (ranks, frozenset(row["name"] for row in rows if row.get("tb_time")),
            frozenset(row["name"] for row in rows if row.get("tb_prev")))


def ranking_table(results: Results) -> list[dict[str, Any]]:
    """The overall as the backup snapshot's `ranking` rows (§5.6): Rank, Nume, Club, Score Rk.., [Time Rk..], Total."""
    table = []
    for row in results.overall:
        entry: dict[str, Any] = {"Rank": row.rank, "Nume": row.name, "Club": row.club}
        entry.update({f"Score R{k}": score for k, score in enumerate(row.scores, start=1)})
        if results.show_times:
            entry.update({f"Time R{k}": time for k, time in enumerate(row.times, start=1)})
        entry["Total"] = row.total
        table.append(entry)
    return table


def route_value(values: Sequence[Any] | None, route: int) -> float | None:
    """The number at index `route`, or None (absent, null, bool, NaN, infinite)."""
    if values is None or not 0 <= route < len(values):
        return None
    value = values[route]
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


# -- helpers -------------------------------------------------------------------------------------


def _name_order(name: str) -> tuple[str, str]:
    return name.casefold(), name


def _route_keys(given: ResultsInput, names: list[str], route: int) -> dict[str, _Key]:
    holds: object = given.holds_counts[route] if route < len(given.holds_counts) else 0  # checked below
    keys: dict[str, _Key] = {}
    for name in names:
        score = route_value(given.scores.get(name), route)
        if score is None:
            continue
        keys[name] = _lead_key(score, holds) if isinstance(holds, int) and holds > 0 else (score,)
    return keys


def _lead_key(score: float, holds: int) -> _Key:
    """§7.1: a top (score >= holds), else the hold reached and whether a "+" was added."""
    if score >= holds:
        return 1.0, float(holds), 0.0
    hold = math.floor(max(score, 0.0))
    return 0.0, float(hold), float(score - hold > _PLUS_EPSILON)


def _average_positions(keys: Mapping[str, _Key]) -> dict[str, float]:
    """Each athlete with a key gets the mean of the positions its tie group occupies."""
    order = sorted(keys, key=lambda n: keys[n], reverse=True)
    points: dict[str, float] = {}
    start = 0
    while start < len(order):
        end = start
        while end + 1 < len(order) and keys[order[end + 1]] == keys[order[start]]:
            end += 1
        average = (start + 1 + end + 1) / 2
        for name in order[start:end + 1]:
            points[name] = average
        start = end + 1
    return points


def _geometric_mean(values: list[float]) -> float:
    if not values:
        return 0.0
    return round(math.exp(math.fsum(math.log(v) for v in values) / len(values)), TOTAL_DECIMALS)


def _decision_offsets(names: list[str], group_of: Any, active_ranks: Mapping[str, int]) -> dict[str, int]:
    """Offset of each athlete inside its tie group by the active route's lead rank (see the module doc)."""
    groups: dict[Any, list[str]] = {}
    for name in names:
        groups.setdefault(group_of(name), []).append(name)
    offsets: dict[str, int] = {}
    for members in groups.values():
        ranks = [active_ranks.get(name) for name in members]
        known = [rank for rank in ranks if isinstance(rank, int)]
        if len(members) < 2 or len(known) < len(ranks) or len(set(known)) < 2:
            continue
        best = min(known)
        for name, rank in zip(members, known):
            offsets[name] = rank - best
    return offsets


def _overall_rows(given: ResultsInput, names: list[str], points: list[dict[str, float]],
                  totals: Mapping[str, float], offsets: Mapping[str, int]) -> list[OverallRow]:
    order = sorted(names, key=lambda n: (totals[n], offsets.get(n, 0), *_name_order(n)))
    rows: list[OverallRow] = []
    rank, previous = 0, None
    for position, name in enumerate(order, start=1):
        place = (totals[name], offsets.get(name, 0))
        if place != previous:
            rank, previous = position, place
        decided = name in offsets
        rows.append(OverallRow(
            rank=rank,
            name=name,
            club=given.clubs.get(name, ""),
            scores=tuple(route_value(given.scores.get(name), r) for r in range(given.routes_count)),
            times=tuple(route_value(given.times.get(name), r) for r in range(given.routes_count)),
            points=tuple(points[r].get(name, float(len(names) + 1)) for r in range(given.routes_count)),
            total=totals[name],
            tb_time=decided and name in given.tb_time,
            tb_prev=decided and name in given.tb_prev,
        ))
    return rows


def _route_rows(given: ResultsInput, route: int, keys: Mapping[str, _Key], points: Mapping[str, float],
                offsets: Mapping[str, int], active: bool) -> list[RouteRow]:
    missing_points = float(len(given.scores) + 1)
    scored = sorted(keys, key=lambda n: (tuple(-v for v in keys[n]), offsets.get(n, 0), *_name_order(n)))
    unscored = sorted((n for n in given.scores if n not in keys), key=_name_order)
    rows: list[RouteRow] = []
    rank, previous = 0, None
    for position, name in enumerate(scored + unscored, start=1):
        if name in keys:
            place = (keys[name], offsets.get(name, 0))
            if place != previous:
                rank, previous = position, place
        rows.append(RouteRow(
            rank=rank if name in keys else None,
            name=name,
            club=given.clubs.get(name, ""),
            score=route_value(given.scores.get(name), route),
            time=route_value(given.times.get(name), route),
            tb_time=active and name in given.tb_time,
            tb_prev=active and name in given.tb_prev,
            points=points.get(name, missing_points),
        ))
    return rows
