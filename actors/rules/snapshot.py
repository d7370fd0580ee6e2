"""What clients see of a box: the full STATE_SNAPSHOT (§2.2) and the public box state (§2.5).

Both share the state's nested lists and dicts instead of copying them: states are never mutated.
"""

from collections.abc import Mapping
from typing import Any

from .tiebreak import lead_ranking
from .timer import remaining_seconds

OFFICIAL_KEYS = ("judgeChief", "competitionDirector", "chiefRoutesetter")


def build_snapshot(
    state: Mapping[str, Any], box_id: int, now_ms: int, officials: Mapping[str, str]
) -> dict[str, Any]:
    return {
        "type": "STATE_SNAPSHOT",
        "boxId": box_id,
        "initiated": state["initiated"],
        "holdsCount": state["holdsCount"],
        "routeIndex": state["routeIndex"],
        "routesCount": state["routesCount"],
        "holdsCounts": state["holdsCounts"],
        "currentClimber": state["currentClimber"],
        "preparingClimber": state["preparingClimber"],
        "started": state["started"],
        "timerState": state["timerState"],
        "holdCount": state["holdCount"],
        "competitors": state["competitors"],
        "categorie": state["categorie"],
        "registeredTime": state["lastRegisteredTime"],
        "remaining": remaining_seconds(state, now_ms),
        **_ranking_section(state),
        "timerPreset": state["timerPreset"],
        "timerPresetSec": state["timerPresetSec"],
        **{key: officials.get(key, "") for key in OFFICIAL_KEYS},
        "sessionId": state["sessionId"],
        "boxVersion": state["boxVersion"],
    }


def build_public_box(state: Mapping[str, Any], box_id: int, now_ms: int) -> dict[str, Any]:
    """Spectators' view: no competitor list, session or version."""
    routes_count = state.get("routesCount")
    holds_counts = state.get("holdsCounts")
    return {
        "boxId": box_id,
        "categorie": state["categorie"],
        "initiated": state["initiated"],
        "routeIndex": state["routeIndex"],
        "routesCount": routes_count if isinstance(routes_count, int) else state["routeIndex"] or 1,
        "holdsCount": state["holdsCount"],
        "holdsCounts": holds_counts if isinstance(holds_counts, list) else [],
        "currentClimber": state["currentClimber"],
        "preparingClimber": state["preparingClimber"] or _derived_preparing(state),
        "timerState": state["timerState"],
        "remaining": remaining_seconds(state, now_ms),
        **_ranking_section(state),
    }


def _ranking_section(state: Mapping[str, Any]) -> dict[str, Any]:
    """The keys from timeCriterionEnabled through timesByName, in wire order."""
    ranking = lead_ranking(state)  # once per snapshot: it runs on every broadcast
    return {
        "timeCriterionEnabled": state["timeCriterionEnabled"],
        "timeTiebreakPreference": state["timeTiebreakPreference"],
        "timeTiebreakDecisions": state["timeTiebreakDecisions"],
        "timeTiebreakResolvedFingerprint": state["timeTiebreakResolvedFingerprint"],
        "timeTiebreakResolvedDecision": state["timeTiebreakResolvedDecision"],
        "prevRoundsTiebreakPreference": state["prevRoundsTiebreakPreference"],
        "prevRoundsTiebreakDecisions": state["prevRoundsTiebreakDecisions"],
        "prevRoundsTiebreakOrders": state["prevRoundsTiebreakOrders"],
        "prevRoundsTiebreakRanks": state["prevRoundsTiebreakRanks"],
        "prevRoundsTiebreakLineageRanks": state["prevRoundsTiebreakLineageRanks"],
        "prevRoundsTiebreakResolvedFingerprint": state["prevRoundsTiebreakResolvedFingerprint"],
        "prevRoundsTiebreakResolvedDecision": state["prevRoundsTiebreakResolvedDecision"],
        "timeTiebreakCurrentFingerprint": ranking.current_fingerprint,
        "timeTiebreakHasEligibleTie": ranking.has_eligible_tie,
        "timeTiebreakIsResolved": ranking.is_resolved,
        "timeTiebreakEligibleGroups": ranking.tie_events,
        "leadRankingRows": ranking.rows,
        "leadTieEvents": ranking.tie_events,
        "leadRankingResolved": ranking.resolved,
        "leadRankingErrors": ranking.errors,
        "scoresByName": state["scores"],
        "timesByName": state["times"],
    }


def _derived_preparing(state: Mapping[str, Any]) -> str:
    """The next unmarked competitor after the current one, for boxes that never stored it."""
    competitors = state["competitors"]
    names = [c["nume"] for c in competitors]
    if state["currentClimber"] not in names:
        return ""
    start = names.index(state["currentClimber"]) + 1
    return next((c["nume"] for c in competitors[start:] if not c.get("marked")), "")


def score_count(state: Mapping[str, Any]) -> int:
    """How many scores the box holds, over every athlete and route (a number for audits and history)."""
    return sum(1 for values in (state.get("scores") or {}).values() if isinstance(values, list)
               for value in values if value is not None)
