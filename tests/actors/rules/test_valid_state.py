"""check_state: a state is accepted only if the rules could have produced it, with the commands' own bounds."""

from typing import Any

import pytest

from actors.rules import default_state, state_from_checkpoint
from actors.rules.limits import (
    ACTION_WINDOW,
    MAX_BOX_VERSION,
    MAX_COMPETITORS,
    MAX_NAMES,
    MAX_ROUTES,
    MAX_TIEBREAK_ENTRIES,
)
from actors.rules.valid_state import InvalidState, check_state

from .helpers import initiated_box, run

HUGE = [2**31, 2**53, 2**64 - 3, 2**64, 2**70, 10**30, 1e308, -1, -(2**63), float("nan"), float("inf"), True]


def refusal(state: dict[str, Any]) -> str:
    with pytest.raises(InvalidState) as caught:
        check_state(state)
    return str(caught.value)


def with_(**changes: Any) -> dict[str, Any]:
    return {**initiated_box(), **changes}


def test_the_issue_s_numbers_are_refused_with_the_field_and_its_bounds() -> None:
    assert refusal(with_(boxVersion=2**64 - 3)) == "boxVersion must be an integer from 0 to 9007199254740991"
    assert refusal(with_(boxVersion=2**53)) == "boxVersion must be an integer from 0 to 9007199254740991"
    assert refusal(with_(holdCount=1e308)) == "holdCount must be a number from 0 to 10 in steps of 0.1"
    assert refusal(with_(routeIndex=0)) == "routeIndex must be an integer from 1 to 999"
    assert refusal(with_(remaining=-1)) == "remaining must be a number from 0 to 9999 or null"


def test_the_highest_version_a_client_can_count_to_is_accepted() -> None:
    check_state(with_(boxVersion=MAX_BOX_VERSION))


@pytest.mark.parametrize("key", ["boxVersion", "holdsCount", "routeIndex", "routesCount", "holdCount",
                                 "timerRemainingSec", "remaining", "lastRegisteredTime", "timerPresetSec",
                                 "timerEndsAtMs"])
@pytest.mark.parametrize("value", HUGE)
def test_no_numeric_field_takes_a_number_beyond_its_bounds(key: str, value: object) -> None:
    state = with_(**{key: value})
    if key == "timerEndsAtMs":
        state.update(timerState="running", started=True)
    if key in ("boxVersion", "timerEndsAtMs") and type(value) is int and 0 <= value < 2**53:
        check_state(state)  # any JS-safe count of commands, or epoch ms the clock could have set
        return
    assert refusal(state).startswith(f"{key} must")


@pytest.mark.parametrize("value", [1.5, 3.0, "3", None, [3]])
def test_integer_fields_refuse_floats_and_other_types(value: object) -> None:
    for key in ("boxVersion", "holdsCount", "routeIndex", "routesCount"):
        assert refusal(with_(**{key: value})).startswith(f"{key} must")


@pytest.mark.parametrize("key,value,expected", [
    ("sessionId", "", "sessionId must be 1 to 64 printable characters"),
    ("sessionId", "x" * 65, "sessionId must be 1 to 64 printable characters"),
    ("sessionId", "a\nb", "sessionId must be 1 to 64 printable characters"),
    ("initiated", 1, "initiated must be true or false"),
    ("timeCriterionEnabled", "yes", "timeCriterionEnabled must be true or false"),
    ("categorie", "c" * 101, "categorie must be a string of at most 100 characters"),
    ("holdsCounts", [10] * (MAX_ROUTES + 1), "holdsCounts must be a list of at most 999 integers from 0 to 100"),
    ("holdsCounts", [101], "holdsCounts must be a list of at most 999 integers from 0 to 100"),
    ("holdsCounts", [2**64], "holdsCounts must be a list of at most 999 integers from 0 to 100"),
    ("holdCount", 7.15, "holdCount must be a number from 0 to 10 in steps of 0.1"),
    ("holdCount", 10.1, "holdCount must be a number from 0 to 10 in steps of 0.1"),
    ("timerState", "RUNNING", "timerState must be idle, running or paused"),
    ("started", True, "started must be true exactly when timerState is running"),
    ("timerEndsAtMs", 5_000, "timerEndsAtMs must be null unless timerState is running"),
    ("timerRemainingSec", 10_000, "timerRemainingSec must be a number from 0 to 9999 or null"),
    ("lastRegisteredTime", 3600.5, "lastRegisteredTime must be a number from 0 to 3600 or null"),
    ("timerPreset", "5:00", 'timerPreset must be "MM:SS" (minutes 00-99, seconds 00-59) or null'),
    ("timerPreset", "05:60", 'timerPreset must be "MM:SS" (minutes 00-99, seconds 00-59) or null'),
    ("timerPresetSec", 301, "timerPresetSec must be 300, the seconds of timerPreset"),
    ("currentClimber", "Nobody", "currentClimber must be empty or the name of a competitor"),
    ("preparingClimber", 3, "preparingClimber must be empty or the name of a competitor"),
    ("competitors", [{"nume": "Ana"}] * (MAX_COMPETITORS + 1), "competitors must be a list of at most 500 competitors"),
    ("competitors", [{"nume": "Ana", "bib": 2**64}],
     "competitors[0] must be an object with nume, marked and club only"),
    ("competitors", [{"nume": ""}], "competitors[0].nume must be a name of 1 to 255 characters"),
    ("competitors", [{"nume": "a" * 256}], "competitors[0].nume must be a name of 1 to 255 characters"),
    ("competitors", [{"nume": "Ana", "marked": 1}], "competitors[0].marked must be true or false"),
    ("competitors", [{"nume": "Ana", "club": None}], "competitors[0].club must be a string of at most 255 characters"),
    ("scores", {"Ana": [101]}, "scores['Ana'] must be a list of at most 999 numbers from 0 to 100 or nulls"),
    ("scores", {"Ana": [1e308]}, "scores['Ana'] must be a list of at most 999 numbers from 0 to 100 or nulls"),
    ("scores", {"Ana": [None] * (MAX_ROUTES + 1)},
     "scores['Ana'] must be a list of at most 999 numbers from 0 to 100 or nulls"),
    ("scores", {"": [1]}, "scores[''] must be keyed by a name of 1 to 255 characters"),
    ("times", {"Ana": [-1]}, "times['Ana'] must be a list of at most 999 numbers from 0 to 3600 or nulls"),
    ("times", {"Ana": [2**64]}, "times['Ana'] must be a list of at most 999 numbers from 0 to 3600 or nulls"),
    ("times", {f"n{i}": [1] for i in range(MAX_NAMES + 1)}, "times must be an object of at most 2000 names"),
    ("recentActionIds", ["a"] * (ACTION_WINDOW + 1), "recentActionIds must be a list of at most 256 strings"),
    ("recentActionIds", ["x" * 129], "recentActionIds must be a list of at most 256 strings"),
    ("timeTiebreakDecisions", {f"fp{i}": "yes" for i in range(MAX_TIEBREAK_ENTRIES + 1)},
     "timeTiebreakDecisions must map at most 1000 keys"),
    ("timeTiebreakResolvedFingerprint", "f" * 257, "timeTiebreakResolvedFingerprint must be a string of 1 to 256"),
    ("prevRoundsTiebreakRanks", {"fp": {"Ana": 2**64}}, "prevRoundsTiebreakRanks must map"),
    ("prevRoundsTiebreakLineageRanks", {"lk": {"Ana": 1_000_001}}, "prevRoundsTiebreakLineageRanks must map"),
    ("prevRoundsTiebreakOrders", {"fp": ["Ana"] * (MAX_COMPETITORS + 1)}, "prevRoundsTiebreakOrders must map"),
    ("leadTiebreakBadgesByName", {"Ana": {"tb_prev": 1, "tb_time": False}}, "leadTiebreakBadgesByName must map"),
])
def test_every_field_is_held_to_what_the_commands_can_write(key: str, value: object, expected: str) -> None:
    assert refusal(with_(**{key: value})).startswith(expected)


def test_nesting_where_the_rules_write_flat_values_is_refused() -> None:
    deep: object = 1
    for _ in range(300):  # orjson reads up to 1024 levels but writes only 254: such a state would never encode
        deep = [deep]
    assert refusal(with_(competitors=[{"nume": "Ana", "club": deep}])).startswith("competitors[0].club")
    assert refusal(with_(scores={"Ana": deep})).startswith("scores['Ana']")
    assert refusal(with_(prevRoundsTiebreakOrders={"fp": deep})).startswith("prevRoundsTiebreakOrders")


def test_a_huge_hostile_key_is_not_echoed_whole_in_the_reason() -> None:
    reason = refusal(with_(scores={"x" * 1_000_000: ["bad"]}))
    assert len(reason) < 200


def test_states_the_rules_legitimately_produce_are_accepted() -> None:
    box = initiated_box(preset="01:00")
    # RESET_BOX keeps routeIndex but sets routesCount to 1: the index may exceed the count.
    check_state(run(initiated_box(route_index=3, routes_count=3), {"type": "RESET_BOX"}))
    # A running clock has a deadline; a paused one keeps its remainder; "+" gives tenths.
    check_state(run(box, {"type": "START_TIMER"}, {"type": "PROGRESS_UPDATE", "delta": 0.1}, now_ms=10**12))
    check_state(run(box, {"type": "START_TIMER"}, {"type": "STOP_TIMER"}, now_ms=10**12))
    # No preset and no time: a running clock without a deadline.
    check_state(run(initiated_box(preset=None), {"type": "START_TIMER"}))
    check_state(default_state("fresh"))


def test_an_older_checkpoint_without_the_newer_keys_still_loads() -> None:
    old = {"sessionId": "s", "boxVersion": 3, "initiated": True, "competitors": [{"nume": "Ana", "marked": False}],
           "currentClimber": "Ana", "holdsCount": 10, "holdCount": 4, "timerPreset": "04:00", "timerPresetSec": 240}
    assert state_from_checkpoint(old)["holdCount"] == 4


def test_a_checkpoint_refusal_names_the_field() -> None:
    with pytest.raises(InvalidState) as caught:
        state_from_checkpoint({**default_state("s"), "boxVersion": 2**64 - 3})
    assert caught.value.field == "boxVersion"
    assert str(caught.value.under("state")) == "state.boxVersion must be an integer from 0 to 9007199254740991"
