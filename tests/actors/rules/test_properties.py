"""Properties over generated input: only CommandError escapes, inputs never change, replay is exact."""

import copy
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.rules import (
    COMMAND_TYPES,
    Command,
    CommandError,
    apply_command,
    build_public_box,
    build_snapshot,
    check_freshness,
    default_state,
    normalize_name,
    parse_command,
    state_from_checkpoint,
)

from .helpers import SESSION, initiated_box, run

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=12),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=10,
)
names = st.sampled_from(["Ana", "Bob", "Zed", " O'Connor ", "Ștefan", "", "\x00"]) | st.text(max_size=6)
plausible: dict[str, st.SearchStrategy[Any]] = {
    "sessionId": st.sampled_from([SESSION, "other", ""]),
    "boxVersion": st.integers(-1, 12),
    "actionId": st.sampled_from(["a1", "a2", ""]),
    "delta": st.sampled_from([1, 0.1, -1, 0, 5, -10, 10.5]),
    "score": st.sampled_from([0, 3, 7.1, 10, 40, 101]),
    "registeredTime": st.sampled_from([0, 12.5, 3600, 4000]),
    "time": st.sampled_from([0, 30]),
    "remaining": st.sampled_from([0, 45.5, 300, 10000]),
    "routeIndex": st.integers(0, 4),
    "holdsCount": st.integers(-1, 12),
    "routesCount": st.integers(0, 4),
    "holdsCounts": st.lists(st.integers(-1, 12), max_size=4),
    "competitors": st.lists(st.fixed_dictionaries({"nume": names}, optional={"club": names, "marked": json_values}),
                            max_size=5),
    "competitor": names,
    "idx": st.integers(-1, 6),
    "competitorIdx": st.integers(-1, 6),
    "categorie": st.sampled_from(["U16", "", "x" * 101]),
    "timerPreset": st.sampled_from(["05:00", "0:10", "5:60", "bad"]),
    "timeCriterionEnabled": st.booleans(),
    "resetTimer": st.booleans(),
    "clearProgress": st.booleans(),
    "unmarkAll": st.booleans(),
    "timeTiebreakDecision": st.sampled_from(["yes", " No ", "maybe"]),
    "timeTiebreakFingerprint": st.sampled_from(["fp1", "fp2", ""]),
    "prevRoundsTiebreakDecision": st.sampled_from(["YES", "no", "?"]),
    "prevRoundsTiebreakFingerprint": st.sampled_from(["fp1", "fp2"]),
    "prevRoundsTiebreakLineageKey": st.sampled_from(["lk", " "]),
    "prevRoundsTiebreakOrder": st.lists(names, max_size=3),
    "prevRoundsTiebreakRanksByName": st.dictionaries(names, st.integers(-1, 4), max_size=3),
}
raw_commands = st.fixed_dictionaries(
    {"type": st.sampled_from([*COMMAND_TYPES, "BOGUS"]), "boxId": st.sampled_from([0, 0, 1, -1, "0", True])},
    optional={key: strategy | json_values for key, strategy in plausible.items()},
)
# Mostly valid values, so that most generated commands get past parse_command and reach apply_command.
valid_names = st.sampled_from(["Ana", "Bob", "Cris", "Zed", " O'Connor "])
valid: dict[str, st.SearchStrategy[Any]] = {
    "actionId": st.sampled_from(["a1", "a2", "a3"]),
    "boxVersion": st.integers(0, 12),
    "delta": st.sampled_from([1, 0.1, -1, 5, -10, 2.5]),
    "score": st.sampled_from([0, 3, 7.1, 10, 40]),
    "registeredTime": st.sampled_from([0, 12.5, 3600]),
    "remaining": st.sampled_from([0, 45.5, 300]),
    "routeIndex": st.integers(1, 3),
    "holdsCount": st.integers(0, 12),
    "routesCount": st.integers(1, 3),
    "holdsCounts": st.lists(st.integers(0, 12), max_size=3),
    "competitors": st.lists(st.fixed_dictionaries({"nume": valid_names}, optional={"marked": st.booleans()}),
                            max_size=5),
    "competitor": valid_names,
    "idx": st.integers(0, 5),
    "categorie": st.just("U16"),
    "timerPreset": st.sampled_from(["05:00", "0:10", "00:00"]),
    "timeCriterionEnabled": st.booleans(),
    "resetTimer": st.booleans(),
    "clearProgress": st.booleans(),
    "unmarkAll": st.booleans(),
    "timeTiebreakDecision": st.sampled_from(["yes", " No "]),
    "timeTiebreakFingerprint": st.sampled_from(["fp1", "fp2"]),
    "prevRoundsTiebreakDecision": st.sampled_from(["YES", "no"]),
    "prevRoundsTiebreakFingerprint": st.sampled_from(["fp1", "fp2"]),
    "prevRoundsTiebreakLineageKey": st.just("lk"),
    "prevRoundsTiebreakOrder": st.lists(valid_names, max_size=3),
    "prevRoundsTiebreakRanksByName": st.dictionaries(valid_names, st.integers(1, 4), max_size=3),
}
REQUIRED = {
    "INIT_ROUTE": ("routeIndex", "holdsCount"),
    "PROGRESS_UPDATE": ("delta",),
    "SUBMIT_SCORE": ("competitor",),
    "REGISTER_TIME": ("registeredTime",),
    "TIMER_SYNC": ("remaining",),
    "SET_TIME_CRITERION": ("timeCriterionEnabled",),
    "SET_TIME_TIEBREAK_DECISION": ("timeTiebreakDecision", "timeTiebreakFingerprint"),
    "SET_PREV_ROUNDS_TIEBREAK_DECISION": ("prevRoundsTiebreakDecision", "prevRoundsTiebreakFingerprint"),
    "SET_TIMER_PRESET": ("timerPreset",),
    "ACTIVE_CLIMBER": ("competitor",),
}
valid_commands = st.sampled_from(COMMAND_TYPES).flatmap(
    lambda cmd_type: st.fixed_dictionaries(
        {"type": st.just(cmd_type), "boxId": st.just(0), "sessionId": st.just(SESSION),
         **{field: valid[field] for field in REQUIRED.get(cmd_type, ())}},
        optional={field: value for field, value in valid.items() if field not in REQUIRED.get(cmd_type, ())},
    )
)


def base_states() -> list[dict[str, Any]]:
    fresh = default_state(SESSION)
    ready = initiated_box(preset="01:00")
    running = run(ready, {"type": "START_TIMER"}, {"type": "PROGRESS_UPDATE", "delta": 2})
    scored = run(ready, {"type": "SUBMIT_SCORE", "competitor": "Ana", "score": 4, "registeredTime": 9})
    return [fresh, ready, running, scored]


STATES = base_states()


@settings(deadline=None, derandomize=True, max_examples=250)
@given(json_values | raw_commands | valid_commands)
def test_parse_command_returns_a_command_or_raises_command_error(raw: Any) -> None:
    before = copy.deepcopy(raw)
    try:
        cmd = parse_command(raw)
    except CommandError as error:
        assert error.detail.startswith("Invalid command: ") or error.detail.startswith("sessionId required")
    else:
        assert isinstance(cmd, Command)
        assert parse_command(cmd.to_json()) == cmd
        orjson.dumps(cmd.to_json())
    assert raw == before or raw != raw  # noqa: PLR0124 - NaN never equals itself


@settings(deadline=None, derandomize=True, max_examples=250)
@given(valid_commands, st.integers(0, 120_000))
def test_apply_command_returns_an_outcome_or_raises_command_error(raw: dict[str, Any], now_ms: int) -> None:
    try:
        cmd = parse_command(raw)
    except CommandError:
        return
    for state in STATES:
        before = copy.deepcopy(state)
        check_freshness(state, cmd)
        try:
            out = apply_command(state, cmd, now_ms, "new-session")
        except CommandError as error:
            assert error.detail.startswith("Invalid command: ")
            continue
        finally:
            assert state == before, "apply_command mutated its input state"
        assert out.changed == (out.state is not state)
        bump = 1 if out.changed and cmd.type != "TIMER_SYNC" else 0
        assert out.state["boxVersion"] == state["boxVersion"] + bump
        assert out.durable == (bump == 1)
        if out.echo is not None:
            assert out.echo["boxVersion"] == out.state["boxVersion"]
            assert "actionId" not in out.echo and None not in (out.echo.get("type"), out.echo.get("sessionId"))
            orjson.dumps(out.echo)
        assert state_from_checkpoint(orjson.loads(orjson.dumps(out.state))) == out.state
        orjson.dumps(build_snapshot(out.state, 0, now_ms, {}))
        orjson.dumps(build_public_box(out.state, 0, now_ms))


@settings(deadline=None, derandomize=True, max_examples=200)
@given(st.text(max_size=30))
def test_normalize_name_is_idempotent_or_refuses(value: str) -> None:
    try:
        name = normalize_name(value)
    except CommandError:
        return
    assert normalize_name(name) == name and name == name.strip() and "  " not in name


def replay(log: list[tuple[dict[str, Any], int, str]]) -> dict[str, Any]:
    state = default_state(SESSION)
    for body, now_ms, new_session_id in log:
        state = apply_command(state, parse_command(body), now_ms, new_session_id).state
    return state


def record(bodies: list[dict[str, Any]]) -> tuple[list[tuple[dict[str, Any], int, str]], dict[str, Any]]:
    """Apply live, as the box actor would, and log what it would write to the audit log."""
    state = default_state(SESSION)
    log = []
    for step, body in enumerate(bodies):
        cmd = parse_command({"boxId": 0, "sessionId": state["sessionId"], **body})
        now_ms, new_session_id = 1_000 * step + 7, f"session-{step}"
        out = apply_command(state, cmd, now_ms, new_session_id)
        if out.changed:
            log.append((orjson.loads(orjson.dumps(cmd.to_json())), now_ms, new_session_id))
        state = out.state
    return log, state


CONTEST = [
    {"type": "INIT_ROUTE", "routeIndex": 1, "holdsCount": 10, "routesCount": 2, "holdsCounts": [10, 12],
     "competitors": [{"nume": n} for n in ("Ana", "Bob", "Cris")], "timerPreset": "01:00", "categorie": "U14"},
    {"type": "TIMER_SYNC", "remaining": 60},
    {"type": "START_TIMER", "actionId": "x1"},
    {"type": "PROGRESS_UPDATE", "delta": 1},
    {"type": "PROGRESS_UPDATE", "delta": 0.1},
    {"type": "ACTIVE_CLIMBER", "competitor": "Ana"},
    {"type": "STOP_TIMER"},
    {"type": "REGISTER_TIME", "registeredTime": 41.2},
    {"type": "SUBMIT_SCORE", "competitor": "Ana", "score": 1.1},
    {"type": "SET_TIMER_PRESET", "timerPreset": "0:45"},
    {"type": "RESUME_TIMER"},
    {"type": "SUBMIT_SCORE", "idx": 1, "score": 10, "registeredTime": 30},
    {"type": "SET_TIME_CRITERION", "timeCriterionEnabled": True},
    {"type": "SET_TIME_TIEBREAK_DECISION", "timeTiebreakDecision": "yes", "timeTiebreakFingerprint": "fp"},
    {"type": "SET_PREV_ROUNDS_TIEBREAK_DECISION", "prevRoundsTiebreakDecision": "yes",
     "prevRoundsTiebreakFingerprint": "fp", "prevRoundsTiebreakLineageKey": "lk",
     "prevRoundsTiebreakRanksByName": {"Ana": 2, "Bob": 1}},
    {"type": "REQUEST_ACTIVE_COMPETITOR"},
    {"type": "REQUEST_STATE"},
    {"type": "RESET_PARTIAL", "resetTimer": True, "clearProgress": True},
    {"type": "INIT_ROUTE", "routeIndex": 2, "holdsCount": 12,
     "competitors": [{"nume": n} for n in ("Cris", "Bob", "Ana")]},
    {"type": "SUBMIT_SCORE", "competitor": "Cris", "score": 12},
    {"type": "RESET_PARTIAL", "unmarkAll": True},
    {"type": "RESET_BOX"},
]


def test_the_contest_script_covers_all_seventeen_commands() -> None:
    assert {body["type"] for body in CONTEST} == set(COMMAND_TYPES)


def test_replaying_the_logged_events_rebuilds_the_state_byte_for_byte() -> None:
    log, live = record(CONTEST)
    assert orjson.dumps(replay(log)) == orjson.dumps(live)
    assert orjson.dumps(replay(log)) == orjson.dumps(replay(log))
    assert live["boxVersion"] == len([b for b in log if b[0]["type"] != "TIMER_SYNC"])


def test_no_command_mutates_the_state_it_was_given() -> None:
    state = default_state(SESSION)
    for step, body in enumerate(CONTEST):
        before = copy.deepcopy(state)
        cmd = parse_command({"boxId": 0, "sessionId": state["sessionId"], **body})
        fields_before = copy.deepcopy(dict(cmd.fields))
        out = apply_command(state, cmd, step * 1_000, f"s{step}")
        assert state == before and dict(cmd.fields) == fields_before, body["type"]
        state = out.state


def test_the_new_state_shares_untouched_nested_values_instead_of_copying_them() -> None:
    box = run(initiated_box(), {"type": "SUBMIT_SCORE", "competitor": "Bob", "score": 3})
    out = apply_command(box, parse_command({"type": "PROGRESS_UPDATE", "boxId": 0, "sessionId": SESSION, "delta": 1}),
                        0, "x")
    assert out.state is not box
    assert out.state["competitors"] is box["competitors"] and out.state["scores"] is box["scores"]


@settings(deadline=None, derandomize=True, max_examples=30)
@given(st.lists(valid_commands, max_size=10))
def test_replay_of_any_accepted_sequence_is_exact(bodies: list[dict[str, Any]]) -> None:
    accepted = []
    state = initiated_box()
    for body in bodies:
        try:
            cmd = parse_command({**body, "boxId": 0, "sessionId": state["sessionId"]})
            state = apply_command(state, cmd, 5_000, "next").state
        except CommandError:
            continue
        accepted.append(cmd.to_json())
    first = second = initiated_box()
    for body in accepted:
        first = apply_command(first, parse_command(body), 5_000, "next").state
    for body in orjson.loads(orjson.dumps(accepted)):
        second = apply_command(second, parse_command(body), 5_000, "next").state
    assert orjson.dumps(first) == orjson.dumps(second) == orjson.dumps(state)
