"""actors.rules.results: per-route average positions and the geometric-mean overall (§7.3 with §10.10 fixed)."""
from __future__ import annotations

from actors.rules.results import ResultsInput, compute_results, decisions_from_rows, ranking_table


def overall(results) -> list[tuple[int, str, float]]:
    return [(row.rank, row.name, row.total) for row in results.overall]


def test_equal_totals_share_a_rank_and_the_active_route_never_overrides_them() -> None:
    # The reference wrote C=1, B=2, A=3 here (ranked by route 2 alone). A = √(1·3), C = √(3·1), B = √(2·2).
    results = compute_results(ResultsInput("U14", 2, {"A": [30, 10], "B": [20, 20], "C": [10, 30]},
                                           holds_counts=[40, 40], active_route=2,
                                           active_ranks={"C": 1, "B": 2, "A": 3}))
    assert overall(results) == [(1, "A", 1.732), (1, "C", 1.732), (3, "B", 2.0)]


def test_ties_on_a_route_share_the_average_position_and_a_missing_route_counts_n_plus_1() -> None:
    scores = {"Ana": [30, 10, None], "Bia": [30, 20, 5], "Cris": [10, None, 5], "Dan": [None, None, None]}
    results = compute_results(ResultsInput("U14", 3, scores, holds_counts=[40, 0, 0]))
    # n = 4 athletes, so a missing route is worth 5 points.
    # Route 1: Ana, Bia tie on 30 (positions 1-2 → 1.5); Cris 3. Route 2: Bia 1, Ana 2. Route 3: Bia, Cris 1.5.
    assert [row.points for row in results.overall] == [(1.5, 1.0, 1.5), (1.5, 2.0, 5.0), (3.0, 5.0, 1.5), (5.0,) * 3]
    # Bia ∛(1.5·1·1.5) = ∛2.25 = 1.3104; Ana ∛15 = 2.4662; Cris ∛22.5 = 2.8231; Dan 5.
    assert overall(results) == [(1, "Bia", 1.31), (2, "Ana", 2.466), (3, "Cris", 2.823), (4, "Dan", 5.0)]
    route_1 = results.routes[0]
    assert [(r.rank, r.name, r.points) for r in route_1] == [(1, "Ana", 1.5), (1, "Bia", 1.5), (3, "Cris", 3.0),
                                                              (None, "Dan", 5.0)]


def test_four_way_tie_averages_positions_to_2_5() -> None:
    results = compute_results(ResultsInput("X", 1, {"A": [5], "B": [5], "C": [5], "D": [5]}))
    assert {row.name: row.points for row in results.routes[0]} == {"A": 2.5, "B": 2.5, "C": 2.5, "D": 2.5}
    assert [row.rank for row in results.overall] == [1, 1, 1, 1]


def test_holds_known_compare_as_lead_performances_else_as_numbers() -> None:
    scores = {"A": [7.1, 7.1], "B": [7.5, 7.5], "C": [25.0, 25.0], "D": [20.0, 20.0]}
    results = compute_results(ResultsInput("X", 2, scores, holds_counts=[20, 0]))
    # Route 1 has 20 holds: 25 and 20 are both tops, 7.1 and 7.5 are both "7+".
    assert [(r.rank, r.name, r.points) for r in results.routes[0]] == [
        (1, "C", 1.5), (1, "D", 1.5), (3, "A", 3.5), (3, "B", 3.5)]
    # Route 2 has no known holds: plain numbers.
    assert [(r.rank, r.name, r.points) for r in results.routes[1]] == [
        (1, "C", 1.0), (2, "D", 2.0), (3, "B", 3.0), (4, "A", 4.0)]


def test_nulls_and_short_lists_are_missing_routes() -> None:
    results = compute_results(ResultsInput("X", 3, {"A": [10], "B": [None, 8, None], "C": []}))
    assert [(row.name, row.points) for row in results.overall] == [
        ("A", (1.0, 4.0, 4.0)), ("B", (4.0, 1.0, 4.0)), ("C", (4.0, 4.0, 4.0))]
    assert overall(results) == [(1, "A", 2.52), (1, "B", 2.52), (3, "C", 4.0)]


def test_active_route_decision_orders_only_athletes_tied_on_total_and_on_that_route() -> None:
    # Ana and Bia: same score on both routes → same Total and tied on the active route 2.
    # Cris and Dan share a Total with different route-2 results, so no decision concerns them.
    scores = {"Ana": [20, 15], "Bia": [20, 15], "Cris": [25, 5], "Dan": [5, 16]}
    # Route 1: Cris 1, Ana/Bia 2.5, Dan 4. Route 2: Dan 1, Ana/Bia 2.5, Cris 4.
    # Totals: Ana = Bia = 2.5; Cris = √4 = 2.0; Dan = 2.0.
    undecided = compute_results(ResultsInput("X", 2, scores, holds_counts=[30, 30], active_route=2))
    assert overall(undecided) == [(1, "Cris", 2.0), (1, "Dan", 2.0), (3, "Ana", 2.5), (3, "Bia", 2.5)]

    # The lead ranking of route 2 after a time tie-break: Dan 1, Bia 2 (tb_time), Ana 3, Cris 4.
    ranks, tb_time, tb_prev = decisions_from_rows([
        {"name": "Dan", "rank": 1}, {"name": "Bia", "rank": 2, "tb_time": True},
        {"name": "Ana", "rank": 3, "tb_time": True}, {"name": "Cris", "rank": 4}])
    decided = compute_results(ResultsInput("X", 2, scores, holds_counts=[30, 30], active_route=2,
                                           active_ranks=ranks, tb_time=tb_time, tb_prev=tb_prev))
    # Only Ana/Bia are reordered; Cris and Dan keep their shared rank 1 although the lead ranks differ.
    assert overall(decided) == [(1, "Cris", 2.0), (1, "Dan", 2.0), (3, "Bia", 2.5), (4, "Ana", 2.5)]
    assert [(row.name, row.tb_time) for row in decided.overall] == [
        ("Cris", False), ("Dan", False), ("Bia", True), ("Ana", True)]
    # Totals and points never change.
    assert [row.points for row in decided.overall] == [row.points for row in undecided.overall]
    # The active route's sheet applies the same decision; the other route does not.
    assert [(r.rank, r.name) for r in decided.routes[1]] == [(1, "Dan"), (2, "Bia"), (3, "Ana"), (4, "Cris")]
    assert [(r.rank, r.name) for r in decided.routes[0]] == [(1, "Cris"), (2, "Ana"), (2, "Bia"), (4, "Dan")]


def test_decided_loser_moves_behind_equal_total_athletes_the_decision_does_not_concern() -> None:
    scores_three = {"Ana": [10], "Bia": [10], "Cris": [10]}
    # One route: all tied. Decision separates Bia from Ana only (Cris has no lead rank difference: same as Ana).
    given = ResultsInput("X", 1, scores_three, active_route=1, active_ranks={"Ana": 1, "Cris": 1, "Bia": 3})
    assert overall(compute_results(given)) == [(1, "Ana", 2.0), (1, "Cris", 2.0), (3, "Bia", 2.0)]


def test_ranking_table_has_the_backup_columns() -> None:
    results = compute_results(ResultsInput("X", 2, {"Ștefan Țărână": [5, 6]}, clubs={"Ștefan Țărână": "CS Iași"},
                                           times={"Ștefan Țărână": [61, None]}, show_times=True))
    assert ranking_table(results) == [{"Rank": 1, "Nume": "Ștefan Țărână", "Club": "CS Iași", "Score R1": 5.0,
                                       "Score R2": 6.0, "Time R1": 61.0, "Time R2": None, "Total": 1.0}]
