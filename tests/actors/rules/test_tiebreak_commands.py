"""The tie-break workflow driven by commands: decisions, idempotent re-sends, sticky badges, snapshots, restarts."""

from typing import Any

import orjson
import pytest

from actors.rules import build_public_box, build_snapshot, default_state, lead_ranking, state_from_checkpoint

from .helpers import initiated_box, run, send
from .test_snapshot import PUBLIC_KEYS, SNAPSHOT_KEYS


def score(name: str, value: float, time: float) -> dict[str, Any]:
    return {"type": "SUBMIT_SCORE", "competitor": name, "score": value, "registeredTime": time}


def time_yes(fingerprint: str, decision: str = "yes") -> dict[str, Any]:
    return {"type": "SET_TIME_TIEBREAK_DECISION", "timeTiebreakDecision": decision,
            "timeTiebreakFingerprint": fingerprint}


def prev_rounds(fingerprint: str, decision: str, **extra: Any) -> dict[str, Any]:
    return {"type": "SET_PREV_ROUNDS_TIEBREAK_DECISION", "prevRoundsTiebreakDecision": decision,
            "prevRoundsTiebreakFingerprint": fingerprint, **extra}


def tied_box() -> dict[str, Any]:
    """Route 1 of 2, time criterion on, Ana and Bob tied for first, Cris third."""
    return run(initiated_box(names=["Ana", "Bob", "Cris", "Dan"]),
               {"type": "SET_TIME_CRITERION", "timeCriterionEnabled": True},
               score("Ana", 8, 50), score("Bob", 8, 40), score("Cris", 5, 30))


def event(state: dict[str, Any]) -> dict[str, Any]:
    events = lead_ranking(state).tie_events
    assert len(events) == 1, events
    return events[0]


def ranks(state: dict[str, Any]) -> dict[str, int]:
    return {row["name"]: row["rank"] for row in lead_ranking(state).rows}


def test_the_full_workflow_through_commands_and_snapshots() -> None:
    state = tied_box()
    snapshot = build_snapshot(state, 3, 0, {})
    assert list(snapshot) == SNAPSHOT_KEYS
    assert snapshot["leadTieEvents"] == snapshot["timeTiebreakEligibleGroups"] == [event(state)]
    assert (snapshot["timeTiebreakHasEligibleTie"], snapshot["timeTiebreakIsResolved"],
            snapshot["leadRankingResolved"], snapshot["leadRankingErrors"]) == (True, False, False, [])
    assert snapshot["timeTiebreakCurrentFingerprint"].startswith("tb3:")
    orjson.dumps(snapshot)
    public = build_public_box(state, 3, 0)
    assert list(public) == PUBLIC_KEYS and public["leadTieEvents"] == snapshot["leadTieEvents"]

    out = send(state, prev_rounds(snapshot["leadTieEvents"][0]["fingerprint"], "no",
                                  prevRoundsTiebreakRanksByName={}))
    assert out.changed and out.public == "BOX_RANKING_UPDATE"
    time_event = event(out.state)
    assert (time_event["stage"], time_event["status"]) == ("time", "pending")
    state = send(out.state, time_yes(time_event["fingerprint"])).state
    snapshot = build_snapshot(state, 3, 0, {})
    assert [(r["name"], r["rank"], r["tb_time"]) for r in snapshot["leadRankingRows"]] == [
        ("Bob", 1, True), ("Ana", 2, True), ("Cris", 3, False), ("Dan", 4, False)]
    assert (snapshot["leadTieEvents"], snapshot["timeTiebreakIsResolved"], snapshot["leadRankingResolved"]) == (
        [], True, True)
    assert snapshot["timeTiebreakHasEligibleTie"] is True  # the tie is broken, but it exists


def test_a_previous_rounds_yes_with_lineage_merges_and_splits() -> None:
    state = tied_box()
    tie = event(state)
    out = send(state, prev_rounds(tie["fingerprint"], "yes", prevRoundsTiebreakLineageKey=tie["lineage_key"],
                                  prevRoundsTiebreakRanksByName={"Ana": 1, "Bob": 2}))
    assert ranks(out.state) == {"Ana": 1, "Bob": 2, "Cris": 3, "Dan": 4}
    assert out.state["prevRoundsTiebreakLineageRanks"] == {tie["lineage_key"]: {"Ana": 1, "Bob": 2}}
    # A corrected time makes a new tie (new fingerprint); the lineage ranks still decide it.
    edited = send(out.state, score("Ana", 8, 55)).state
    assert ranks(edited) == {"Ana": 1, "Bob": 2, "Cris": 3, "Dan": 4}
    assert lead_ranking(edited).resolved


@pytest.mark.parametrize("body", [
    time_yes("fp-1"),
    prev_rounds("fp-1", "yes", prevRoundsTiebreakLineageKey="lk", prevRoundsTiebreakRanksByName={"Ana": 1, "Bob": 2},
                prevRoundsTiebreakOrder=["Ana", "Bob"]),
    prev_rounds("fp-1", "no", prevRoundsTiebreakRanksByName={}),
    {"type": "SET_TIME_CRITERION", "timeCriterionEnabled": True},
])
def test_re_sending_the_stored_decision_changes_nothing(body: dict[str, Any]) -> None:
    first = send(tied_box(), body)
    again = send(first.state, {**body, "actionId": "retry-1"})
    assert again.state is first.state
    assert (again.echo, again.changed, again.snapshot, again.public, again.durable) == (None, False, False, None, False)


def test_a_different_decision_or_setting_is_a_change() -> None:
    state = send(tied_box(), time_yes("fp-1")).state
    assert send(state, time_yes("fp-1", "no")).changed
    assert send(state, time_yes("fp-2")).changed  # same decision, another tie: the resolved pair moves
    assert send(state, {"type": "SET_TIME_CRITERION", "timeCriterionEnabled": False}).changed
    merged = send(state, prev_rounds("fp-1", "yes", prevRoundsTiebreakLineageKey="lk",
                                     prevRoundsTiebreakRanksByName={"Ana": 1})).state
    assert send(merged, prev_rounds("fp-1", "yes", prevRoundsTiebreakLineageKey="lk2",
                                    prevRoundsTiebreakRanksByName={"Ana": 1})).changed  # another lineage merge


def test_tie_break_badges_stick_within_the_route_and_reset_on_the_next_route() -> None:
    state = tied_box()
    tie = event(state)
    state = send(state, prev_rounds(tie["fingerprint"], "yes",
                                    prevRoundsTiebreakRanksByName={"Ana": 1, "Bob": 2})).state
    assert state["leadTiebreakBadgesByName"] == {"Ana": {"tb_prev": True, "tb_time": False}}
    # Three better scores push the tie below the podium, where it is shared again.
    state = run(state, score("Cris", 9, 20), score("Dan", 10, 20), score("Eve", 9.5, 20))
    rows = {row["name"]: row for row in lead_ranking(state).rows}
    assert (rows["Ana"]["rank"], rows["Bob"]["rank"]) == (4, 4) and lead_ranking(state).tie_events == []
    assert rows["Ana"]["tb_prev"] is True and rows["Bob"]["tb_prev"] is False
    assert build_snapshot(state, 0, 0, {})["leadRankingRows"] == lead_ranking(state).rows
    # Snapshots do not change the state: the memory is written by commands only.
    before = orjson.dumps(state)
    build_snapshot(state, 0, 0, {})
    assert orjson.dumps(state) == before

    route_2 = send(state, {"type": "INIT_ROUTE", "routeIndex": 2, "holdsCount": 10,
                           "competitors": [{"nume": n} for n in ("Ana", "Bob", "Cris", "Dan")]}).state
    assert route_2["leadTiebreakBadgesByName"] == {}
    route_2 = run(route_2, score("Ana", 3, 10))
    assert not any(row["tb_prev"] or row["tb_time"] for row in lead_ranking(route_2).rows)


def test_badges_do_not_show_while_the_time_criterion_is_off() -> None:
    state = tied_box()
    state = send(state, prev_rounds(event(state)["fingerprint"], "yes",
                                    prevRoundsTiebreakRanksByName={"Ana": 1, "Bob": 2})).state
    off = send(state, {"type": "SET_TIME_CRITERION", "timeCriterionEnabled": False}).state
    assert not any(row["tb_prev"] for row in lead_ranking(off).rows)
    assert ranks(off)["Ana"] == ranks(off)["Bob"] == 1
    on = send(off, {"type": "SET_TIME_CRITERION", "timeCriterionEnabled": True}).state
    assert {row["name"]: row["tb_prev"] for row in lead_ranking(on).rows}["Ana"] is True


def test_unscored_athletes_at_the_start_of_route_2_raise_no_prompt() -> None:
    state = run(tied_box(), {"type": "INIT_ROUTE", "routeIndex": 2, "holdsCount": 10,
                             "competitors": [{"nume": n} for n in ("Ana", "Bob", "Cris", "Dan")]})
    snapshot = build_snapshot(state, 0, 0, {})
    assert (snapshot["leadTieEvents"], snapshot["timeTiebreakHasEligibleTie"], snapshot["timeTiebreakIsResolved"]) == (
        [], False, True)
    assert {row["rank"] for row in snapshot["leadRankingRows"]} == {1}


def test_restart_keeps_decisions_and_badges() -> None:
    state = tied_box()
    state = send(state, prev_rounds(event(state)["fingerprint"], "yes", prevRoundsTiebreakLineageKey="lk",
                                    prevRoundsTiebreakRanksByName={"Ana": 1, "Bob": 2})).state
    loaded = state_from_checkpoint(orjson.loads(orjson.dumps(state)))
    assert loaded == state
    assert lead_ranking(loaded) == lead_ranking(state)


def test_a_reference_box_file_keeps_badges_of_its_current_route_only() -> None:
    badges = {"Ana": {"tb_prev": True, "tb_time": False, "tb_prev_helper": {}}, "Bob": {"tb_prev": False}, "X": 3}
    saved = {**default_state("s"), "initiated": True, "routeIndex": 2, "leadTiebreakBadgesByName": badges}
    current = state_from_checkpoint({**saved, "leadTiebreakBadgesRouteIndex": 2})
    assert current["leadTiebreakBadgesByName"] == {"Ana": {"tb_prev": True, "tb_time": False}}
    assert "leadTiebreakBadgesRouteIndex" not in current
    assert state_from_checkpoint({**saved, "leadTiebreakBadgesRouteIndex": 1})["leadTiebreakBadgesByName"] == {}
    assert state_from_checkpoint({**saved, "initiated": False})["leadTiebreakBadgesByName"] == {}


@pytest.mark.parametrize("bad", [
    {"timeTiebreakDecisions": []},
    {"timeTiebreakDecisions": {"fp": "maybe"}},
    {"timeTiebreakPreference": "YES"},
    {"prevRoundsTiebreakResolvedDecision": 1},
    {"timeTiebreakResolvedFingerprint": 5},
    {"prevRoundsTiebreakOrders": {"fp": "Ana"}},
    {"prevRoundsTiebreakOrders": {"fp": ["Ana", 2]}},
    {"prevRoundsTiebreakRanks": {"fp": {"Ana": 0}}},
    {"prevRoundsTiebreakRanks": {"fp": {"Ana": True}}},
    {"prevRoundsTiebreakLineageRanks": {"lk": ["Ana"]}},
])
def test_a_checkpoint_with_malformed_decisions_is_refused(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=f"^{next(iter(bad))} must"):
        state_from_checkpoint({**default_state("s"), **bad})
