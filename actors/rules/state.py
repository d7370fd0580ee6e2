"""The per-box state dict (reference-backend §4): defaults and loading of saved checkpoints."""

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
    return state
