import orjson

from actors.rules import build_public_box, build_snapshot, default_state

from .helpers import SESSION, initiated_box, run

SNAPSHOT_KEYS = [
    "type", "boxId", "initiated", "holdsCount", "routeIndex", "routesCount", "holdsCounts", "currentClimber",
    "preparingClimber", "started", "timerState", "holdCount", "competitors", "categorie", "registeredTime",
    "remaining", "timeCriterionEnabled", "timeTiebreakPreference", "timeTiebreakDecisions",
    "timeTiebreakResolvedFingerprint", "timeTiebreakResolvedDecision", "prevRoundsTiebreakPreference",
    "prevRoundsTiebreakDecisions", "prevRoundsTiebreakOrders", "prevRoundsTiebreakRanks",
    "prevRoundsTiebreakLineageRanks", "prevRoundsTiebreakResolvedFingerprint", "prevRoundsTiebreakResolvedDecision",
    "timeTiebreakCurrentFingerprint", "timeTiebreakHasEligibleTie", "timeTiebreakIsResolved",
    "timeTiebreakEligibleGroups", "leadRankingRows", "leadTieEvents", "leadRankingResolved", "leadRankingErrors",
    "scoresByName", "timesByName", "timerPreset", "timerPresetSec", "judgeChief", "competitionDirector",
    "chiefRoutesetter", "sessionId", "boxVersion",
]
RANKING_KEYS = SNAPSHOT_KEYS[SNAPSHOT_KEYS.index("timeCriterionEnabled") : SNAPSHOT_KEYS.index("timesByName") + 1]
PUBLIC_KEYS = [
    "boxId", "categorie", "initiated", "routeIndex", "routesCount", "holdsCount", "holdsCounts", "currentClimber",
    "preparingClimber", "timerState", "remaining", *RANKING_KEYS,
]


def test_snapshot_has_every_key_in_wire_order() -> None:
    snapshot = build_snapshot(initiated_box(), 4, 0, {"judgeChief": "Ion"})
    assert list(snapshot) == SNAPSHOT_KEYS
    assert snapshot["type"] == "STATE_SNAPSHOT" and snapshot["boxId"] == 4
    assert (snapshot["judgeChief"], snapshot["competitionDirector"], snapshot["chiefRoutesetter"]) == ("Ion", "", "")
    assert "recentActionIds" not in snapshot and "timerEndsAtMs" not in snapshot


def test_snapshot_reports_the_live_remaining_time_and_registered_time() -> None:
    box = run(initiated_box(preset="05:00"), {"type": "REGISTER_TIME", "registeredTime": 9})
    box = run(box, {"type": "START_TIMER"}, now_ms=1_000)
    box = {**box, "lastRegisteredTime": 9.0}
    snapshot = build_snapshot(box, 0, 1_038, {})
    assert snapshot["remaining"] == 299.962 and snapshot["registeredTime"] == 9.0
    assert (snapshot["started"], snapshot["timerState"]) == (True, "running")


def test_snapshot_ranking_keys_hold_the_stored_maps_and_no_tie_defaults() -> None:
    box = run(initiated_box(),
              {"type": "SUBMIT_SCORE", "competitor": "Ana", "score": 5, "registeredTime": 20},
              {"type": "SET_TIME_TIEBREAK_DECISION", "timeTiebreakDecision": "yes", "timeTiebreakFingerprint": "fp"})
    snapshot = build_snapshot(box, 0, 0, {})
    assert snapshot["scoresByName"] == {"Ana": [5.0]} and snapshot["timesByName"] == {"Ana": [20.0]}
    assert snapshot["timeTiebreakDecisions"] == {"fp": "yes"}
    assert snapshot["leadRankingRows"][0]["name"] == "Ana"
    assert (snapshot["timeTiebreakCurrentFingerprint"], snapshot["timeTiebreakHasEligibleTie"],
            snapshot["timeTiebreakIsResolved"], snapshot["timeTiebreakEligibleGroups"], snapshot["leadTieEvents"],
            snapshot["leadRankingResolved"], snapshot["leadRankingErrors"]) == (None, False, True, [], [], True, [])
    assert (snapshot["sessionId"], snapshot["boxVersion"]) == (SESSION, box["boxVersion"])


def test_snapshot_of_a_fresh_box_serialises() -> None:
    snapshot = build_snapshot(default_state(SESSION), 0, 0, {})
    assert snapshot["remaining"] is None
    assert orjson.loads(orjson.dumps(snapshot)) == snapshot


def test_public_box_has_the_spectator_keys_in_order_and_nothing_private() -> None:
    public = build_public_box(initiated_box(), 2, 0)
    assert list(public) == PUBLIC_KEYS
    assert public["boxId"] == 2 and public["remaining"] == 300.0
    orjson.dumps(public)


def test_public_box_falls_back_for_odd_route_data_and_derives_the_preparing_climber() -> None:
    box = {**initiated_box(names=["Ana", "Bob", "Cris"]), "routesCount": None, "holdsCounts": None,
           "preparingClimber": "", "routeIndex": 3}
    box["competitors"] = [{**c, "marked": c["nume"] == "Bob"} for c in box["competitors"]]
    public = build_public_box(box, 0, 0)
    assert (public["routesCount"], public["holdsCounts"], public["preparingClimber"]) == (3, [], "Cris")


def test_public_box_without_a_current_climber_has_no_preparing_climber() -> None:
    assert build_public_box(default_state(SESSION), 0, 0)["preparingClimber"] == ""
