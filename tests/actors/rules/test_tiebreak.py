"""The live lead ranking with the tie-break workflow (reference-backend §7.2, reference tests of §9)."""

import hashlib
from typing import Any

from actors.rules import default_state, lead_ranking, lead_ranking_rows
from actors.rules.fingerprints import lineage_key
from actors.rules.ranking import Performance

TIE_GROUP_KEYS = [
    "context", "rank", "value", "members", "fingerprint", "stage", "affects_podium", "status", "detail",
    "prev_rounds_decision", "prev_rounds_order", "prev_rounds_ranks_by_name", "lineage_key", "known_prev_ranks_by_name",
    "missing_prev_rounds_members", "requires_prev_rounds_input", "time_decision", "resolved_decision",
    "resolution_kind", "is_resolved",
]


def box(scores: dict[str, list[Any]], times: dict[str, list[Any]] | None = None, *, route_index: int = 1,
        holds_count: int = 40, criterion: bool = True, names: list[str] | None = None, **extra: Any) -> dict[str, Any]:
    return {
        **default_state("s"),
        "initiated": True,
        "holdsCount": holds_count,
        "routeIndex": route_index,
        "routesCount": 2,
        "competitors": [{"nume": name, "marked": False} for name in (names or [])],
        "scores": scores,
        "times": times or {},
        "timeCriterionEnabled": criterion,
        **extra,
    }


def ranks(state: dict[str, Any]) -> dict[str, int]:
    return {row["name"]: row["rank"] for row in lead_ranking_rows(state)}


def badges(state: dict[str, Any]) -> dict[str, tuple[bool, bool]]:
    return {row["name"]: (row["tb_prev"], row["tb_time"]) for row in lead_ranking_rows(state)}


def only_event(state: dict[str, Any], **expected: Any) -> dict[str, Any]:
    events = lead_ranking(state).tie_events
    assert len(events) == 1, events
    assert {key: events[0].get(key) for key in expected} == expected
    return events[0]


def prev_decision(state: dict[str, Any], fingerprint: str, decision: str, ranks_by_name: dict[str, int] | None = None,
                  lineage: str | None = None) -> dict[str, Any]:
    """What SET_PREV_ROUNDS_TIEBREAK_DECISION stores (tested in test_tiebreak_commands.py)."""
    new = {**state, "prevRoundsTiebreakDecisions": {**state["prevRoundsTiebreakDecisions"], fingerprint: decision}}
    if ranks_by_name:
        new["prevRoundsTiebreakRanks"] = {**state["prevRoundsTiebreakRanks"], fingerprint: ranks_by_name}
        if lineage:
            new["prevRoundsTiebreakLineageRanks"] = {lineage: ranks_by_name}
    return new


def time_decision(state: dict[str, Any], fingerprint: str, decision: str = "yes") -> dict[str, Any]:
    return {**state, "timeTiebreakDecisions": {**state["timeTiebreakDecisions"], fingerprint: decision}}


# --- §7.1 order --------------------------------------------------------------------------------------

def test_tops_beat_a_plus_which_beats_the_bare_hold_and_ties_share_ranks_1_1_3() -> None:
    state = box({"Ana": [39.0], "Bob": [40.0], "Cris": [39.5], "Dan": [41.0], "Eve": [12.0]}, criterion=False)
    rows = lead_ranking_rows(state)
    assert [(r["name"], r["rank"], r["score"]) for r in rows] == [
        ("Bob", 1, 40.0), ("Dan", 1, 40.0), ("Cris", 3, 39.1), ("Ana", 4, 39.0), ("Eve", 5, 12.0)]
    ranking = lead_ranking(state)
    assert (ranking.tie_events, ranking.resolved, ranking.is_resolved, ranking.errors) == ([], True, True, [])
    assert ranking.has_eligible_tie and ranking.current_fingerprint.startswith("tb3:")


def test_no_tie_means_no_fingerprint_and_a_resolved_ranking() -> None:
    ranking = lead_ranking(box({"Ana": [3.0], "Bob": [2.0]}))
    assert (ranking.current_fingerprint, ranking.has_eligible_tie, ranking.resolved, ranking.tie_events) == (
        None, False, True, [])
    assert [row["rank"] for row in ranking.rows] == [1, 2]


# --- previous rounds, then time ----------------------------------------------------------------------

def test_an_unresolved_podium_tie_asks_for_previous_rounds() -> None:
    state = box({"Ana": [30.0], "Bob": [30.0], "Cris": [20.0]}, {"Ana": [90.0], "Bob": [80.0]})
    assert ranks(state) == {"Ana": 1, "Bob": 1, "Cris": 3}
    event = only_event(state, stage="previous_rounds", status="pending", detail="previous_rounds_pending", rank=1,
                       affects_podium=True, requires_prev_rounds_input=True,
                       missing_prev_rounds_members=["Ana", "Bob"], known_prev_ranks_by_name={},
                       resolution_kind="previous_rounds", is_resolved=False, context="overall", value=30.0)
    assert event["members"] == [{"name": "Ana", "time": 90.0, "value": 30.0},
                                {"name": "Bob", "time": 80.0, "value": 30.0}]
    assert event["fingerprint"].startswith("tb3:") and event["lineage_key"].startswith("tb-lineage:")
    # Null fields are left out; the others come in the order of §2.2.
    assert [key for key in TIE_GROUP_KEYS if key in event] == list(event)
    assert not {"prev_rounds_decision", "time_decision", "resolved_decision", "prev_rounds_order"} & set(event)
    ranking = lead_ranking(state)
    assert (ranking.resolved, ranking.errors, ranking.has_eligible_tie) == (False, [], True)


def test_previous_rounds_yes_with_ranks_splits_the_tie_and_badges_the_winner() -> None:
    state = box({"Ana": [30.0], "Bob": [30.0]}, {"Ana": [90.0], "Bob": [80.0]})
    fp = lead_ranking(state).tie_events[0]["fingerprint"]
    state = prev_decision(state, fp, "yes", {"Ana": 1, "Bob": 2})
    assert ranks(state) == {"Ana": 1, "Bob": 2}
    assert badges(state) == {"Ana": (True, False), "Bob": (False, False)}
    ranking = lead_ranking(state)
    assert (ranking.tie_events, ranking.resolved, ranking.errors) == ([], True, [])


def test_previous_rounds_no_then_time_yes_orders_by_time() -> None:
    state = box({"Ana": [30.0], "Bob": [30.0]}, {"Ana": [90.0], "Bob": [80.0]})
    prev_fp = lead_ranking(state).tie_events[0]["fingerprint"]
    state = prev_decision(state, prev_fp, "no")
    event = only_event(state, stage="time", status="pending", detail="time_tiebreak_pending", resolution_kind="time")
    assert event["fingerprint"] != prev_fp and "lineage_key" not in event and "requires_prev_rounds_input" in event
    state = time_decision(state, event["fingerprint"])
    assert ranks(state) == {"Bob": 1, "Ana": 2}
    assert badges(state) == {"Bob": (False, True), "Ana": (False, True)}
    assert lead_ranking(state).resolved and lead_ranking(state).tie_events == []


def test_three_way_partial_previous_rounds_then_time_for_the_subgroup() -> None:
    state = box({"Ana": [30.0], "Bob": [30.0], "Cris": [30.0]}, {"Ana": [95.0], "Bob": [99.0], "Cris": [120.0]})
    fp = lead_ranking(state).tie_events[0]["fingerprint"]
    state = prev_decision(state, fp, "yes", {"Cris": 1, "Ana": 2, "Bob": 2})
    event = only_event(state, stage="time", status="pending", rank=2)
    assert [m["name"] for m in event["members"]] == ["Ana", "Bob"]
    assert ranks(state) == {"Cris": 1, "Ana": 2, "Bob": 2}
    state = time_decision(state, event["fingerprint"])
    assert [(r["name"], r["rank"]) for r in lead_ranking_rows(state)] == [("Cris", 1), ("Ana", 2), ("Bob", 3)]
    assert badges(state) == {"Cris": (True, False), "Ana": (False, True), "Bob": (False, True)}
    assert lead_ranking(state).resolved


def test_partial_previous_ranks_place_known_members_and_leave_the_rest_pending() -> None:
    state = box({"Ana": [30.0], "Bob": [30.0], "Cris": [30.0], "Dan": [8.0]})
    fp = lead_ranking(state).tie_events[0]["fingerprint"]
    state = prev_decision(state, fp, "yes", {"Ana": 2, "Bob": 1})
    assert ranks(state) == {"Bob": 1, "Ana": 2, "Cris": 3, "Dan": 4}
    only_event(state, stage="previous_rounds", status="pending", detail="previous_rounds_missing_members",
               prev_rounds_decision="yes", known_prev_ranks_by_name={"Ana": 2, "Bob": 1},
               prev_rounds_ranks_by_name={"Ana": 2, "Bob": 1}, missing_prev_rounds_members=["Cris"],
               requires_prev_rounds_input=True, fingerprint=fp)
    ranking = lead_ranking(state)
    assert not ranking.resolved and ranking.errors == []


def test_a_ranks_map_for_one_of_two_members_is_partial_input_not_an_error() -> None:
    state = box({"Ana": [30.0], "Bob": [30.0]})
    fp = lead_ranking(state).tie_events[0]["fingerprint"]
    state = prev_decision(state, fp, "yes", {"Ana": 1})
    assert ranks(state) == {"Ana": 1, "Bob": 2}
    only_event(state, status="pending", missing_prev_rounds_members=["Bob"])
    assert not lead_ranking(state).resolved and lead_ranking(state).errors == []


def test_invalid_previous_rounds_input_is_reported_and_keeps_the_tie() -> None:
    state = box({"Ana": [30.0], "Bob": [30.0]})
    fp = lead_ranking(state).tie_events[0]["fingerprint"]
    bad_member = prev_decision(state, fp, "yes", {"Ana": 1, "Zed": 2})
    assert ranks(bad_member) == {"Ana": 1, "Bob": 1}
    only_event(bad_member, status="error", detail="invalid_previous_rounds_rank_member:Zed", prev_rounds_decision="yes",
               requires_prev_rounds_input=True)
    assert lead_ranking(bad_member).errors == [
        f"invalid_previous_rounds_decision:{fp}:invalid_previous_rounds_rank_member:Zed"]
    assert not lead_ranking(bad_member).resolved
    no_ranks = prev_decision(state, fp, "yes")
    only_event(no_ranks, status="error", detail="missing_previous_rounds_ranks")
    assert lead_ranking(no_ranks).errors == [f"invalid_previous_rounds_decision:{fp}:missing_previous_rounds_ranks"]


def test_the_legacy_order_form_still_splits_a_tie() -> None:
    state = box({"Ana": [30.0], "Bob": [30.0], "Cris": [30.0]})
    fp = lead_ranking(state).tie_events[0]["fingerprint"]
    state = {**prev_decision(state, fp, "yes"), "prevRoundsTiebreakOrders": {fp: ["Cris", "Ana"]}}
    assert ranks(state) == {"Cris": 1, "Ana": 2, "Bob": 3}  # a single unlisted member is last
    assert lead_ranking(state).resolved


# --- time-stage errors -------------------------------------------------------------------------------

def time_stage_box(times: dict[str, list[Any]]) -> tuple[dict[str, Any], str]:
    state = box({"Ana": [30.0], "Bob": [30.0]}, times)
    state = prev_decision(state, lead_ranking(state).tie_events[0]["fingerprint"], "no")
    return state, lead_ranking(state).tie_events[0]["fingerprint"]


def test_keeping_a_podium_tie_is_not_allowed() -> None:
    state, fp = time_stage_box({"Ana": [90.0], "Bob": [80.0]})
    state = time_decision(state, fp, "no")
    assert ranks(state) == {"Ana": 1, "Bob": 1}
    only_event(state, status="error", detail="podium_keep_tied_not_allowed", time_decision="no", resolved_decision="no")
    assert lead_ranking(state).errors == [f"podium_time_tiebreak_keep_tied_not_allowed:{fp}"]


def test_a_missing_time_is_an_error_but_zero_is_a_time() -> None:
    state, fp = time_stage_box({"Ana": [90.0]})
    state = time_decision(state, fp)
    assert ranks(state) == {"Ana": 1, "Bob": 1}
    event = only_event(state, status="error", detail="missing_time_seconds", time_decision="yes")
    assert event["members"] == [{"name": "Ana", "time": 90.0, "value": 30.0}, {"name": "Bob", "value": 30.0}]
    assert lead_ranking(state).errors == [f"time_tiebreak_missing_times:{fp}"]

    state, fp = time_stage_box({"Ana": [90.0], "Bob": [0.0]})
    state = time_decision(state, fp)
    assert ranks(state) == {"Bob": 1, "Ana": 2}  # the reference read 0 as "no time" (∞)
    assert lead_ranking(state).resolved


def test_identical_times_keep_the_podium_tie_with_an_error() -> None:
    state, fp = time_stage_box({"Ana": [90.0], "Bob": [90]})
    state = time_decision(state, fp)
    assert ranks(state) == {"Ana": 1, "Bob": 1}
    only_event(state, status="error", detail="identical_time_keeps_podium_tie")
    assert lead_ranking(state).errors == [f"time_tiebreak_identical_times:{fp}"]
    assert badges(state) == {"Ana": (False, False), "Bob": (False, False)}  # time separated nobody


# --- the podium boundary -----------------------------------------------------------------------------

def test_a_tie_below_the_podium_stays_shared_and_raises_nothing() -> None:
    state = box({"Ana": [40.0], "Bob": [35.0], "Cris": [33.0], "Dan": [20.0], "Eve": [20.0]})
    assert ranks(state) == {"Ana": 1, "Bob": 2, "Cris": 3, "Dan": 4, "Eve": 4}
    ranking = lead_ranking(state)
    assert (ranking.tie_events, ranking.resolved, ranking.has_eligible_tie) == ([], True, True)


def test_a_tie_straddling_rank_3_collapses_its_tail() -> None:
    state = box({"Ana": [40.0], "Bob": [35.0], "Cris": [20.0], "Dan": [20.0], "Eve": [20.0]},
                {"Cris": [70.0], "Dan": [60.0], "Eve": [50.0]})
    fp = only_event(state, rank=3, stage="previous_rounds")["fingerprint"]
    state = prev_decision(state, fp, "no")
    state = time_decision(state, lead_ranking(state).tie_events[0]["fingerprint"])
    assert [(r["name"], r["rank"]) for r in lead_ranking_rows(state)] == [
        ("Ana", 1), ("Bob", 2), ("Eve", 3), ("Cris", 4), ("Dan", 4)]
    assert lead_ranking(state).resolved


def test_an_old_podium_decision_does_not_split_a_tie_pushed_below_the_podium() -> None:
    state = box({"Ana": [30.0], "Bob": [30.0]})
    fp = lead_ranking(state).tie_events[0]["fingerprint"]
    state = prev_decision(state, fp, "yes", {"Ana": 1, "Bob": 2}, lineage=lineage_key(1, Performance(False, 30, False)))
    assert ranks(state) == {"Ana": 1, "Bob": 2}
    pushed = {**state, "scores": {**state["scores"], "Cris": [35.0], "Dan": [36.0], "Eve": [37.0]}}
    assert ranks(pushed) == {"Eve": 1, "Dan": 2, "Cris": 3, "Ana": 4, "Bob": 4}
    assert lead_ranking(pushed).tie_events == [] and lead_ranking(pushed).resolved


def test_lineage_ranks_survive_a_time_edit_that_changes_the_fingerprint() -> None:
    state = box({"Ana": [30.0], "Bob": [30.0]}, {"Ana": [90.0], "Bob": [80.0]})
    event = lead_ranking(state).tie_events[0]
    state = prev_decision(state, event["fingerprint"], "yes", {"Ana": 2, "Bob": 1}, lineage=event["lineage_key"])
    edited = {**state, "times": {"Ana": [91.0], "Bob": [80.0]}}
    edited_event = only_event({**edited, "prevRoundsTiebreakLineageRanks": {}}, status="pending")
    assert edited_event["fingerprint"] != event["fingerprint"]
    assert edited_event["lineage_key"] == event["lineage_key"]
    assert ranks(edited) == {"Bob": 1, "Ana": 2}  # an automatic "yes" from the lineage ranks
    assert lead_ranking(edited).resolved


def test_lineage_ranks_keep_the_split_when_the_tie_grows_and_ask_only_for_the_newcomer() -> None:
    state = box({"Ana": [10.0], "Bob": [10.0], "Dan": [8.0]})
    event = lead_ranking(state).tie_events[0]
    state = prev_decision(state, event["fingerprint"], "yes", {"Ana": 1, "Bob": 2}, lineage=event["lineage_key"])
    grown = {**state, "scores": {**state["scores"], "Cris": [10.0]}}
    assert ranks(grown) == {"Ana": 1, "Bob": 2, "Cris": 3, "Dan": 4}
    only_event(grown, status="pending", detail="previous_rounds_missing_members", lineage_key=event["lineage_key"],
               known_prev_ranks_by_name={"Ana": 1, "Bob": 2}, missing_prev_rounds_members=["Cris"])


# --- unscored athletes (§10 item 12) -------------------------------------------------------------------

def test_unscored_athletes_on_route_2_raise_no_tie_events() -> None:
    state = box({"Ana": [30.0], "Bob": [25.0], "Cris": [20.0]}, route_index=2, names=["Ana", "Bob", "Cris"])
    ranking = lead_ranking(state)
    assert [(r["name"], r["rank"], r["score"]) for r in ranking.rows] == [("Ana", 1, None), ("Bob", 1, None),
                                                                        ("Cris", 1, None)]
    assert (ranking.tie_events, ranking.has_eligible_tie, ranking.resolved, ranking.current_fingerprint) == (
        [], False, True, None)
    one_scored = {**state, "scores": {**state["scores"], "Bob": [25.0, 3.0]}}
    assert ranks(one_scored) == {"Bob": 1, "Ana": 2, "Cris": 2}
    assert lead_ranking(one_scored).tie_events == []


# --- names ---------------------------------------------------------------------------------------------

def test_the_lineage_key_is_the_uis_sha1_of_the_literal_payload() -> None:
    text = '{"context":"overall","performance":{"hold":20,"plus":true,"topped":false},"round":"Final|route:2"}'
    expected = "tb-lineage:" + hashlib.sha1(text.encode("utf-8")).hexdigest()
    assert lineage_key(2, Performance(False, 20, True)) == expected
    state = box({"Ana": [1.0, 20.5], "Bob": [2.0, 20.1]}, route_index=2)
    assert lead_ranking(state).tie_events[0]["lineage_key"] == expected


def test_fingerprints_are_stable_and_ignore_int_versus_float_times() -> None:
    first = box({"Ana": [30.0], "Bob": [30.0]}, {"Ana": [90.0], "Bob": [80.0]})
    second = box({"Bob": [30], "Ana": [30]}, {"Bob": [80], "Ana": [90]})
    assert lead_ranking(first).tie_events == lead_ranking(second).tie_events
    assert lead_ranking(first).current_fingerprint == lead_ranking(second).current_fingerprint


def test_the_last_decision_applies_to_its_fingerprint_when_the_map_lacks_it() -> None:
    state = box({"Ana": [30.0], "Bob": [30.0]}, {"Ana": [90.0], "Bob": [80.0]})
    fp = lead_ranking(state).tie_events[0]["fingerprint"]
    state = {**state, "prevRoundsTiebreakResolvedFingerprint": fp, "prevRoundsTiebreakResolvedDecision": "no"}
    time_fp = only_event(state, stage="time")["fingerprint"]
    state = {**state, "timeTiebreakResolvedFingerprint": time_fp, "timeTiebreakResolvedDecision": "yes"}
    assert ranks(state) == {"Bob": 1, "Ana": 2}
