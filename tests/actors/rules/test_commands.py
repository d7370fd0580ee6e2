import math
from typing import Any

import pytest

from actors.rules import COMMAND_TYPES, Command, CommandError, parse_command

S = {"boxId": 3, "sessionId": "s"}


def error_of(raw: object) -> str:
    with pytest.raises(CommandError) as caught:
        parse_command(raw)
    return caught.value.detail


def test_there_are_seventeen_command_types() -> None:
    assert len(set(COMMAND_TYPES)) == 17


def test_a_minimal_command_parses_into_a_frozen_command() -> None:
    cmd = parse_command({"type": "START_TIMER", **S, "boxVersion": 4, "actionId": "a-1"})
    assert cmd == Command("START_TIMER", 3, "s", 4, "a-1", {})
    with pytest.raises(AttributeError):
        cmd.type = "STOP_TIMER"  # type: ignore[misc]


def test_to_json_round_trips_through_parse_command() -> None:
    raw = {
        "type": "INIT_ROUTE",
        "boxId": 1,
        "routeIndex": 2,
        "holdsCount": 30.0,
        "routesCount": 3,
        "holdsCounts": [20, 30, 40],
        "competitors": [{"nume": " Ana ", "club": "CSM", "marked": "yes"}, {"nume": "Bob", "club": ""}],
        "categorie": " U16 ",
        "timerPreset": "4:00",
    }
    cmd = parse_command(raw)
    assert cmd.to_json() == {
        "type": "INIT_ROUTE",
        "boxId": 1,
        "routeIndex": 2,
        "holdsCount": 30,
        "routesCount": 3,
        "holdsCounts": [20, 30, 40],
        "competitors": [{"nume": "Ana", "marked": True, "club": "CSM"}, {"nume": "Bob", "marked": False}],
        "categorie": "U16",
        "timerPreset": "04:00",
    }
    assert parse_command(cmd.to_json()) == cmd


def test_to_json_omits_absent_envelope_fields() -> None:
    assert parse_command({"type": "INIT_ROUTE", "boxId": 0, "routeIndex": 1, "holdsCount": 5}).to_json() == {
        "type": "INIT_ROUTE",
        "boxId": 0,
        "routeIndex": 1,
        "holdsCount": 5,
    }


@pytest.mark.parametrize("raw", [None, [], "START_TIMER", 3])
def test_a_body_that_is_not_an_object_is_rejected(raw: object) -> None:
    assert error_of(raw).startswith("Invalid command: ")


@pytest.mark.parametrize("box_id", [None, -1, 10000, "1", True, 1.5, math.nan])
def test_box_id_must_be_an_integer_from_0_to_9999(box_id: object) -> None:
    assert "boxId" in error_of({"type": "START_TIMER", "boxId": box_id, "sessionId": "s"})


def test_box_id_accepts_an_integral_float() -> None:
    assert parse_command({"type": "START_TIMER", "boxId": 9999.0, "sessionId": "s"}).box_id == 9999


@pytest.mark.parametrize("cmd_type", [None, "", "start_timer", "DROP_TABLE", 5])
def test_type_must_be_a_known_command(cmd_type: object) -> None:
    assert "type must be one of" in error_of({"type": cmd_type, **S})


@pytest.mark.parametrize("session", [None, ""])
def test_session_id_is_required_except_for_init_route(session: object) -> None:
    for cmd_type in COMMAND_TYPES:
        raw = {"type": cmd_type, "boxId": 0, "sessionId": session, **REQUIRED_FIELDS.get(cmd_type, {})}
        if cmd_type == "INIT_ROUTE":
            assert parse_command(raw).session_id is None
        else:
            assert error_of(raw) == "sessionId required for all commands except INIT_ROUTE"


def test_session_id_longer_than_64_characters_is_rejected() -> None:
    assert "sessionId" in error_of({"type": "START_TIMER", "boxId": 0, "sessionId": "x" * 65})


@pytest.mark.parametrize("version", [-1, 2**53, 2**64, "3", True, 1.5])
def test_box_version_must_be_an_integer_from_0_to_2_pow_53_minus_1(version: object) -> None:
    assert "boxVersion" in error_of({"type": "START_TIMER", **S, "boxVersion": version})


def test_box_version_may_be_any_version_a_box_can_reach() -> None:
    """A box's version may pass 2**31 (restores add one to the higher of two versions); a client
    must still be able to send it, or the box would refuse every command from the UI."""
    assert parse_command({"type": "START_TIMER", **S, "boxVersion": 2**53 - 1}).box_version == 2**53 - 1


@pytest.mark.parametrize("action_id", ["", "x" * 129, 7])
def test_action_id_must_be_a_string_of_1_to_128_characters(action_id: object) -> None:
    assert "actionId" in error_of({"type": "START_TIMER", **S, "actionId": action_id})


def test_null_values_count_as_absent() -> None:
    cmd = parse_command(
        {"type": "SUBMIT_SCORE", **S, "competitor": "Ana", "score": None, "idx": None, "boxVersion": None,
         "actionId": None}
    )
    assert cmd.fields == {"competitor": "Ana"}
    assert cmd.box_version is None and cmd.action_id is None


def test_snapshot_style_junk_and_unknown_keys_are_ignored() -> None:
    junk = {
        "initiated": "maybe",
        "currentClimber": 12,
        "started": "x",
        "timerState": [],
        "holdCount": -5,
        "timerPresetSec": "abc",
        "holdsCount_snap": {},
        "registeredTime_snap": "?",
        "somethingNew": 1,
    }
    cmd = parse_command({"type": "START_TIMER", **S, **junk})
    assert cmd.fields == {}


def test_fields_that_do_not_belong_to_the_type_are_validated_then_dropped() -> None:
    assert parse_command({"type": "START_TIMER", **S, "delta": 1, "score": 5}).fields == {}
    assert "delta" in error_of({"type": "START_TIMER", **S, "delta": 50})


REQUIRED_FIELDS: dict[str, dict[str, Any]] = {
    "INIT_ROUTE": {"routeIndex": 1, "holdsCount": 10},
    "PROGRESS_UPDATE": {"delta": 1},
    "SUBMIT_SCORE": {"competitor": "Ana"},
    "REGISTER_TIME": {"registeredTime": 12},
    "TIMER_SYNC": {"remaining": 30},
    "SET_TIME_CRITERION": {"timeCriterionEnabled": True},
    "SET_TIME_TIEBREAK_DECISION": {"timeTiebreakDecision": "yes", "timeTiebreakFingerprint": "tb3:a"},
    "SET_PREV_ROUNDS_TIEBREAK_DECISION": {"prevRoundsTiebreakDecision": "no", "prevRoundsTiebreakFingerprint": "tb3:b"},
    "SET_TIMER_PRESET": {"timerPreset": "05:00"},
    "ACTIVE_CLIMBER": {"competitor": "Ana"},
}


@pytest.mark.parametrize(("cmd_type", "fields"), REQUIRED_FIELDS.items())
def test_each_type_rejects_a_missing_required_field(cmd_type: str, fields: dict[str, Any]) -> None:
    assert parse_command({"type": cmd_type, **S, **fields}).type == cmd_type
    for missing in fields:
        rest = {key: value for key, value in fields.items() if key != missing}
        assert error_of({"type": cmd_type, **S, **rest}).startswith(f"Invalid command: {cmd_type} requires")


def test_delta_zero_is_rejected_instead_of_acting_like_plus_one() -> None:
    detail = error_of({"type": "PROGRESS_UPDATE", **S, "delta": 0})
    assert detail == "Invalid command: delta must be a number between -10 and 10, not 0"


@pytest.mark.parametrize("delta", [10.5, -11, "1", True, math.inf, -math.inf, math.nan])
def test_delta_outside_minus_10_to_10_or_not_a_number_is_rejected(delta: object) -> None:
    assert "delta" in error_of({"type": "PROGRESS_UPDATE", **S, "delta": delta})


@pytest.mark.parametrize(
    ("field", "good", "bad"),
    [
        ("score", [0, 100, 7.1], [-0.1, 100.5, "7", True, math.nan]),
        ("registeredTime", [0, 3600, 12.5], [-1, 3601, "12", False, math.inf]),
        ("remaining", [0, 9999, 0.5], [-1, 10000, "1"]),
    ],
)
def test_number_fields_respect_their_ranges(field: str, good: list[object], bad: list[object]) -> None:
    cmd_type = {"score": "SUBMIT_SCORE", "registeredTime": "REGISTER_TIME", "remaining": "TIMER_SYNC"}[field]
    base = {"type": cmd_type, **S, **REQUIRED_FIELDS.get(cmd_type, {})}
    for value in good:
        assert parse_command({**base, field: value}).fields[field] == float(value)
    for value in bad:
        assert field in error_of({**base, field: value})


@pytest.mark.parametrize(
    ("field", "lo", "hi"), [("routeIndex", 1, 999), ("holdsCount", 0, 100), ("routesCount", 1, 999)]
)
def test_integer_fields_of_init_route_respect_their_ranges(field: str, lo: int, hi: int) -> None:
    base = {"type": "INIT_ROUTE", "boxId": 0, "routeIndex": 1, "holdsCount": 10}
    assert parse_command({**base, field: lo}).fields[field] == lo
    assert parse_command({**base, field: float(hi)}).fields[field] == hi
    for bad in (lo - 1, hi + 1, 2.5, True, "3"):
        assert field in error_of({**base, field: bad})


def test_registered_time_falls_back_to_the_legacy_time_alias() -> None:
    cmd = parse_command({"type": "REGISTER_TIME", **S, "time": 15.5})
    assert cmd.fields == {"registeredTime": 15.5}
    cmd = parse_command({"type": "REGISTER_TIME", **S, "time": 1, "registeredTime": 2})
    assert cmd.fields == {"registeredTime": 2.0}


def test_competitor_idx_is_treated_exactly_like_idx() -> None:
    assert parse_command({"type": "SUBMIT_SCORE", **S, "competitorIdx": 2}).fields == {"idx": 2}
    assert parse_command({"type": "SUBMIT_SCORE", **S, "competitorIdx": 2, "idx": 0}).fields == {"idx": 0}
    assert "idx" in error_of({"type": "SUBMIT_SCORE", **S, "competitorIdx": 1001})


def test_submit_score_accepts_idx_zero() -> None:
    assert parse_command({"type": "SUBMIT_SCORE", **S, "idx": 0}).fields == {"idx": 0}


@pytest.mark.parametrize("name", ["O'Connor", "Dropu", "Ștefan", "D'Andrea", "Select Ana", "Ana -- Pop"])
def test_real_names_pass_everywhere_a_name_enters(name: str) -> None:
    assert parse_command({"type": "SUBMIT_SCORE", **S, "competitor": name}).fields["competitor"] == name
    assert parse_command({"type": "ACTIVE_CLIMBER", **S, "competitor": name}).fields["competitor"] == name
    init = parse_command({"type": "INIT_ROUTE", "boxId": 0, "routeIndex": 1, "holdsCount": 5,
                          "competitors": [{"nume": name}]})
    assert init.fields["competitors"] == [{"nume": name, "marked": False}]


def test_control_characters_are_stripped_from_names_and_clubs() -> None:
    cmd = parse_command(
        {"type": "INIT_ROUTE", "boxId": 0, "routeIndex": 1, "holdsCount": 5,
         "competitors": [{"nume": "A\x00na\u200b", "club": "C\x1bSM"}, {"nume": "Bob", "club": 42}]}
    )
    assert cmd.fields["competitors"] == [
        {"nume": "Ana", "marked": False, "club": "CSM"},
        {"nume": "Bob", "marked": False, "club": "42"},
    ]
    assert parse_command({"type": "SUBMIT_SCORE", **S, "competitor": "\tAna\x7f "}).fields["competitor"] == "Ana"


@pytest.mark.parametrize(
    ("marked", "expected"),
    [(True, True), (False, False), (1, True), (0, False), ("true", True), ("1", True), ("Yes", True),
     ("no", False), ("", False), ([], False), ({}, False), (None, False)],
)
def test_competitor_marked_is_coerced_to_a_bool(marked: object, expected: bool) -> None:
    cmd = parse_command({"type": "INIT_ROUTE", "boxId": 0, "routeIndex": 1, "holdsCount": 5,
                         "competitors": [{"nume": "Ana", "marked": marked}]})
    assert cmd.fields["competitors"][0]["marked"] is expected


@pytest.mark.parametrize(
    "competitors",
    [{"nume": "Ana"}, [{"club": "x"}], ["Ana"], [{"nume": ""}], [{"nume": "Ana", "club": "x" * 256}],
     [{"nume": "Ana", "club": []}], [{"nume": "Ana"}] * 501],
)
def test_bad_competitor_lists_are_rejected(competitors: object) -> None:
    error_of({"type": "INIT_ROUTE", "boxId": 0, "routeIndex": 1, "holdsCount": 5, "competitors": competitors})


@pytest.mark.parametrize("holds_counts", [[101], [-1], [1.5], [True], "10", [10] * 1000])
def test_holds_counts_must_be_a_bounded_list_of_integers_0_to_100(holds_counts: object) -> None:
    assert "holdsCounts" in error_of(
        {"type": "INIT_ROUTE", "boxId": 0, "routeIndex": 1, "holdsCount": 5, "holdsCounts": holds_counts}
    )


@pytest.mark.parametrize("categorie", ["", "   ", "x" * 101, 5])
def test_categorie_must_be_a_non_empty_string_of_at_most_100_characters(categorie: object) -> None:
    assert "categorie" in error_of(
        {"type": "INIT_ROUTE", "boxId": 0, "routeIndex": 1, "holdsCount": 5, "categorie": categorie}
    )


@pytest.mark.parametrize(("preset", "normalised"),
                         [("5:00", "05:00"), ("05:30", "05:30"), ("0:00", "00:00"), ("99:59", "99:59")])
def test_timer_preset_is_normalised_to_mm_ss(preset: str, normalised: str) -> None:
    assert parse_command({"type": "SET_TIMER_PRESET", **S, "timerPreset": preset}).fields == {"timerPreset": normalised}


@pytest.mark.parametrize("preset", ["invalid", "", "5", "5:60", "100:00", "5:0", "٥:٠٠", 300, "5:00:00"])
def test_invalid_timer_presets_are_rejected(preset: object) -> None:
    assert "timerPreset" in error_of({"type": "SET_TIMER_PRESET", **S, "timerPreset": preset})


@pytest.mark.parametrize("flag", ["resetTimer", "clearProgress", "unmarkAll", "timeCriterionEnabled"])
def test_boolean_flags_must_be_real_booleans(flag: str) -> None:
    assert flag in error_of({"type": "RESET_PARTIAL", **S, flag: 1})
    assert flag in error_of({"type": "RESET_PARTIAL", **S, flag: "true"})


@pytest.mark.parametrize(("raw", "decision"), [("yes", "yes"), (" YES ", "yes"), ("No", "no")])
def test_tiebreak_decisions_are_trimmed_and_lower_cased(raw: str, decision: str) -> None:
    time_cmd = parse_command({"type": "SET_TIME_TIEBREAK_DECISION", **S,
                              "timeTiebreakDecision": raw, "timeTiebreakFingerprint": " tb3:x "})
    assert time_cmd.fields == {"timeTiebreakDecision": decision, "timeTiebreakFingerprint": "tb3:x"}
    prev_cmd = parse_command({"type": "SET_PREV_ROUNDS_TIEBREAK_DECISION", **S,
                              "prevRoundsTiebreakDecision": raw, "prevRoundsTiebreakFingerprint": "tb3:y"})
    assert prev_cmd.fields["prevRoundsTiebreakDecision"] == decision


@pytest.mark.parametrize("decision", ["maybe", "", "y", 1, True])
def test_bad_tiebreak_decisions_are_a_command_error(decision: object) -> None:
    for cmd_type, prefix in (("SET_TIME_TIEBREAK_DECISION", "time"),
                             ("SET_PREV_ROUNDS_TIEBREAK_DECISION", "prevRounds")):
        raw = {"type": cmd_type, **S, f"{prefix}TiebreakDecision": decision, f"{prefix}TiebreakFingerprint": "tb3:x"}
        assert error_of(raw).startswith("Invalid command: ")


@pytest.mark.parametrize("fingerprint", ["", "   ", "x" * 257, 5])
def test_fingerprints_must_be_1_to_256_characters(fingerprint: object) -> None:
    error_of({"type": "SET_TIME_TIEBREAK_DECISION", **S, "timeTiebreakDecision": "yes",
              "timeTiebreakFingerprint": fingerprint})


def test_prev_rounds_order_is_normalised_and_deduplicated() -> None:
    cmd = parse_command({"type": "SET_PREV_ROUNDS_TIEBREAK_DECISION", **S, "prevRoundsTiebreakDecision": "yes",
                         "prevRoundsTiebreakFingerprint": "fp", "prevRoundsTiebreakLineageKey": " tb-lineage:1 ",
                         "prevRoundsTiebreakOrder": [" Ana", "Bob", "Ana "]})
    assert cmd.fields["prevRoundsTiebreakOrder"] == ["Ana", "Bob"]
    assert cmd.fields["prevRoundsTiebreakLineageKey"] == "tb-lineage:1"


def test_prev_rounds_ranks_must_be_positive_integers_and_empty_counts_as_absent() -> None:
    base = {"type": "SET_PREV_ROUNDS_TIEBREAK_DECISION", **S, "prevRoundsTiebreakDecision": "no",
            "prevRoundsTiebreakFingerprint": "fp"}
    assert "prevRoundsTiebreakRanksByName" not in parse_command({**base, "prevRoundsTiebreakRanksByName": {}}).fields
    ranks = parse_command({**base, "prevRoundsTiebreakRanksByName": {" Ana ": 1, "Bob": 2.0}}).fields
    assert ranks["prevRoundsTiebreakRanksByName"] == {"Ana": 1, "Bob": 2}
    for bad in ({"Ana": 0}, {"Ana": -1}, {"Ana": 1.5}, {"Ana": True}, {"Ana": "1"}, {"": 1}, ["Ana"]):
        error_of({**base, "prevRoundsTiebreakRanksByName": bad})


def test_error_details_never_leak_python_internals() -> None:
    for raw in ({"type": "PROGRESS_UPDATE", **S, "delta": {"a": 1}}, {"type": "INIT_ROUTE", "boxId": 0}):
        detail = error_of(raw)
        assert detail.startswith("Invalid command: ") and "Traceback" not in detail and "<class" not in detail
