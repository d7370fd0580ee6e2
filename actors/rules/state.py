"""The per-box state dict (reference-backend §4): defaults and loading of saved checkpoints."""

from typing import Any

from .names import MAX_NAME_LENGTH
from .tiebreak import BADGES_KEY
from .valid_state import MAX_BADGES, InvalidState, check_state


def default_state(session_id: str) -> dict[str, Any]:
    return {
        "initiated": False,
        "holdsCount": 0,
        "currentClimber": "",
        "preparingClimber": "",
        "started": False,
        "timerState": "idle",
        "holdCount": 0.0,
        "routeIndex": 1,
        "routesCount": 1,
        "holdsCounts": [],
        "competitors": [],
        "categorie": "",
        "lastRegisteredTime": None,
        "remaining": None,
        "timerPreset": None,
        "timerPresetSec": None,
        "timerRemainingSec": None,
        "timerEndsAtMs": None,
        "timeCriterionEnabled": False,
        "timeTiebreakPreference": None,
        "timeTiebreakResolvedFingerprint": None,
        "timeTiebreakResolvedDecision": None,
        "timeTiebreakDecisions": {},
        "prevRoundsTiebreakPreference": None,
        "prevRoundsTiebreakResolvedFingerprint": None,
        "prevRoundsTiebreakResolvedDecision": None,
        "prevRoundsTiebreakDecisions": {},
        "prevRoundsTiebreakOrders": {},
        "prevRoundsTiebreakRanks": {},
        "prevRoundsTiebreakLineageRanks": {},
        "sessionId": session_id,
        "boxVersion": 0,
        "scores": {},
        "times": {},
        "recentActionIds": [],
        "leadTiebreakBadgesByName": {},  # sticky tie-break badges of the current route (tiebreak.py)
    }


def state_from_checkpoint(obj: object) -> dict[str, Any]:
    """A saved state as a box can use it, or InvalidState naming the field that no rule could have written.

    Older files still load: missing keys (or nulls where null is not allowed) get their defaults.
    """
    if not isinstance(obj, dict):
        raise InvalidState("state", "must be a JSON object")
    for key in ("sessionId", "boxVersion"):
        if key not in obj:
            raise InvalidState(key, "is required")
    defaults = default_state(obj["sessionId"])
    state = {key: obj[key] if obj.get(key) is not None else default for key, default in defaults.items()}
    state[BADGES_KEY] = _loaded_badges(obj, state)
    check_state(state)
    return state


def _loaded_badges(obj: dict[str, Any], state: dict[str, Any]) -> dict[str, dict[str, bool]]:
    """Badges are display memory: malformed entries are dropped, never a reason to refuse the file.

    A reference backend's file names the route its badges belong to; they are void on another route.
    """
    badges = obj.get(BADGES_KEY)
    route = obj.get("leadTiebreakBadgesRouteIndex", state["routeIndex"])
    if not isinstance(badges, dict) or state["initiated"] is not True or route != state["routeIndex"]:
        return {}
    kept = {}
    for name, flags in badges.items():
        if isinstance(name, str) and 1 <= len(name) <= MAX_NAME_LENGTH and isinstance(flags, dict):
            entry = {"tb_prev": flags.get("tb_prev") is True, "tb_time": flags.get("tb_time") is True}
            if entry["tb_prev"] or entry["tb_time"]:
                kept[name] = entry
                if len(kept) == MAX_BADGES:  # more names than a ranking can have
                    break
    return kept
