import pytest

from actors.rules import default_state, state_from_checkpoint

SECTION_4_KEYS = {
    "initiated", "holdsCount", "currentClimber", "preparingClimber", "started", "timerState", "holdCount",
    "routeIndex", "routesCount", "holdsCounts", "competitors", "categorie", "lastRegisteredTime", "remaining",
    "timerPreset", "timerPresetSec", "timerRemainingSec", "timerEndsAtMs", "timeCriterionEnabled",
    "timeTiebreakPreference", "timeTiebreakResolvedFingerprint", "timeTiebreakResolvedDecision",
    "timeTiebreakDecisions", "prevRoundsTiebreakPreference", "prevRoundsTiebreakResolvedFingerprint",
    "prevRoundsTiebreakResolvedDecision", "prevRoundsTiebreakDecisions", "prevRoundsTiebreakOrders",
    "prevRoundsTiebreakRanks", "prevRoundsTiebreakLineageRanks", "sessionId", "boxVersion",
}


def test_default_state_has_session_and_defaults() -> None:
    state = default_state("abc")
    assert set(state) == SECTION_4_KEYS | {"scores", "times", "recentActionIds", "leadTiebreakBadgesByName"}
    assert (state["sessionId"], state["boxVersion"], state["initiated"], state["timerState"]) == (
        "abc", 0, False, "idle")
    assert (state["routeIndex"], state["routesCount"], state["holdCount"]) == (1, 1, 0.0)


def test_default_states_share_no_mutable_values() -> None:
    first, second = default_state("a"), default_state("b")
    assert all(v is not second[k] for k, v in first.items() if isinstance(v, (list, dict)))


def test_a_saved_state_loads_back_unchanged() -> None:
    state = {**default_state("s"), "boxVersion": 7, "scores": {"Ana": [5.0]},
             "competitors": [{"nume": "Ana", "marked": True}]}
    assert state_from_checkpoint(state) == state


def test_an_old_file_gets_missing_keys_backfilled() -> None:
    old = {"sessionId": "s", "boxVersion": 3, "initiated": True, "competitors": [], "timeCriterionEnabled": None,
           "leadTiebreakBadgesByName": {}}
    state = state_from_checkpoint(old)
    assert set(state) == set(default_state("x"))
    assert (state["boxVersion"], state["initiated"], state["timeCriterionEnabled"]) == (3, True, False)
    assert state["recentActionIds"] == [] and state["scores"] == {}


@pytest.mark.parametrize(
    "obj",
    [
        None,
        [],
        {"boxVersion": 1},
        {"sessionId": "s"},
        {"sessionId": 5, "boxVersion": 1},
        {"sessionId": "", "boxVersion": 1},
        {"sessionId": "s", "boxVersion": "1"},
        {"sessionId": "s", "boxVersion": True},
        {"sessionId": "s", "boxVersion": -1},
        {"sessionId": "s", "boxVersion": 1, "initiated": "yes"},
        {"sessionId": "s", "boxVersion": 1, "competitors": {}},
        {"sessionId": "s", "boxVersion": 1, "competitors": [{"club": "x"}]},
        {"sessionId": "s", "boxVersion": 1, "scores": []},
        {"sessionId": "s", "boxVersion": 1, "timerState": "stopped"},
        {"sessionId": "s", "boxVersion": 1, "holdsCount": 2.5},
    ],
)
def test_a_malformed_checkpoint_is_refused_with_a_reason(obj: object) -> None:
    with pytest.raises(ValueError) as caught:
        state_from_checkpoint(obj)
    assert str(caught.value)
