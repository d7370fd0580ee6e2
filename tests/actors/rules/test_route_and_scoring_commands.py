"""INIT_ROUTE, PROGRESS_UPDATE, REGISTER_TIME, SUBMIT_SCORE and SET_TIME_CRITERION."""

import pytest

from actors.rules import CommandError, default_state

from .helpers import NAMES, NEW_SESSION, SESSION, initiated_box, run, send


def init_body(**extra: object) -> dict[str, object]:
    return {"type": "INIT_ROUTE", "routeIndex": 1, "holdsCount": 20, **extra}


def test_init_route_starts_the_route_with_the_first_two_competitors() -> None:
    out = send(default_state(SESSION), init_body(
        competitors=[{"nume": "Ana", "club": "CSM"}, {"nume": "Bob"}, {"nume": "Cris"}],
        routesCount=2, holdsCounts=[20, 25], categorie="U16-Boys", timerPreset="5:30",
    ))
    state = out.state
    assert state["initiated"] is True
    assert (state["routeIndex"], state["holdsCount"], state["routesCount"], state["holdsCounts"]) == (
        1, 20, 2, [20, 25])
    assert (state["currentClimber"], state["preparingClimber"]) == ("Ana", "Bob")
    assert state["competitors"][0] == {"nume": "Ana", "marked": False, "club": "CSM"}
    assert (state["categorie"], state["timerPreset"], state["timerPresetSec"]) == ("U16-Boys", "05:30", 330)
    assert (state["started"], state["timerState"], state["holdCount"]) == (False, "idle", 0.0)
    assert (state["timerRemainingSec"], state["timerEndsAtMs"]) == (330.0, None)
    assert (out.changed, out.snapshot, out.public, out.durable) == (True, True, "BOX_STATUS_UPDATE", True)


def test_init_route_bumps_the_version_exactly_once_and_keeps_the_session() -> None:
    out = send(default_state(SESSION), init_body())
    assert out.state["boxVersion"] == 1 and out.state["sessionId"] == SESSION
    assert out.echo["boxVersion"] == 1 and out.echo["sessionId"] == SESSION


def test_init_route_echo_carries_the_route_setup_and_no_junk() -> None:
    out = send(default_state(SESSION), init_body(
        competitors=[{"nume": " Ana ", "marked": "1"}], holdsCounts=[20], routesCount=1,
        categorie="U16", timerPreset="4:00", currentClimber="junk", holdsCount_snap=20, actionId="a1",
    ))
    assert out.echo == {
        "type": "INIT_ROUTE",
        "boxId": 0,
        "boxVersion": 1,
        "sessionId": SESSION,
        "routeIndex": 1,
        "holdsCount": 20,
        "routesCount": 1,
        "holdsCounts": [20],
        "competitors": [{"nume": "Ana", "marked": True}],
        "categorie": "U16",
        "timerPreset": "04:00",
    }


def test_init_route_with_an_empty_list_has_no_current_climber() -> None:
    state = send(default_state(SESSION), init_body(competitors=[])).state
    assert (state["currentClimber"], state["preparingClimber"]) == ("", "")


def test_init_route_keeps_categorie_and_preset_when_not_sent() -> None:
    box = initiated_box(preset="03:00")
    state = send(box, init_body(routeIndex=2)).state
    assert (state["categorie"], state["timerPreset"], state["timerRemainingSec"]) == ("U16", "03:00", 180.0)


def test_init_route_preserves_scores_for_the_next_route_and_clears_them_on_route_1() -> None:
    box = run(initiated_box(), {"type": "SUBMIT_SCORE", "competitor": "Ana", "score": 5, "registeredTime": 30})
    route_2 = send(box, init_body(routeIndex=2, competitors=[{"nume": n} for n in NAMES])).state
    assert route_2["scores"] == {"Ana": [5.0]} and route_2["times"] == {"Ana": [30.0]}
    route_1 = send(route_2, init_body(routeIndex=1)).state
    assert route_1["scores"] == {} and route_1["times"] == {}


def test_init_route_clears_tiebreak_decisions_but_keeps_preferences_and_time_criterion() -> None:
    box = run(
        initiated_box(),
        {"type": "SET_TIME_CRITERION", "timeCriterionEnabled": True},
        {"type": "SET_TIME_TIEBREAK_DECISION", "timeTiebreakDecision": "yes", "timeTiebreakFingerprint": "fp1"},
        {"type": "SET_PREV_ROUNDS_TIEBREAK_DECISION", "prevRoundsTiebreakDecision": "yes",
         "prevRoundsTiebreakFingerprint": "fp2", "prevRoundsTiebreakLineageKey": "lk",
         "prevRoundsTiebreakRanksByName": {"Ana": 1, "Bob": 2}},
    )
    state = send(box, init_body(routeIndex=2)).state
    assert state["timeTiebreakDecisions"] == {} and state["prevRoundsTiebreakLineageRanks"] == {}
    assert state["prevRoundsTiebreakRanks"] == {} and state["timeTiebreakResolvedFingerprint"] is None
    assert state["timeTiebreakPreference"] == "yes" and state["prevRoundsTiebreakPreference"] == "yes"
    assert state["timeCriterionEnabled"] is True


def test_progress_update_increments_whole_holds() -> None:
    box = run(initiated_box(), {"type": "PROGRESS_UPDATE", "delta": 1}, {"type": "PROGRESS_UPDATE", "delta": 1})
    assert box["holdCount"] == 2


def test_progress_update_half_hold_and_negative_deltas_add_exactly() -> None:
    assert run(initiated_box(), *[{"type": "PROGRESS_UPDATE", "delta": d} for d in (1, 0.5)])["holdCount"] == 1.5
    assert run(initiated_box(), *[{"type": "PROGRESS_UPDATE", "delta": d} for d in (5, -2)])["holdCount"] == 3


def test_plus_one_after_a_plus_moves_to_the_next_whole_hold() -> None:
    box = run(initiated_box(), *[{"type": "PROGRESS_UPDATE", "delta": d} for d in (1, 1, 0.1)])
    assert box["holdCount"] == 2.1
    assert send(box, {"type": "PROGRESS_UPDATE", "delta": 1}).state["holdCount"] == 3.0


def test_progress_update_stays_within_zero_and_the_holds_count() -> None:
    assert run(initiated_box(holds_count=3), {"type": "PROGRESS_UPDATE", "delta": 5})["holdCount"] == 3
    assert run(initiated_box(), {"type": "PROGRESS_UPDATE", "delta": -10})["holdCount"] == 0
    assert run(initiated_box(holds_count=0), {"type": "PROGRESS_UPDATE", "delta": 10})["holdCount"] == 10


def test_progress_update_echoes_the_servers_hold_count_and_pushes_a_flow_update() -> None:
    out = send(initiated_box(holds_count=3), {"type": "PROGRESS_UPDATE", "delta": 5})
    assert out.echo["delta"] == 5.0 and out.echo["holdCount"] == 3.0
    assert (out.changed, out.snapshot, out.public, out.durable) == (True, True, "BOX_FLOW_UPDATE", True)


def test_register_time_stores_floats_and_zero() -> None:
    assert run(initiated_box(), {"type": "REGISTER_TIME", "registeredTime": 15.5})["lastRegisteredTime"] == 15.5
    out = send(initiated_box(), {"type": "REGISTER_TIME", "time": 0})
    assert out.state["lastRegisteredTime"] == 0.0 and out.public == "BOX_FLOW_UPDATE"


def test_register_time_with_a_null_value_is_rejected_and_leaves_the_time() -> None:
    box = run(initiated_box(), {"type": "REGISTER_TIME", "registeredTime": 10})
    with pytest.raises(CommandError):
        send(box, {"type": "REGISTER_TIME", "registeredTime": None})
    assert box["lastRegisteredTime"] == 10.0


def test_submit_score_stores_the_score_and_time_for_the_active_route() -> None:
    box = initiated_box(route_index=2)
    state = send(box, {"type": "SUBMIT_SCORE", "competitor": "Bob", "score": 7.1, "registeredTime": 61}).state
    assert state["scores"] == {"Bob": [None, 7.1]} and state["times"] == {"Bob": [None, 61.0]}


def test_submit_score_advances_to_next_unmarked_climber() -> None:
    box = initiated_box(names=["Ana", "Bob", "Cris", "Dan"])
    box = run(box, {"type": "SUBMIT_SCORE", "competitor": "Bob", "score": 4})  # not current: queue stays
    assert (box["currentClimber"], box["preparingClimber"]) == ("Ana", "Bob")
    out = send(box, {"type": "SUBMIT_SCORE", "competitor": "Ana", "score": 5})
    state = out.state
    assert [c["marked"] for c in state["competitors"]] == [True, True, False, False]
    assert (state["currentClimber"], state["preparingClimber"]) == ("Cris", "Dan")
    assert (out.public, out.snapshot) == ("BOX_RANKING_UPDATE", True)


def test_submit_score_for_the_last_climber_empties_the_queue() -> None:
    box = run(initiated_box(names=["Ana", "Bob"]),
              {"type": "SUBMIT_SCORE", "competitor": "Ana", "score": 1},
              {"type": "SUBMIT_SCORE", "competitor": "Bob", "score": 2})
    assert (box["currentClimber"], box["preparingClimber"]) == ("", "")


def test_submit_score_resets_the_timer_and_progress() -> None:
    box = run(initiated_box(preset="05:00"), {"type": "START_TIMER"}, {"type": "PROGRESS_UPDATE", "delta": 3})
    state = send(box, {"type": "SUBMIT_SCORE", "competitor": "Ana", "score": 3}, now_ms=90_000).state
    assert (state["started"], state["timerState"], state["holdCount"]) == (False, "idle", 0.0)
    assert (state["timerRemainingSec"], state["timerEndsAtMs"], state["remaining"]) == (300.0, None, None)


def test_submit_score_keeps_the_last_registered_time_when_none_is_sent() -> None:
    box = run(initiated_box(), {"type": "REGISTER_TIME", "registeredTime": 12})
    out = send(box, {"type": "SUBMIT_SCORE", "competitor": "Ana", "score": 5})
    assert out.state["lastRegisteredTime"] == 12.0 and out.state["times"] == {"Ana": [12.0]}
    assert out.echo["registeredTime"] == 12.0 and out.echo["competitor"] == "Ana"


def test_submit_score_by_index_resolves_the_name_from_the_list() -> None:
    out = send(initiated_box(), {"type": "SUBMIT_SCORE", "idx": 0, "score": 8})
    assert out.state["scores"] == {"Ana": [8.0]} and out.echo["competitor"] == "Ana"
    assert out.state["currentClimber"] == "Bob"


def test_submit_score_by_competitor_idx_scores_and_advances() -> None:
    state = send(initiated_box(), {"type": "SUBMIT_SCORE", "competitorIdx": 0, "score": 8}).state
    assert state["scores"] == {"Ana": [8.0]} and state["currentClimber"] == "Bob"


def test_submit_score_prefers_idx_over_a_competitor_name() -> None:
    out = send(initiated_box(), {"type": "SUBMIT_SCORE", "idx": 1, "competitor": "Ana", "score": 8})
    assert out.echo["competitor"] == "Bob" and out.state["scores"] == {"Bob": [8.0]}


def test_submit_score_with_an_out_of_range_index_is_a_command_error() -> None:
    box = initiated_box(names=["Ana", "Bob"])
    with pytest.raises(CommandError) as caught:
        send(box, {"type": "SUBMIT_SCORE", "idx": 2, "score": 8})
    assert caught.value.detail.startswith("Invalid command: idx 2 is out of range")


def test_submit_score_for_an_unknown_name_scores_without_moving_the_queue() -> None:
    state = send(initiated_box(), {"type": "SUBMIT_SCORE", "competitor": "Zed", "score": 4}).state
    assert state["scores"] == {"Zed": [4.0]} and state["currentClimber"] == "Ana"
    assert not any(c["marked"] for c in state["competitors"])


def test_submit_score_without_a_score_marks_and_advances_only() -> None:
    state = send(initiated_box(), {"type": "SUBMIT_SCORE", "competitor": "Ana"}).state
    assert state["scores"] == {} and state["currentClimber"] == "Bob"


def test_submit_score_skips_already_marked_climbers_when_advancing() -> None:
    box = initiated_box(names=["Ana", "Bob", "Cris", "Dan"])
    box = run(box, {"type": "SUBMIT_SCORE", "competitor": "Bob", "score": 1},
              {"type": "SUBMIT_SCORE", "competitor": "Cris", "score": 1})
    state = send(box, {"type": "SUBMIT_SCORE", "competitor": "Ana", "score": 1}).state
    assert (state["currentClimber"], state["preparingClimber"]) == ("Dan", "")


def test_submit_score_matches_names_after_normalisation() -> None:
    box = initiated_box(names=["Ștefan Pop", "Bob"])
    state = send(box, {"type": "SUBMIT_SCORE", "competitor": "S\u0326tefan  Pop\u200b", "score": 2}).state
    assert state["scores"] == {"Ștefan Pop": [2.0]} and state["currentClimber"] == "Bob"


def test_set_time_criterion_is_stored_per_box() -> None:
    out = send(initiated_box(), {"type": "SET_TIME_CRITERION", "timeCriterionEnabled": True})
    assert out.state["timeCriterionEnabled"] is True
    assert out.echo["timeCriterionEnabled"] is True
    assert (out.public, out.snapshot, out.durable) == ("BOX_RANKING_UPDATE", True, True)


def test_full_contest_flow_sequence() -> None:
    box = initiated_box(names=["Ana", "Bob"], preset="01:00")
    box = send(box, {"type": "START_TIMER"}, now_ms=0).state
    box = send(box, {"type": "PROGRESS_UPDATE", "delta": 1}, now_ms=5_000).state
    box = send(box, {"type": "SUBMIT_SCORE", "competitor": "Ana", "score": 1}, now_ms=9_000).state
    assert box["currentClimber"] == "Bob" and box["boxVersion"] == 4
    box = send(box, {"type": "RESET_BOX"}, now_ms=10_000).state
    assert box["sessionId"] == NEW_SESSION and box["initiated"] is False and box["boxVersion"] == 5
