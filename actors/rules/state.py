"""The per-box state dict (reference-backend §4): defaults and loading of saved checkpoints."""

from collections.abc import Callable
from typing import Any

# Keys whose value must have one of these types in a loaded checkpoint (None allowed only where listed).
_MAIN_KEY_TYPES: dict[str, tuple[type, ...]] = {
    "sessionId": (str,),
    "boxVersion": (int,),
    "initiated": (bool,),
    "started": (bool,),
    "timerState": (str,),
    "holdsCount": (int,),
    "holdCount": (int, float),
    "routeIndex": (int,),
    "routesCount": (int,),
    "holdsCounts": (list,),
    "competitors": (list,),
    "currentClimber": (str,),
    "preparingClimber": (str,),
    "categorie": (str,),
    "timeCriterionEnabled": (bool,),
    "timerEndsAtMs": (int, type(None)),
    "timerRemainingSec": (int, float, type(None)),
    "timerPresetSec": (int, type(None)),
    "timerPreset": (str, type(None)),
    "remaining": (int, float, type(None)),
    "lastRegisteredTime": (int, float, type(None)),
    "scores": (dict,),
    "times": (dict,),
    "recentActionIds": (list,),
}

TIMER_STATES = ("idle", "running", "paused")


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
    """Old or hand-edited box files still load: missing keys (or nulls where null is not allowed) get defaults."""
    if not isinstance(obj, dict):
        raise ValueError("box state must be a JSON object")
    for key in ("sessionId", "boxVersion"):
        if key not in obj:
            raise ValueError(f"box state lacks {key}")
    defaults = default_state(obj["sessionId"])
    state = {key: obj[key] if obj.get(key) is not None else default for key, default in defaults.items()}
    for key, types in _MAIN_KEY_TYPES.items():
        value = state[key]
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            raise ValueError(f"box state key {key} has the wrong type ({type(value).__name__})")
    if not state["sessionId"]:
        raise ValueError("box state has an empty sessionId")
    if state["boxVersion"] < 0:
        raise ValueError("box state has a negative boxVersion")
    if state["timerState"] not in TIMER_STATES:
        raise ValueError(f"box state has an unknown timerState {state['timerState']!r}")
    if not all(isinstance(c, dict) and isinstance(c.get("nume"), str) for c in state["competitors"]):
        raise ValueError("box state has a competitor without a name")
    _check_tiebreaks(state)
    state["leadTiebreakBadgesByName"] = _loaded_badges(obj, state)
    return state


def _check_tiebreaks(state: dict[str, Any]) -> None:
    """Stored decisions must have the shapes the commands write, or the ranking would misread them."""
    for prefix in ("timeTiebreak", "prevRoundsTiebreak"):
        for key in (prefix + "Preference", prefix + "ResolvedDecision"):
            if state[key] not in (None, "yes", "no"):
                raise ValueError(f"box state key {key} must be yes, no or null")
        if not isinstance(state[prefix + "ResolvedFingerprint"], (str, type(None))):
            raise ValueError(f"box state key {prefix}ResolvedFingerprint must be a string or null")
        if not _map_of(state[prefix + "Decisions"], lambda d: d in ("yes", "no")):
            raise ValueError(f"box state key {prefix}Decisions must map fingerprints to yes or no")
    if not _map_of(state["prevRoundsTiebreakOrders"], lambda order: isinstance(order, list)
                   and all(isinstance(name, str) for name in order)):
        raise ValueError("box state key prevRoundsTiebreakOrders must map fingerprints to lists of names")
    for key in ("prevRoundsTiebreakRanks", "prevRoundsTiebreakLineageRanks"):
        if not _map_of(state[key], lambda ranks: _map_of(ranks, _is_rank)):
            raise ValueError(f"box state key {key} must map keys to {{name: positive integer}}")


def _loaded_badges(obj: dict[str, Any], state: dict[str, Any]) -> dict[str, dict[str, bool]]:
    """Badges are display memory: malformed entries are dropped, never a reason to refuse the file.

    A reference backend's file names the route its badges belong to; they are void on another route.
    """
    badges = obj.get("leadTiebreakBadgesByName")
    route = obj.get("leadTiebreakBadgesRouteIndex", state["routeIndex"])
    if not isinstance(badges, dict) or not state["initiated"] or route != state["routeIndex"]:
        return {}
    kept = {}
    for name, flags in badges.items():
        if isinstance(name, str) and isinstance(flags, dict):
            entry = {"tb_prev": flags.get("tb_prev") is True, "tb_time": flags.get("tb_time") is True}
            if entry["tb_prev"] or entry["tb_time"]:
                kept[name] = entry
    return kept


def _map_of(value: object, valid: Callable[[Any], bool]) -> bool:
    return isinstance(value, dict) and all(isinstance(key, str) and valid(item) for key, item in value.items())


def _is_rank(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0
