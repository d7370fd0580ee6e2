"""state_from_backup: Belay's own snapshots always restore; anything a person hands in is held to
the rules' bounds, and the escalada fields beside `state` must have their types and agree with it."""

from typing import Any

import orjson
import pytest

from actors.rules.backups import backup_snapshot, state_from_backup
from actors.rules.limits import MAX_RESTORED_VERSION

from .helpers import initiated_box, run, send
from .test_tiebreak_commands import event, prev_rounds, tied_box, time_yes

NOW = 1_700_000_000_000


def decided_box() -> dict[str, Any]:
    """A box with clubs, scores, times, the time criterion, decisions of both kinds and sticky badges."""
    state = tied_box()
    state = {**state, "competitors": [{**c, "club": "CS Arad"} if c["nume"] == "Ana" else c
                                      for c in state["competitors"]]}
    state = send(state, prev_rounds(event(state)["fingerprint"], "no", prevRoundsTiebreakRanksByName={})).state
    state = send(state, time_yes(event(state)["fingerprint"])).state
    state = run(state, prev_rounds("pr:other", "yes", prevRoundsTiebreakLineageKey="lk",
                                   prevRoundsTiebreakRanksByName={"Ana": 1, "Bob": 2}),
                {"type": "PROGRESS_UPDATE", "delta": 1}, {"type": "PROGRESS_UPDATE", "delta": 0.1}, now_ms=NOW)
    assert state["leadTiebreakBadgesByName"] and state["timeTiebreakDecisions"] and state["prevRoundsTiebreakRanks"]
    return state


def saved(state: dict[str, Any], box_id: int = 3, now_ms: int = NOW) -> dict[str, Any]:
    """What GET /api/admin/backup/box/{id} sends, as the client reads it back."""
    return orjson.loads(orjson.dumps(backup_snapshot(state, box_id, now_ms)))


def refusal(snapshot: object) -> str:
    with pytest.raises(ValueError) as caught:
        state_from_backup(snapshot)
    return str(caught.value)


@pytest.mark.parametrize("clock", ["idle", "running", "paused", "running without preset"])
def test_every_snapshot_belay_writes_restores_to_the_same_state(clock: str) -> None:
    state = decided_box() if clock != "running without preset" else initiated_box(preset=None)
    if clock.startswith("running"):
        state = send(state, {"type": "START_TIMER"}, now_ms=NOW).state
    if clock == "paused":
        state = run(state, {"type": "START_TIMER"}, {"type": "STOP_TIMER"}, now_ms=NOW + 1234)
    for read_at in (NOW, NOW + 17_321, NOW + 10**9):  # the backup may be taken long after the last command
        assert state_from_backup(saved(state, 3, read_at)) == (3, state)


def test_a_snapshot_at_the_top_of_the_version_range_is_refused_for_lack_of_room() -> None:
    at_most = {**initiated_box(), "boxVersion": MAX_RESTORED_VERSION}
    assert state_from_backup(saved(at_most))[1]["boxVersion"] == MAX_RESTORED_VERSION
    too_high = saved({**initiated_box(), "boxVersion": MAX_RESTORED_VERSION + 1})
    assert refusal(too_high) == (f"state.boxVersion must be at most {MAX_RESTORED_VERSION}, so that the restored box "
                                 "has room for later commands")


def test_the_issue_s_snapshot_is_refused_naming_state_box_version() -> None:
    snapshot = saved(initiated_box())
    snapshot["state"]["boxVersion"] = snapshot["boxVersion"] = 2**64 - 3
    assert refusal(snapshot) == "state.boxVersion must be an integer from 0 to 9007199254740991"


@pytest.mark.parametrize("key,value", [
    ("boxVersion", "1"), ("boxVersion", 1.0e308), ("boxVersion", 2**64 - 3), ("sessionId", 7), ("initiated", "true"),
    ("routeIndex", 0), ("routesCount", 1e308), ("holdsCount", -1), ("holdsCounts", [2**64]), ("holdCount", "3"),
    ("started", 1), ("timerState", "stopped"), ("categorie", ["U16"]), ("competitors", {}), ("currentClimber", 1),
    ("preparingClimber", "Nobody"), ("registeredTime", 2**53), ("timeCriterionEnabled", "no"),
    ("timerPreset", 300), ("timerPresetSec", 2**64), ("scores", []), ("times", {"Ana": [1e308]}),
    ("clubs", {"Ana": "Elsewhere"}), ("competitorsAll", [{"name": "Ana"}]),
])
def test_an_escalada_field_that_contradicts_the_state_is_refused_by_name(key: str, value: object) -> None:
    snapshot = {**saved(decided_box()), key: value}
    reason = refusal(snapshot)
    assert reason.startswith(f"{key} ") and "state." in reason, reason


@pytest.mark.parametrize("key,value,expected", [
    ("remaining", "abc", "remaining must be a number from 0 to 9999 or null"),
    ("remaining", -1, "remaining must be a number from 0 to 9999 or null"),
    ("remaining", 1e308, "remaining must be a number from 0 to 9999 or null"),
    ("remaining", 12.5, "remaining does not match the clock in state"),
    ("competitionId", 2**64, "competitionId must be an integer from 0 to 9007199254740991 or null"),
    ("clubs", {"Ana": 3}, "clubs must map at most 500 names to clubs"),
    ("competitorsAll", "Ana", "competitorsAll must be a list of at most 500 objects"),
    ("ranking", {"1": "Ana"}, "ranking must be a list"),
])
def test_fields_never_stored_are_still_type_checked(key: str, value: object, expected: str) -> None:
    assert refusal({**saved(decided_box()), key: value}) == expected


def test_a_running_clock_s_remaining_is_checked_for_its_range_only() -> None:
    running = send(decided_box(), {"type": "START_TIMER"}, now_ms=NOW).state
    assert state_from_backup({**saved(running), "remaining": 3.25})[1] == running
    assert refusal({**saved(running), "remaining": 10_000}).startswith("remaining must be")


def test_nulls_beside_the_state_count_as_absent_and_a_snapshot_may_move_to_another_box() -> None:
    snapshot = saved(decided_box(), box_id=3)
    trimmed = {key: None if key not in ("boxId", "state") else value for key, value in snapshot.items()}
    assert state_from_backup(trimmed)[1] == decided_box()
    assert state_from_backup({**snapshot, "boxId": 4}) == (4, decided_box())


def test_a_hostile_deep_value_beside_the_state_is_refused_without_recursing_into_it() -> None:
    deep: object = 1
    for _ in range(900):
        deep = [deep]
    assert refusal({**saved(decided_box()), "holdsCounts": deep}) == "holdsCounts does not match state.holdsCounts"
    # The reference's ranking table is never stored: only its type counts.
    assert state_from_backup({**saved(decided_box()), "ranking": [deep]})[1] == decided_box()


# -- escalada backend snapshots (no `state`) -----------------------------------------------------

REFERENCE = {
    "boxId": 2, "competitionId": None, "initiated": True, "holdsCount": 25, "holdsCounts": [25, 30], "routeIndex": 1,
    "routesCount": 2, "currentClimber": "Ana Pop", "started": False, "timerState": "paused", "holdCount": 7,
    "competitors": [{"nume": "Ana Pop", "marked": False, "club": "CS Arad"},
                    {"nume": "Bogdan", "marked": 1, "club": None}],
    "categorie": "U16", "clubs": {"Ana Pop": "CS Arad"}, "registeredTime": 41.2, "remaining": 88.5,
    "timeCriterionEnabled": None, "timerPreset": "05:00", "timerPresetSec": 300, "sessionId": "c0ffee",
    "boxVersion": 57, "competitorsAll": [{"id": None, "name": "Ana Pop"}], "scores": {"Bogdan": [7.1]},
    "times": {"Bogdan": [41.2]}, "ranking": [{"Rank": 1, "Nume": "Bogdan"}],
}


def test_an_escalada_backend_snapshot_becomes_a_valid_state() -> None:
    box_id, state = state_from_backup(REFERENCE)
    assert box_id == 2 and state["boxVersion"] == 57 and state["timerRemainingSec"] == 88.5
    assert state["competitors"] == [{"nume": "Ana Pop", "marked": False, "club": "CS Arad"},
                                    {"nume": "Bogdan", "marked": True}]
    assert (state["lastRegisteredTime"], state["timeCriterionEnabled"], state["preparingClimber"]) == (41.2, False, "")


def test_an_older_escalada_snapshot_gets_its_clock_fields_derived() -> None:
    old = {key: value for key, value in REFERENCE.items() if key not in ("timerState", "timerPresetSec")}
    state = state_from_backup({**old, "started": True})[1]
    assert (state["timerState"], state["timerPresetSec"]) == ("running", 300)


@pytest.mark.parametrize("key,value,expected", [
    ("boxVersion", 2**64 - 3, "boxVersion must be an integer from 0 to 9007199254740991"),
    ("boxVersion", 2**53, "boxVersion must be an integer from 0 to 9007199254740991"),
    ("boxVersion", MAX_RESTORED_VERSION + 1, f"boxVersion must be at most {MAX_RESTORED_VERSION}"),
    ("holdCount", 1e308, "holdCount must be a number from 0 to 25 in steps of 0.1"),
    ("routeIndex", 0, "routeIndex must be an integer from 1 to 999"),
    ("remaining", -1, "remaining must be a number from 0 to 9999 or null"),
    ("registeredTime", "late", "registeredTime must be a number from 0 to 3600 or null"),
    ("routesCount", 2**31, "routesCount must be an integer from 1 to 999"),
    ("sessionId", ["s"], "sessionId must be 1 to 64 printable characters"),
    ("competitors", [{"nume": "Ana Pop"}, "Bogdan"],
     "competitors[1] must be an object with nume, marked and club only"),
    ("competitors", [{"club": "x"}], "competitors[0].nume must be a name of 1 to 255 characters"),
    ("scores", {"Bogdan": [7.1, float("nan")]}, "scores['Bogdan'] must be a list"),
])
def test_an_escalada_snapshot_out_of_bounds_is_refused_naming_its_own_field(key: str, value: object,
                                                                            expected: str) -> None:
    assert refusal({**REFERENCE, key: value}).startswith(expected)


def as_javascript_writes_it(value: Any) -> Any:
    """The UI's restore dialog sends the file through JSON.parse and JSON.stringify: 7.0 comes back as 7."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, list):
        return [as_javascript_writes_it(item) for item in value]
    if isinstance(value, dict):
        return {key: as_javascript_writes_it(item) for key, item in value.items()}
    return value


@pytest.mark.parametrize("clock", ["idle", "running", "paused"])
def test_a_backup_that_went_through_the_ui_s_javascript_still_restores(clock: str) -> None:
    state = decided_box()
    if clock != "idle":
        state = send(state, {"type": "START_TIMER"}, now_ms=NOW).state
    if clock == "paused":
        state = send(state, {"type": "STOP_TIMER"}, now_ms=NOW + 2_000).state
    snapshot = as_javascript_writes_it(saved(state))
    assert snapshot["state"]["holdCount"] == 1.1 and isinstance(snapshot["remaining"], (int, float))
    box_id, restored = state_from_backup(snapshot)
    assert box_id == 3 and restored == state  # equal numbers: 240 == 240.0
