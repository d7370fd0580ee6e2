"""Box snapshots for backups, and the pure rule for putting a backed-up state back on a box.

A backup snapshot carries the reference's fields (so the escalada UI and old tooling can read it)
plus `state`, the complete box state, so a restore is exact: tie-break decisions, timer fields,
preparing climber and all. Snapshots from the escalada backend (no `state`) are converted.
"""
from collections.abc import Mapping
from typing import Any

from .commands import is_int, is_number, normal_timer_preset
from .limits import MAX_BOX_ID, MAX_COMPETITORS, MAX_REMAINING_SEC, MAX_RESTORED_VERSION, MAX_SAFE_INTEGER, is_box_id
from .snapshot import build_public_box, build_snapshot
from .state import default_state, state_from_checkpoint
from .timer import remaining_seconds
from .transitions import preset_seconds
from .valid_state import InvalidState

# A snapshot's own fields that name a state field differently (the reference's names).
_STATE_NAMES = {"registeredTime": "lastRegisteredTime", "clubs": "competitors", "competitorsAll": "competitors"}


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
    """(boxId, full state) from a backup snapshot; raises ValueError naming the field at fault.

    A snapshot with `state` is Belay's: the state must be valid and the escalada fields beside it
    must say the same. One without is the escalada backend's: its fields become the state.
    """
    if not isinstance(snapshot, dict):
        raise ValueError("a snapshot must be a JSON object")
    box_id = snapshot.get("boxId")
    if not is_box_id(box_id):
        raise ValueError(f"snapshot boxId must be an integer from 0 to {MAX_BOX_ID}")
    _check_unstored_fields(snapshot)
    if "state" in snapshot:
        try:
            state = state_from_checkpoint(snapshot["state"])
        except InvalidState as exc:
            raise exc.under("state") from None
        _check_agreement(snapshot, state, box_id)
        where = "state.boxVersion"
    else:
        state = _from_reference(snapshot)
        where = "boxVersion"
    if state["boxVersion"] > MAX_RESTORED_VERSION:
        raise InvalidState(where, f"must be at most {MAX_RESTORED_VERSION}, so that the restored box "
                                  "has room for later commands")
    try:  # whatever the checks above missed must not surface later as a broken box
        build_snapshot(state, box_id, 0, {})
        build_public_box(state, box_id, 0)
    except Exception as exc:
        raise ValueError(f"the state cannot be shown ({type(exc).__name__}: {exc})") from None
    return box_id, state


def _check_unstored_fields(snapshot: Mapping[str, Any]) -> None:
    """Fields that are written for readers and never become state: wrong types are still refused."""
    remaining = snapshot.get("remaining")
    if remaining is not None and not (is_number(remaining) and 0 <= remaining <= MAX_REMAINING_SEC):
        raise InvalidState("remaining", f"must be a number from 0 to {MAX_REMAINING_SEC} or null")
    competition = snapshot.get("competitionId")
    if competition is not None and not (is_int(competition) and 0 <= competition <= MAX_SAFE_INTEGER):
        raise InvalidState("competitionId", f"must be an integer from 0 to {MAX_SAFE_INTEGER} or null")
    clubs = snapshot.get("clubs")
    if clubs is not None and not (isinstance(clubs, dict) and len(clubs) <= MAX_COMPETITORS
                                  and all(isinstance(club, str) for club in clubs.values())):
        raise InvalidState("clubs", f"must map at most {MAX_COMPETITORS} names to clubs")
    everyone = snapshot.get("competitorsAll")
    if everyone is not None and not (isinstance(everyone, list) and len(everyone) <= MAX_COMPETITORS
                                     and all(isinstance(entry, dict) for entry in everyone)):
        raise InvalidState("competitorsAll", f"must be a list of at most {MAX_COMPETITORS} objects")
    if snapshot.get("ranking") is not None and not isinstance(snapshot["ranking"], list):
        raise InvalidState("ranking", "must be a list")


def _check_agreement(snapshot: Mapping[str, Any], state: Mapping[str, Any], box_id: int) -> None:
    """Every escalada field beside `state` must be what a backup of that state writes (null = absent)."""
    expected = backup_snapshot(state, box_id, 0)
    for key, value in expected.items():
        given = snapshot.get(key)
        if key in ("state", "boxId", "competitionId", "remaining") or given is None:
            continue
        if key == "competitorsAll":  # a snapshot may be restored into another box: its entries' boxId may differ
            given, value = _without_box_ids(given), _without_box_ids(value)
        if not _same(given, value):
            raise InvalidState(key, f"does not match state.{_STATE_NAMES.get(key, key)}")
    remaining = snapshot.get("remaining")
    # A stopped clock shows the same time whenever it is read; a running one only has its range checked.
    if remaining is not None and state["timerEndsAtMs"] is None and remaining != remaining_seconds(state, 0):
        raise InvalidState("remaining", "does not match the clock in state")


def _from_reference(snapshot: dict[str, Any]) -> dict[str, Any]:
    """An escalada backend snapshot: the fields it has, defaults for the rest, then the same checks
    as any state (an error names the snapshot's field)."""
    session = snapshot.get("sessionId")
    state = default_state(session if session is not None else "restored")
    copied = ("initiated", "holdsCount", "routeIndex", "holdsCounts", "currentClimber", "started", "timerState",
              "holdCount", "categorie", "timerPreset", "timerPresetSec", "scores", "times",
              "timeCriterionEnabled", "boxVersion", "preparingClimber")
    state.update({key: snapshot[key] for key in copied if snapshot.get(key) is not None})
    routes = snapshot.get("routesCount", snapshot.get("routes_count"))
    if routes is not None:
        state["routesCount"] = routes
    if snapshot.get("registeredTime") is not None:
        state["lastRegisteredTime"] = snapshot["registeredTime"]
    if snapshot.get("remaining") is not None:
        state["timerRemainingSec"] = float(snapshot["remaining"])
    if snapshot.get("timerState") is None:  # older snapshots knew only `started`
        state["timerState"] = "running" if state["started"] is True else "idle"
    preset = state["timerPreset"]
    if snapshot.get("timerPresetSec") is None and preset is not None and normal_timer_preset(preset) == preset:
        state["timerPresetSec"] = preset_seconds(state["timerPreset"])
    competitors = snapshot.get("competitors")
    if competitors is not None:
        state["competitors"] = [_reference_competitor(c) for c in competitors] \
            if isinstance(competitors, list) and len(competitors) <= MAX_COMPETITORS else competitors
    try:
        return state_from_checkpoint(state)
    except InvalidState as exc:
        raise InvalidState(_snapshot_name(exc.field), exc.rule) from None


def _reference_competitor(competitor: object) -> object:
    """The escalada backend writes `marked` as anything truthy and an absent club as null or ""."""
    if not isinstance(competitor, dict):
        return competitor
    out = {key: value for key, value in competitor.items() if key != "club" or value not in (None, "")}
    out["marked"] = bool(competitor.get("marked"))
    return out


def _snapshot_name(field: str) -> str:
    renamed = {"lastRegisteredTime": "registeredTime", "timerRemainingSec": "remaining"}
    return renamed.get(field, field)


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


def _same(given: object, expected: object) -> bool:
    """Equal values of the same JSON types (true is not 1); the walk is only as deep as `expected`."""
    if isinstance(expected, bool) or expected is None or isinstance(expected, str):
        return type(given) is type(expected) and given == expected
    if isinstance(expected, (int, float)):
        return is_number(given) and given == expected
    if isinstance(expected, list):
        return isinstance(given, list) and len(given) == len(expected) and all(map(_same, given, expected))
    if isinstance(expected, dict):
        return (isinstance(given, dict) and given.keys() == expected.keys()
                and all(_same(given[key], value) for key, value in expected.items()))
    return False


def _without_box_ids(entries: object) -> object:
    if not isinstance(entries, list):
        return entries
    return [{k: v for k, v in entry.items() if k != "boxId"} if isinstance(entry, dict) else entry for entry in entries]


def snapshot_time_ms(snapshot: Mapping[str, Any], state: Mapping[str, Any]) -> int | None:
    """When a backup snapshot read its clock: `backup_snapshot` records the running clock's
    `remaining` at that moment, so the moment is the deadline minus it. None when unknown."""
    remaining, ends_at = snapshot.get("remaining"), state.get("timerEndsAtMs")
    if (state.get("timerState") != "running" or not isinstance(ends_at, int) or isinstance(remaining, bool)
            or not isinstance(remaining, (int, float)) or not 0 <= remaining <= 10**7):
        return None
    return ends_at - round(remaining * 1000)
