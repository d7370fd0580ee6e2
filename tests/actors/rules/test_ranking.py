from typing import Any

from actors.rules import default_state, lead_ranking_rows


def box(scores: dict[str, list[Any]], names: list[str] | None = None, holds_count: int = 40, route_index: int = 1,
        routes_count: int = 2, times: dict[str, list[Any]] | None = None) -> dict[str, Any]:
    return {
        **default_state("s"),
        "holdsCount": holds_count,
        "routeIndex": route_index,
        "routesCount": routes_count,
        "competitors": [{"nume": name, "marked": False} for name in (names or [])],
        "scores": scores,
        "times": times or {},
    }


def ranks(state: dict[str, Any]) -> list[tuple[str, int, float | None]]:
    return [(row["name"], row["rank"], row["score"]) for row in lead_ranking_rows(state)]


def test_top_beats_a_plus_which_beats_the_same_hold() -> None:
    state = box({"Ana": [39.0], "Bob": [40.0], "Cris": [39.1], "Dan": [45.0]})
    assert ranks(state) == [("Bob", 1, 40.0), ("Dan", 1, 40.0), ("Cris", 3, 39.1), ("Ana", 4, 39.0)]


def test_any_fraction_counts_as_one_plus() -> None:
    state = box({"Ana": [7.5], "Bob": [7.1], "Cris": [7.9]})
    assert ranks(state) == [("Ana", 1, 7.1), ("Bob", 1, 7.1), ("Cris", 1, 7.1)]


def test_ties_share_a_rank_and_are_listed_by_casefolded_name() -> None:
    state = box({"bob": [10.0], "Ana": [10.0], "Cris": [12.0], "dan": [3.0]})
    assert ranks(state) == [("Cris", 1, 12.0), ("Ana", 2, 10.0), ("bob", 2, 10.0), ("dan", 4, 3.0)]


def test_unscored_athletes_come_last_and_share_a_rank_without_tying_a_scored_one() -> None:
    state = box({"Ana": [5.0], "Bob": [0.0]}, names=["Zoe", "Ana", "Bob", "Cris"])
    rows = lead_ranking_rows(state)
    assert [(r["name"], r["rank"], r["score"], r["total"]) for r in rows] == [
        ("Ana", 1, 5.0, 5.0), ("Bob", 2, 0.0, 0.0), ("Cris", 3, None, None), ("Zoe", 3, None, None)]


def test_only_the_active_route_counts() -> None:
    state = box({"Ana": [30.0, 2.0], "Bob": [1.0, 9.0], "Cris": [40.0]}, route_index=2)
    assert ranks(state) == [("Bob", 1, 9.0), ("Ana", 2, 2.0), ("Cris", 3, None)]


def test_rows_carry_time_and_raw_lists_padded_to_routes_count() -> None:
    state = box({"Ana": [5.0]}, names=["Ana", "Bob"], routes_count=3, times={"Ana": [0.0]})
    ana, bob = lead_ranking_rows(state)
    assert ana == {"name": "Ana", "rank": 1, "score": 5.0, "total": 5.0, "time": 0.0, "tb_time": False,
                   "tb_prev": False, "raw_scores": [5.0, None, None], "raw_times": [0.0, None, None]}
    assert bob["raw_scores"] == [None, None, None] and bob["time"] is None


def test_athletes_scored_but_not_in_the_list_are_ranked_too() -> None:
    assert ranks(box({"Extra": [3.0]}, names=["Ana"])) == [("Extra", 1, 3.0), ("Ana", 2, None)]


def test_a_route_without_holds_has_no_tops() -> None:
    state = box({"Ana": [50.0], "Bob": [60.0]}, holds_count=0)
    assert ranks(state) == [("Bob", 1, 60.0), ("Ana", 2, 50.0)]


def test_an_empty_box_has_no_rows() -> None:
    assert lead_ranking_rows(default_state("s")) == []
