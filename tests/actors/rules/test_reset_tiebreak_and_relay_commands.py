"""RESET_PARTIAL, RESET_BOX, both tie-break decisions, the relays and REQUEST_STATE."""

from actors.rules import ACTION_WINDOW, NO_DISK_WAIT, check_freshness, is_duplicate_action, parse_command

from .helpers import NEW_SESSION, SESSION, initiated_box, run, send


def scored_box() -> dict:
    return run(
        initiated_box(names=["Ana", "Bob", "Cris"], preset="05:00", route_index=2, holds_count=25,
                      holdsCounts=[20, 25]),
        {"type": "SUBMIT_SCORE", "competitor": "Ana", "score": 5, "registeredTime": 10},
        {"type": "SET_TIME_TIEBREAK_DECISION", "timeTiebreakDecision": "yes", "timeTiebreakFingerprint": "fp"},
        {"type": "START_TIMER"},
        {"type": "PROGRESS_UPDATE", "delta": 4},
    )


def test_reset_partial_reset_timer_stops_and_reloads_the_preset_even_while_running() -> None:
    out = send(scored_box(), {"type": "RESET_PARTIAL", "resetTimer": True}, now_ms=20_000)
    state = out.state
    assert (state["started"], state["timerState"], state["timerEndsAtMs"]) == (False, "idle", None)
    assert state["timerRemainingSec"] == 300.0 and state["remaining"] == 300.0
    assert state["lastRegisteredTime"] is None
    assert state["holdCount"] == 4 and state["sessionId"] == SESSION
    assert (out.public, out.snapshot, out.durable) == ("BOX_STATUS_UPDATE", True, True)


def test_reset_partial_clear_progress_zeroes_the_hold_count_only() -> None:
    state = send(scored_box(), {"type": "RESET_PARTIAL", "clearProgress": True}).state
    assert state["holdCount"] == 0.0 and state["timerState"] == "running"


def test_reset_partial_unmark_all_restarts_the_box_competition() -> None:
    box = scored_box()
    state = send(box, {"type": "RESET_PARTIAL", "unmarkAll": True}).state
    assert state["initiated"] is False and state["sessionId"] == NEW_SESSION
    assert (state["routeIndex"], state["holdsCount"]) == (1, 20)
    assert state["scores"] == {} and state["times"] == {} and state["timeTiebreakDecisions"] == {}
    assert not any(c["marked"] for c in state["competitors"])
    assert [c["nume"] for c in state["competitors"]] == ["Ana", "Bob", "Cris"]
    assert (state["currentClimber"], state["preparingClimber"]) == ("", "")
    assert (state["timerState"], state["holdCount"], state["timerRemainingSec"]) == ("idle", 0.0, 300.0)
    assert (state["categorie"], state["timerPreset"]) == ("U16", "05:00")
    assert state["boxVersion"] == box["boxVersion"] + 1


def test_reset_partial_without_flags_still_bumps_the_version() -> None:
    box = scored_box()
    out = send(box, {"type": "RESET_PARTIAL"})
    assert out.changed and out.state["boxVersion"] == box["boxVersion"] + 1
    unversioned = {k: v for k, v in box.items() if k != "boxVersion"}
    assert {k: v for k, v in out.state.items() if k != "boxVersion"} == unversioned


def test_reset_box_wipes_the_box_and_rotates_the_session() -> None:
    box = scored_box()
    out = send(box, {"type": "RESET_BOX"})
    state = out.state
    assert state["sessionId"] == NEW_SESSION and out.echo["sessionId"] == NEW_SESSION
    assert (state["initiated"], state["currentClimber"], state["competitors"], state["categorie"]) == (
        False, "", [], "")
    assert (state["scores"], state["times"], state["routesCount"], state["holdsCounts"]) == ({}, {}, 1, [])
    assert (state["timerPreset"], state["timerPresetSec"], state["timerRemainingSec"], state["timerEndsAtMs"]) == (
        None, None, None, None)
    assert state["timeTiebreakPreference"] is None and state["timeTiebreakDecisions"] == {}
    # What the reference keeps:
    assert (state["holdsCount"], state["routeIndex"]) == (25, 2)
    assert state["boxVersion"] == box["boxVersion"] + 1
    assert out.public == "BOX_STATUS_UPDATE"


def test_set_time_tiebreak_decision_persists_and_keeps_earlier_fingerprints() -> None:
    box = run(initiated_box(),
              {"type": "SET_TIME_TIEBREAK_DECISION", "timeTiebreakDecision": "YES", "timeTiebreakFingerprint": "fp1"})
    out = send(box, {"type": "SET_TIME_TIEBREAK_DECISION", "timeTiebreakDecision": "no",
                     "timeTiebreakFingerprint": "fp2"})
    state = out.state
    assert state["timeTiebreakDecisions"] == {"fp1": "yes", "fp2": "no"}
    assert (state["timeTiebreakPreference"], state["timeTiebreakResolvedFingerprint"],
            state["timeTiebreakResolvedDecision"]) == ("no", "fp2", "no")
    assert out.echo["timeTiebreakDecision"] == "no" and out.echo["timeTiebreakFingerprint"] == "fp2"
    assert out.public == "BOX_RANKING_UPDATE"


def prev_rounds(decision: str, fingerprint: str = "fp", **extra: object) -> dict[str, object]:
    return {"type": "SET_PREV_ROUNDS_TIEBREAK_DECISION", "prevRoundsTiebreakDecision": decision,
            "prevRoundsTiebreakFingerprint": fingerprint, **extra}


def test_set_prev_rounds_yes_stores_order_ranks_and_merges_lineage_ranks() -> None:
    box = run(initiated_box(), prev_rounds("yes", "fp1", prevRoundsTiebreakLineageKey="lk",
                                           prevRoundsTiebreakRanksByName={"Ana": 1, "Bob": 2}))
    out = send(box, prev_rounds("Yes", "fp2", prevRoundsTiebreakLineageKey="lk",
                                prevRoundsTiebreakOrder=["Cris", "Ana"], prevRoundsTiebreakRanksByName={"Cris": 3}))
    state = out.state
    assert state["prevRoundsTiebreakDecisions"] == {"fp1": "yes", "fp2": "yes"}
    assert state["prevRoundsTiebreakOrders"] == {"fp2": ["Cris", "Ana"]}
    assert state["prevRoundsTiebreakRanks"] == {"fp1": {"Ana": 1, "Bob": 2}, "fp2": {"Cris": 3}}
    assert state["prevRoundsTiebreakLineageRanks"] == {"lk": {"Ana": 1, "Bob": 2, "Cris": 3}}
    assert (state["prevRoundsTiebreakPreference"], state["prevRoundsTiebreakResolvedFingerprint"],
            state["prevRoundsTiebreakResolvedDecision"]) == ("yes", "fp2", "yes")
    assert out.echo["prevRoundsTiebreakOrder"] == ["Cris", "Ana"]
    assert out.echo["prevRoundsTiebreakRanksByName"] == {"Cris": 3}


def test_set_prev_rounds_no_clears_order_and_ranks_for_that_fingerprint() -> None:
    box = run(initiated_box(), prev_rounds("yes", prevRoundsTiebreakOrder=["Ana", "Bob"],
                                           prevRoundsTiebreakRanksByName={"Ana": 1, "Bob": 2}))
    out = send(box, prev_rounds("no"))
    assert out.state["prevRoundsTiebreakOrders"] == {} and out.state["prevRoundsTiebreakRanks"] == {}
    assert out.state["prevRoundsTiebreakDecisions"] == {"fp": "no"}
    assert out.echo["prevRoundsTiebreakOrder"] == [] and out.echo["prevRoundsTiebreakRanksByName"] == {}


def test_set_prev_rounds_no_with_empty_ranks_is_accepted() -> None:
    out = send(initiated_box(), prev_rounds("no", prevRoundsTiebreakRanksByName={}, prevRoundsTiebreakLineageKey=None))
    assert out.state["prevRoundsTiebreakDecisions"] == {"fp": "no"}


def test_active_climber_is_a_relay_that_changes_nothing() -> None:
    box = initiated_box()
    out = send(box, {"type": "ACTIVE_CLIMBER", "competitor": "Bob"})
    assert out.state is box
    assert (out.changed, out.snapshot, out.public, out.durable) == (False, False, None, False)
    assert out.echo == {"type": "ACTIVE_CLIMBER", "boxId": 0, "boxVersion": box["boxVersion"],
                        "sessionId": SESSION, "competitor": "Bob"}


def test_request_active_competitor_is_a_relay_that_does_not_bump_the_version() -> None:
    box = initiated_box()
    out = send(box, {"type": "REQUEST_ACTIVE_COMPETITOR", "actionId": "x"})
    assert out.state is box and not out.changed and not out.snapshot
    assert out.echo == {"type": "REQUEST_ACTIVE_COMPETITOR", "boxId": 0, "boxVersion": box["boxVersion"],
                        "sessionId": SESSION}
    # The next command with the same version is not stale (the reference made it stale).
    assert check_freshness(box, parse_command({"type": "START_TIMER", "boxId": 0, "sessionId": SESSION,
                                               "boxVersion": box["boxVersion"]})) is None


def test_request_state_changes_nothing_and_leaves_the_answer_to_the_caller() -> None:
    box = initiated_box()
    out = send(box, {"type": "REQUEST_STATE"})
    assert out.state is box
    assert (out.echo, out.changed, out.snapshot, out.public, out.durable) == (None, False, False, None, False)


def freshness(state: dict, **envelope: object) -> str | None:
    return check_freshness(state, parse_command({"type": "START_TIMER", "boxId": 0, **envelope}))


def test_freshness_rejects_another_session_and_an_older_version() -> None:
    box = run(initiated_box(), {"type": "START_TIMER"})  # version 2
    assert freshness(box, sessionId=SESSION) is None
    assert freshness(box, sessionId=SESSION, boxVersion=2) is None
    assert freshness(box, sessionId=SESSION, boxVersion=3) is None
    assert freshness(box, sessionId=SESSION, boxVersion=1) == "stale_version"
    assert freshness(box, sessionId="other", boxVersion=5) == "stale_session"


def test_an_init_route_carrying_an_old_session_is_stale() -> None:
    box = initiated_box()
    init = {"type": "INIT_ROUTE", "boxId": 0, "routeIndex": 1, "holdsCount": 3}
    assert check_freshness(box, parse_command(init)) is None
    assert check_freshness(box, parse_command({**init, "sessionId": "old"})) == "stale_session"


def test_applied_action_ids_are_remembered_in_a_bounded_window() -> None:
    box = initiated_box()
    out = send(box, {"type": "PROGRESS_UPDATE", "delta": 1, "actionId": "act-1"})
    assert is_duplicate_action(out.state, "act-1") and not is_duplicate_action(box, "act-1")
    assert not is_duplicate_action(out.state, None)
    assert "actionId" not in out.echo
    state = out.state
    for i in range(ACTION_WINDOW):
        state = send(state, {"type": "REGISTER_TIME", "registeredTime": 1, "actionId": f"n-{i}"}).state
    assert len(state["recentActionIds"]) == ACTION_WINDOW
    assert not is_duplicate_action(state, "act-1") and is_duplicate_action(state, f"n-{ACTION_WINDOW - 1}")


def test_commands_that_change_nothing_do_not_record_their_action_id() -> None:
    box = initiated_box()
    assert send(box, {"type": "ACTIVE_CLIMBER", "competitor": "Bob", "actionId": "a"}).state["recentActionIds"] == []
    synced = send(box, {"type": "TIMER_SYNC", "remaining": 30, "actionId": "t"}).state
    assert synced["recentActionIds"] == ["t"]


def test_no_command_listed_as_never_waiting_for_the_disk_ever_does() -> None:
    """Idle boxes run NO_DISK_WAIT commands in the HTTP handler's task and send every other type
    through the mailbox, where a durable outcome can wait for fdatasync."""
    bodies = {"TIMER_SYNC": {"remaining": 42.5}, "ACTIVE_CLIMBER": {"competitor": "Ana"},
              "REQUEST_ACTIVE_COMPETITOR": {"competitor": "Ana"}, "REQUEST_STATE": {}}
    assert set(bodies) == NO_DISK_WAIT
    paused = initiated_box()
    running = run(paused, {"type": "START_TIMER"})
    for state in (paused, running):
        for kind, fields in bodies.items():
            assert not send(state, {"type": kind, **fields}).durable, (kind, state["timerState"])
    assert send(paused, {"type": "PROGRESS_UPDATE", "delta": 1}).durable  # the other kind, for contrast
