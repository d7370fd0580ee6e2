"""The rules never leave the valid states: from any state check_state accepts, at any bound, every
accepted command gives a state it accepts again, and an event that always encodes.

If this failed, a state restored at a bound could take a command whose checkpoint the next start
refuses (the box lost), or whose event orjson cannot write (every later command a 500).
"""

from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.events import encode_event, encode_restore_event
from actors.messages import Origin
from actors.rules import CommandError, apply_command, build_public_box, build_snapshot, parse_command
from actors.rules.limits import (
    ACTION_WINDOW,
    MAX_BOX_VERSION,
    MAX_EPOCH_MS,
    MAX_NAMES,
    MAX_REMAINING_SEC,
    MAX_RESTORED_VERSION,
    MAX_TIEBREAK_ENTRIES,
)
from actors.rules.transitions import LAST_VERSION
from actors.rules.valid_state import check_state

from .helpers import initiated_box, run, send
from .test_properties import valid_commands

ORIGIN = Origin("judge", "judge", "127.0.0.1", "test")
CLOCKS = st.sampled_from([0, 1_700_000_000_000, MAX_EPOCH_MS])

# Consistent clock settings at their bounds: (timerState, started, timerEndsAtMs, timerRemainingSec).
TIMERS = st.sampled_from([
    ("idle", False, None, None), ("idle", False, None, 0.0), ("paused", False, None, float(MAX_REMAINING_SEC)),
    ("running", True, None, None), ("running", True, 0, 0.0),
    ("running", True, MAX_EPOCH_MS + MAX_REMAINING_SEC * 1000, float(MAX_REMAINING_SEC)),
])
PRESETS = st.sampled_from([(None, None), ("00:00", 0), ("99:59", 5999), ("05:00", 300)])
EDGES: dict[str, st.SearchStrategy[Any]] = {
    "boxVersion": st.sampled_from([0, MAX_RESTORED_VERSION, MAX_BOX_VERSION - 1, MAX_BOX_VERSION]),
    "holdsCount": st.sampled_from([0, 1, 100]),
    "holdCount": st.sampled_from([0, 0.1, 0.9, 1, 99.9, 100.0]),
    "routeIndex": st.sampled_from([1, 2, 999]),
    "routesCount": st.sampled_from([1, 999]),
    "holdsCounts": st.sampled_from([[], [0], [100] * 999]),
    "remaining": st.sampled_from([None, 0, float(MAX_REMAINING_SEC)]),
    "lastRegisteredTime": st.sampled_from([None, 0, 3600.0]),
    "recentActionIds": st.just([f"old-{i}" for i in range(ACTION_WINDOW)]),
    "scores": st.sampled_from([{}, {f"n{i}": [100.0] * 3 for i in range(MAX_NAMES)}]),
    "times": st.sampled_from([{}, {f"n{i}": [None, 3600.0] for i in range(MAX_NAMES)}]),
    "timeTiebreakDecisions": st.just({f"fp{i}": "yes" for i in range(MAX_TIEBREAK_ENTRIES)}),
    "prevRoundsTiebreakDecisions": st.just({f"fp{i}": "no" for i in range(MAX_TIEBREAK_ENTRIES)}),
    "prevRoundsTiebreakRanks": st.just({f"fp{i}": {"Ana": 1} for i in range(MAX_TIEBREAK_ENTRIES)}),
    "prevRoundsTiebreakLineageRanks": st.just({"lk": {f"n{i}": 1_000_000 for i in range(MAX_NAMES)}}),
}


@st.composite
def edge_states(draw: st.DrawFn) -> dict[str, Any]:
    state = dict(draw(st.sampled_from(BASES)))
    state.update(draw(st.fixed_dictionaries({}, optional=EDGES)))
    timer, started, ends, left = draw(TIMERS)
    preset, seconds = draw(PRESETS)
    state.update(timerState=timer, started=started, timerEndsAtMs=ends, timerRemainingSec=left, timerPreset=preset,
                 timerPresetSec=seconds)
    if state["holdsCount"] and state["holdCount"] > state["holdsCount"]:
        state["holdCount"] = float(state["holdsCount"])
    check_state(state)  # every drawn state is valid by construction
    return state


BASES = [
    initiated_box(preset="01:00"),
    run(initiated_box(holds_count=0), {"type": "SUBMIT_SCORE", "competitor": "Ana", "score": 4, "registeredTime": 9}),
]


@settings(deadline=None, derandomize=True, max_examples=150)
@given(edge_states(), st.lists(valid_commands, min_size=1, max_size=4), CLOCKS)
def test_from_any_valid_state_every_accepted_command_stays_valid_and_encodes(
        state: dict[str, Any], bodies: list[dict[str, Any]], now_ms: int) -> None:
    seq = 0
    for body in bodies:
        cmd = parse_command({**body, "boxId": 0, "sessionId": state["sessionId"]})
        try:
            out = apply_command(state, cmd, now_ms, "new-session")
        except CommandError:
            continue
        check_state(out.state)
        seq += 1
        encode_event(box_id=0, seq=seq, command=cmd, before=state, after=out.state, now_ms=now_ms, origin=ORIGIN,
                     echo=out.echo)
        encode_restore_event(box_id=0, seq=seq, after=out.state, now_ms=now_ms, origin=ORIGIN, source="test")
        orjson.dumps(build_snapshot(out.state, 0, now_ms, {}))
        orjson.dumps(build_public_box(out.state, 0, now_ms))
        state = out.state


def test_the_last_version_takes_no_more_changes_instead_of_a_version_no_event_can_hold() -> None:
    state = {**initiated_box(), "boxVersion": MAX_BOX_VERSION - 1}
    state = send(state, {"type": "PROGRESS_UPDATE", "delta": 1}).state
    assert state["boxVersion"] == MAX_BOX_VERSION
    try:
        send(state, {"type": "PROGRESS_UPDATE", "delta": 1})
    except CommandError as error:
        assert error.detail == LAST_VERSION
    else:
        raise AssertionError("a command past the last version was applied")
    # What changes nothing still works: the box can be read, clocks synced, tabs relayed.
    assert send(state, {"type": "REQUEST_STATE"}).state is state
    assert send(state, {"type": "ACTIVE_CLIMBER", "competitor": "Ana"}).echo is not None


def test_progress_without_a_hold_count_stops_at_the_most_holds_a_route_has() -> None:
    state = initiated_box(holds_count=0)
    for _ in range(15):
        state = send(state, {"type": "PROGRESS_UPDATE", "delta": 10}).state
    assert state["holdCount"] == 100.0
    check_state(state)


def test_a_clock_that_jumped_back_under_a_running_timer_never_shows_more_than_a_clock_holds() -> None:
    started = run(initiated_box(preset="99:59"), {"type": "START_TIMER"}, now_ms=10**12)
    stopped = send(started, {"type": "STOP_TIMER"}, now_ms=10**12 - 7_200_000).state  # two hours back
    assert stopped["timerRemainingSec"] == MAX_REMAINING_SEC
    check_state(stopped)


def test_score_tables_stop_growing_at_their_bound_but_known_names_still_score() -> None:
    full = {**initiated_box(), "scores": {f"n{i}": [1.0] for i in range(MAX_NAMES)}}
    try:
        send(full, {"type": "SUBMIT_SCORE", "competitor": "Somebody New", "score": 3})
    except CommandError as error:
        assert "2000 names" in error.detail
    else:
        raise AssertionError("a score table grew past its bound")
    assert send(full, {"type": "SUBMIT_SCORE", "competitor": "n7", "score": 3}).state["scores"]["n7"] == [3.0]


def test_tiebreak_maps_keep_the_newest_decisions_at_their_bound() -> None:
    full = {**initiated_box(), "timeTiebreakDecisions": {f"fp{i}": "no" for i in range(MAX_TIEBREAK_ENTRIES)}}
    out = send(full, {"type": "SET_TIME_TIEBREAK_DECISION", "timeTiebreakDecision": "yes",
                      "timeTiebreakFingerprint": "newest"}).state
    assert len(out["timeTiebreakDecisions"]) == MAX_TIEBREAK_ENTRIES
    assert out["timeTiebreakDecisions"]["newest"] == "yes" and "fp0" not in out["timeTiebreakDecisions"]
    check_state(out)
