"""Box snapshots for backups, and the pure rule for putting a backed-up state back on a box.

A backup snapshot carries the reference's fields (so the escalada UI and old tooling can read it)
plus `state`, the complete box state, so a restore is exact: tie-break decisions, timer fields,
preparing climber and all. Snapshots from the escalada backend (no `state`) are converted.
"""
from collections.abc import Mapping
from typing import Any

from .snapshot import build_public_box, build_snapshot
from .state import default_state, state_from_checkpoint
from .timer import remaining_seconds

MAX_NAMES = 2000
MAX_ROUTES = 999


def backup_snapshot(state: Mapping[str, Any], box_id: int, now_ms: int) -> dict[str, Any]:
    competitors = state.get("competitors") or []
    clubs = {c["nume"]: c["club"] for c in competitors if c.get("club")}
    return {
        "boxId": box_id,
        "competitionId": None,
        "initiated": state["initiated"],
        "holdsCount": state["holdsCount"],
        "holdsCounts": state["holdsCounts"],
        "routeIndex": state["routeIndex"],
        "routesCount": state["routesCount"],
        "currentClimber": state["currentClimber"],
        "preparingClimber": state["preparingClimber"],
        "started": state["started"],
        "timerState": state["timerState"],
        "holdCount": state["holdCount"],
        "competitors": competitors,
        "categorie": state["categorie"],
        "clubs": clubs,
        "registeredTime": state.get("lastRegisteredTime"),
        "remaining": remaining_seconds(state, now_ms),
        "timeCriterionEnabled": state["timeCriterionEnabled"],
        "timerPreset": state.get("timerPreset"),
        "timerPresetSec": state.get("timerPresetSec"),
        "sessionId": state["sessionId"],
        "boxVersion": state["boxVersion"],
        "competitorsAll": [{"id": None, "name": c["nume"], "category": state["categorie"] or None,
                            "club": c.get("club"), "bib": None, "boxId": box_id} for c in competitors],
        "scores": state.get("scores") or {},
        "times": state.get("times") or {},
        "state": dict(state),
    }


def state_from_backup(snapshot: object) -> tuple[int, dict[str, Any]]:
    """(boxId, full state) from a backup snapshot; raises ValueError with the reason."""
    if not isinstance(snapshot, dict):
        raise ValueError("a snapshot must be a JSON object")
    box_id = snapshot.get("boxId")
    if not isinstance(box_id, int) or isinstance(box_id, bool) or not 0 <= box_id <= 9999:
        raise ValueError("snapshot boxId must be an integer from 0 to 9999")
    if "state" in snapshot:
        state = state_from_checkpoint(snapshot["state"])
    else:
        state = _from_reference(snapshot)
    check_restorable(state)
    try:  # whatever the checks above missed must not surface later as a broken box
        build_snapshot(state, box_id, 0, {})
        build_public_box(state, box_id, 0)
    except Exception as exc:
        raise ValueError(f"the state cannot be shown ({type(exc).__name__}: {exc})") from None
    return box_id, state


def _from_reference(snapshot: dict[str, Any]) -> dict[str, Any]:
    """An escalada backend snapshot: the fields it has, defaults for the rest."""
    session = snapshot.get("sessionId")
    state = default_state(session if isinstance(session, str) and session else "restored")
    copied = ("initiated", "holdsCount", "routeIndex", "holdsCounts", "currentClimber", "started", "timerState",
              "holdCount", "competitors", "categorie", "timerPreset", "timerPresetSec", "scores", "times",
              "timeCriterionEnabled", "boxVersion", "preparingClimber")
    state.update({key: snapshot[key] for key in copied if snapshot.get(key) is not None})
    routes = snapshot.get("routesCount", snapshot.get("routes_count"))
    if routes is not None:
        state["routesCount"] = routes
    if snapshot.get("registeredTime") is not None:
        state["lastRegisteredTime"] = snapshot["registeredTime"]
    if isinstance(snapshot.get("remaining"), (int, float)) and not isinstance(snapshot["remaining"], bool):
        state["timerRemainingSec"] = float(snapshot["remaining"])
    state["competitors"] = [{"nume": c["nume"], "marked": bool(c.get("marked")), **({"club": c["club"]} if c.get("club") else {})}
                            for c in state["competitors"] if isinstance(c, dict) and isinstance(c.get("nume"), str)] \
        if isinstance(state["competitors"], list) else state["competitors"]
    return state_from_checkpoint(state)


def restored_state(backup: Mapping[str, Any], live_version: int, as_of_ms: int, new_session_id: str) -> dict[str, Any]:
    """What a box becomes when a saved state is put back: a new session and a version above both
    the live one and the saved one, so no open tab can apply a stale command on top; a running
    clock comes back paused with the time it had left at `as_of_ms`, when the state was saved
    (not at the restore: a backup from ten minutes ago must not lose ten minutes)."""
    state = dict(backup)
    state["sessionId"] = new_session_id
    state["boxVersion"] = max(live_version, int(backup["boxVersion"])) + 1
    if state.get("timerState") == "running":
        left = remaining_seconds(backup, as_of_ms)
        state.update(timerState="paused", started=False, timerEndsAtMs=None, timerRemainingSec=left)
    return state


def snapshot_time_ms(snapshot: Mapping[str, Any], state: Mapping[str, Any]) -> int | None:
    """When a backup snapshot read its clock: `backup_snapshot` records the running clock's
    `remaining` at that moment, so the moment is the deadline minus it. None when unknown."""
    remaining, ends_at = snapshot.get("remaining"), state.get("timerEndsAtMs")
    if (state.get("timerState") != "running" or not isinstance(ends_at, int) or isinstance(remaining, bool)
            or not isinstance(remaining, (int, float)) or not 0 <= remaining <= 10**7):
        return None
    return ends_at - round(remaining * 1000)


def check_restorable(state: Mapping[str, Any]) -> None:
    """Deeper checks than a checkpoint load: a restored state comes from a file a person handed in."""
    names = state["competitors"]
    if len(names) > 500:
        raise ValueError("more than 500 competitors")
    for competitor in names:
        if not isinstance(competitor.get("marked", False), bool):
            raise ValueError("competitor 'marked' must be true or false")
        if len(competitor["nume"]) > 255 or not isinstance(competitor.get("club", ""), str):
            raise ValueError("competitor name or club is not valid text")
    for key in ("scores", "times"):
        table = state[key]
        if len(table) > MAX_NAMES:
            raise ValueError(f"{key} has too many names")
        for name, values in table.items():
            if not isinstance(values, list) or len(values) > MAX_ROUTES or not all(
                    v is None or (isinstance(v, (int, float)) and not isinstance(v, bool) and v == v) for v in values):
                raise ValueError(f"{key} of {name!r} must be a list of numbers or nulls")
    if not all(isinstance(h, int) and not isinstance(h, bool) and 0 <= h <= 100 for h in state["holdsCounts"]):
        raise ValueError("holdsCounts must be integers from 0 to 100")
    for key in ("timeTiebreakDecisions", "prevRoundsTiebreakDecisions"):
        decisions = state.get(key)
        if not isinstance(decisions, dict) or not all(v in ("yes", "no") for v in decisions.values()):
            raise ValueError(f"{key} must map fingerprints to yes/no")
    for key in ("prevRoundsTiebreakOrders", "prevRoundsTiebreakRanks", "prevRoundsTiebreakLineageRanks"):
        if not isinstance(state.get(key), dict):
            raise ValueError(f"{key} must be an object")
