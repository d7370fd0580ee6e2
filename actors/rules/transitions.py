"""What each command does to a box (reference-backend §3.3, §3.4 and §3.6, as corrected by §10).

States are treated as immutable: every change builds a new top-level dict and new copies of the
nested lists/dicts it touches, because other threads may be serialising the old state right now.
"""

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .commands import Command
from .errors import CommandError
from .limits import ACTION_WINDOW, MAX_BOX_VERSION, MAX_HOLDS, MAX_NAMES, MAX_TIEBREAK_ENTRIES
from .tiebreak import BADGES_KEY, RANKING_INPUT_KEYS, remembered_badges
from .timer import remaining_seconds

LAST_VERSION = (f"Invalid command: the box is at version {MAX_BOX_VERSION}, the highest a client can count to; "
                "it takes no more changes")

STATUS = "BOX_STATUS_UPDATE"
FLOW = "BOX_FLOW_UPDATE"
RANKING = "BOX_RANKING_UPDATE"

# Settings a client re-sends as they are (the control panel repeats a time decision every 2 s):
# re-sending the stored value changes nothing, so it is answered "ok" without a new version.
_SETTINGS = frozenset({"SET_TIME_CRITERION", "SET_TIME_TIEBREAK_DECISION", "SET_PREV_ROUNDS_TIEBREAK_DECISION"})


# Commands whose outcome never waits for the disk: relays between tabs, clock syncs (answered
# before their event is durable) and state requests. Only these are worth trying outside the
# box's mailbox (`BoxActor.handle_now`); every other type is decided once, in the box's task.
NO_DISK_WAIT = frozenset({"REQUEST_STATE", "ACTIVE_CLIMBER", "REQUEST_ACTIVE_COMPETITOR", "TIMER_SYNC"})


@dataclass(frozen=True, slots=True)
class Outcome:
    state: dict[str, Any]  # the input object itself when nothing changed
    echo: dict[str, Any] | None
    changed: bool  # must be persisted
    snapshot: bool  # send a STATE_SNAPSHOT after the echo
    public: str | None  # update type for the public channels
    durable: bool  # wait for fsync before answering "ok"


def is_duplicate_action(state: Mapping[str, Any], action_id: str | None) -> bool:
    return action_id is not None and action_id in state.get("recentActionIds", ())


def check_freshness(state: Mapping[str, Any], cmd: Command) -> str | None:
    """Why a command from an outdated client view must be ignored, or None when it may apply."""
    if cmd.session_id is not None and cmd.session_id != state["sessionId"]:
        return "stale_session"
    if cmd.box_version is not None and cmd.box_version < state["boxVersion"]:
        return "stale_version"
    return None


def needs_new_session(cmd: Command) -> bool:
    """Only these commands start a new session: the caller generates an id just for them."""
    return cmd.type == "RESET_BOX" or (cmd.type == "RESET_PARTIAL" and bool(cmd.fields.get("unmarkAll", False)))


def apply_command(state: dict[str, Any], cmd: Command, now_ms: int, new_session_id: str) -> Outcome:
    if cmd.type == "REQUEST_STATE":  # the caller answers with a snapshot
        return Outcome(state, None, False, False, None, False)
    if cmd.type in ("ACTIVE_CLIMBER", "REQUEST_ACTIVE_COMPETITOR"):  # relays between UI tabs
        return Outcome(state, _echo(state, cmd, {}), False, False, None, False)
    if cmd.type == "TIMER_SYNC":
        return _timer_sync(state, cmd)
    transition, public = _TRANSITIONS[cmd.type]
    if state["boxVersion"] >= MAX_BOX_VERSION:  # one more would be a version the UI cannot hold
        raise CommandError(LAST_VERSION)
    new = dict(state)
    overrides = transition(new, cmd, now_ms, new_session_id)
    if cmd.type in _SETTINGS and _same_state(new, state):
        return Outcome(state, None, False, False, None, False)
    if any(new.get(key) is not state.get(key) for key in RANKING_INPUT_KEYS):
        # Badges are remembered here, not while building snapshots, so that replay rebuilds them.
        new[BADGES_KEY] = remembered_badges(new)
    new["boxVersion"] = state["boxVersion"] + 1
    _remember_action(new, cmd.action_id)
    return Outcome(new, _echo(new, cmd, overrides), True, True, public, True)


def _same_state(new: Mapping[str, Any], old: Mapping[str, Any]) -> bool:
    return new.keys() == old.keys() and all(new[key] is value or new[key] == value for key, value in old.items())


def _echo(state: Mapping[str, Any], cmd: Command, overrides: Mapping[str, Any]) -> dict[str, Any]:
    """The command as applied: the box's new version and session, then its normalised fields."""
    head = {"type": cmd.type, "boxId": cmd.box_id, "boxVersion": state["boxVersion"], "sessionId": state["sessionId"]}
    return {**head, **cmd.fields, **overrides}


def _remember_action(new: dict[str, Any], action_id: str | None) -> None:
    if action_id is not None:
        recent = new.get("recentActionIds") or []
        new["recentActionIds"] = [*recent[max(0, len(recent) - ACTION_WINDOW + 1) :], action_id]


def _timer_sync(state: dict[str, Any], cmd: Command) -> Outcome:
    """A client's view of the clock: never overrides a running server timer, never bumps the version."""
    new = state
    if state.get("timerState") != "running":
        remaining = cmd.fields["remaining"]
        updates = {"remaining": remaining, "timerRemainingSec": remaining, "timerEndsAtMs": None}
        if any(key not in state or state[key] != value for key, value in updates.items()):
            new = {**state, **updates}
            _remember_action(new, cmd.action_id)
    changed = new is not state
    return Outcome(new, _echo(new, cmd, {}), changed, False, FLOW if changed else None, False)


# ---------------------------------------------------------------------------------------------
# Transitions: each gets a fresh top-level copy `new` to fill in, and returns the echo overrides.

Transition = Callable[[dict[str, Any], Command, int, str], dict[str, Any]]

_IDLE = {"started": False, "timerState": "idle", "holdCount": 0.0}


def _init_route(new: dict[str, Any], cmd: Command, now_ms: int, new_session_id: str) -> dict[str, Any]:
    fields = cmd.fields
    competitors = [dict(c) for c in fields.get("competitors", ())]
    new.update(
        _IDLE,
        initiated=True,
        holdsCount=fields["holdsCount"],
        routeIndex=fields["routeIndex"],
        competitors=competitors,
        currentClimber=competitors[0]["nume"] if competitors else "",
        preparingClimber=competitors[1]["nume"] if len(competitors) > 1 else "",
        lastRegisteredTime=None,
        remaining=None,
        **_cleared_tiebreaks(),
    )
    if "routesCount" in fields:
        new["routesCount"] = fields["routesCount"]
    if "holdsCounts" in fields:
        new["holdsCounts"] = list(fields["holdsCounts"])
    if "categorie" in fields:
        new["categorie"] = fields["categorie"]
    if "timerPreset" in fields:
        new["timerPreset"] = fields["timerPreset"]
        new["timerPresetSec"] = preset_seconds(fields["timerPreset"])
    if fields["routeIndex"] == 1:  # scores are per-route arrays: a later route keeps the earlier ones
        new["scores"] = {}
        new["times"] = {}
    _rest_timer(new, new["timerPresetSec"])
    echoed = ("competitors", "holdsCount", "routeIndex", "routesCount", "holdsCounts", "categorie", "timerPreset")
    return {key: new[key] for key in echoed}


def _start_or_resume(new: dict[str, Any], cmd: Command, now_ms: int, new_session_id: str) -> dict[str, Any]:
    already_running = new["timerState"] == "running" and new.get("timerEndsAtMs") is not None
    seconds = remaining_seconds(new, now_ms)  # before the legacy `remaining` is cleared below
    new.update(started=True, timerState="running", lastRegisteredTime=None)
    if cmd.type == "START_TIMER":
        new["remaining"] = None
    if not already_running:  # a repeated START must not extend the clock
        new["timerRemainingSec"] = seconds
        new["timerEndsAtMs"] = None if seconds is None else now_ms + round(seconds * 1000)
    return {}


def _stop(new: dict[str, Any], cmd: Command, now_ms: int, new_session_id: str) -> dict[str, Any]:
    if new.get("timerEndsAtMs") is not None:
        seconds = remaining_seconds(new, now_ms)
    elif new.get("timerRemainingSec") is not None:
        seconds = new["timerRemainingSec"]
    else:
        seconds = cmd.fields.get("remaining")
    new.update(started=False, timerState="paused", timerRemainingSec=seconds, timerEndsAtMs=None)
    return {}


def _progress(new: dict[str, Any], cmd: Command, now_ms: int, new_session_id: str) -> dict[str, Any]:
    delta = cmd.fields["delta"]
    current = new["holdCount"]
    # +1 is "next hold": it replaces a pending "+" (7.1 -> 8), while other deltas add exactly.
    value = float(math.floor(current) + 1) if delta == 1 else round(current + delta, 1)
    # A route without a hold count still stops at the most holds a route can have.
    value = min(max(0.0, value), float(new["holdsCount"] or MAX_HOLDS))
    new["holdCount"] = value
    return {"holdCount": value}


def _register_time(new: dict[str, Any], cmd: Command, now_ms: int, new_session_id: str) -> dict[str, Any]:
    new["lastRegisteredTime"] = cmd.fields["registeredTime"]
    return {}


def _set_timer_preset(new: dict[str, Any], cmd: Command, now_ms: int, new_session_id: str) -> dict[str, Any]:
    seconds = preset_seconds(cmd.fields["timerPreset"])
    new.update(timerPreset=cmd.fields["timerPreset"], timerPresetSec=seconds)
    if new["timerState"] not in ("running", "paused"):  # a clock in use keeps its time
        new["remaining"] = float(seconds)
        _rest_timer(new, seconds)
    return {}


def _submit_score(new: dict[str, Any], cmd: Command, now_ms: int, new_session_id: str) -> dict[str, Any]:
    fields = cmd.fields
    competitors = new["competitors"]
    if "idx" in fields:
        if fields["idx"] >= len(competitors):
            raise CommandError(
                f"Invalid command: idx {fields['idx']} is out of range (the box has {len(competitors)} competitors)"
            )
        name = competitors[fields["idx"]]["nume"]
    else:
        name = fields["competitor"]
    time = fields.get("registeredTime", _finite_or_none(new.get("lastRegisteredTime")))
    for key, value in (("scores", fields.get("score")), ("times", time)):
        if value is not None and name not in new[key] and len(new[key]) >= MAX_NAMES:
            raise CommandError(f"Invalid command: the box already holds {key} of {MAX_NAMES} names")

    route = new["routeIndex"] - 1
    if "score" in fields:
        new["scores"] = _with_route_value(new["scores"], name, route, fields["score"])
    if time is not None:
        new["times"] = _with_route_value(new["times"], name, route, time)
    # The time stays registered: the next climber inherits it unless START/RESUME clears it.
    new.update(_IDLE, remaining=None, lastRegisteredTime=time)

    position = next((i for i, c in enumerate(competitors) if c["nume"] == name), None)
    if position is not None:
        competitors = list(competitors)
        competitors[position] = {**competitors[position], "marked": True}
        new["competitors"] = competitors
        if name == new["currentClimber"]:  # scoring anyone else corrects a score without moving the queue
            current = _next_unmarked(competitors, position)
            new["currentClimber"] = competitors[current]["nume"] if current is not None else ""
            following = _next_unmarked(competitors, current) if current is not None else None
            new["preparingClimber"] = competitors[following]["nume"] if following is not None else ""
    _rest_timer(new, new["timerPresetSec"])
    return {"competitor": name, "registeredTime": time}


def _set_time_criterion(new: dict[str, Any], cmd: Command, now_ms: int, new_session_id: str) -> dict[str, Any]:
    new["timeCriterionEnabled"] = cmd.fields["timeCriterionEnabled"]
    return {}


def _set_time_tiebreak(new: dict[str, Any], cmd: Command, now_ms: int, new_session_id: str) -> dict[str, Any]:
    decision = cmd.fields["timeTiebreakDecision"]
    fingerprint = cmd.fields["timeTiebreakFingerprint"]
    new.update(
        timeTiebreakDecisions=_newest({**new["timeTiebreakDecisions"], fingerprint: decision}, MAX_TIEBREAK_ENTRIES),
        timeTiebreakPreference=decision,
        timeTiebreakResolvedFingerprint=fingerprint,
        timeTiebreakResolvedDecision=decision,
    )
    return {}


def _set_prev_rounds_tiebreak(new: dict[str, Any], cmd: Command, now_ms: int, new_session_id: str) -> dict[str, Any]:
    fields = cmd.fields
    decision = fields["prevRoundsTiebreakDecision"]
    fingerprint = fields["prevRoundsTiebreakFingerprint"]
    order = list(fields.get("prevRoundsTiebreakOrder", ()))
    ranks = dict(fields.get("prevRoundsTiebreakRanksByName", {}))
    lineage_key = fields.get("prevRoundsTiebreakLineageKey")
    use = decision == "yes"
    new.update(
        prevRoundsTiebreakDecisions=_newest({**new["prevRoundsTiebreakDecisions"], fingerprint: decision},
                                            MAX_TIEBREAK_ENTRIES),
        prevRoundsTiebreakOrders=_with_entry(new["prevRoundsTiebreakOrders"], fingerprint, order if use else None),
        prevRoundsTiebreakRanks=_with_entry(new["prevRoundsTiebreakRanks"], fingerprint, ranks if use else None),
        prevRoundsTiebreakPreference=decision,
        prevRoundsTiebreakResolvedFingerprint=fingerprint,
        prevRoundsTiebreakResolvedDecision=decision,
    )
    if use and lineage_key and ranks:  # lineage ranks survive fingerprint changes, so they merge
        lineage = new["prevRoundsTiebreakLineageRanks"]
        merged = _newest({**lineage.get(lineage_key, {}), **ranks}, MAX_NAMES)
        new["prevRoundsTiebreakLineageRanks"] = _newest({**lineage, lineage_key: merged}, MAX_TIEBREAK_ENTRIES)
    return {"prevRoundsTiebreakOrder": order, "prevRoundsTiebreakRanksByName": ranks}


def _reset_partial(new: dict[str, Any], cmd: Command, now_ms: int, new_session_id: str) -> dict[str, Any]:
    unmark_all = cmd.fields.get("unmarkAll", False)  # back to pre-init, which implies the other two
    if unmark_all or cmd.fields.get("resetTimer", False):
        preset = new["timerPresetSec"]
        new.update(started=False, timerState="idle", lastRegisteredTime=None)
        new["remaining"] = float(preset) if preset is not None else None
        _rest_timer(new, preset)
    if unmark_all or cmd.fields.get("clearProgress", False):
        new["holdCount"] = 0.0
    if unmark_all:
        first_holds = new["holdsCounts"][0] if new["holdsCounts"] else None
        if isinstance(first_holds, int) and not isinstance(first_holds, bool):
            new["holdsCount"] = first_holds
        new.update(
            initiated=False,
            sessionId=new_session_id,
            routeIndex=1,
            scores={},
            times={},
            competitors=[{**c, "marked": False} for c in new["competitors"]],
            currentClimber="",
            preparingClimber="",
            **_cleared_tiebreaks(),
        )
    return {}


def _reset_box(new: dict[str, Any], cmd: Command, now_ms: int, new_session_id: str) -> dict[str, Any]:
    # holdsCount, routeIndex, timeCriterionEnabled and boxVersion survive, as in the reference.
    new.update(
        _IDLE,
        initiated=False,
        currentClimber="",
        preparingClimber="",
        lastRegisteredTime=None,
        remaining=None,
        scores={},
        times={},
        routesCount=1,
        holdsCounts=[],
        competitors=[],
        categorie="",
        timerPreset=None,
        timerPresetSec=None,
        timeTiebreakPreference=None,
        prevRoundsTiebreakPreference=None,
        sessionId=new_session_id,
        **_cleared_tiebreaks(),
    )
    _rest_timer(new, None)
    return {}


_TRANSITIONS: dict[str, tuple[Transition, str | None]] = {
    "INIT_ROUTE": (_init_route, STATUS),
    "START_TIMER": (_start_or_resume, FLOW),
    "STOP_TIMER": (_stop, FLOW),
    "RESUME_TIMER": (_start_or_resume, FLOW),
    "PROGRESS_UPDATE": (_progress, FLOW),  # the reference pushed nothing: spectators lagged a hold
    "REGISTER_TIME": (_register_time, FLOW),
    "SET_TIMER_PRESET": (_set_timer_preset, FLOW),
    "SUBMIT_SCORE": (_submit_score, RANKING),
    "SET_TIME_CRITERION": (_set_time_criterion, RANKING),
    "SET_TIME_TIEBREAK_DECISION": (_set_time_tiebreak, RANKING),
    "SET_PREV_ROUNDS_TIEBREAK_DECISION": (_set_prev_rounds_tiebreak, RANKING),
    "RESET_PARTIAL": (_reset_partial, STATUS),
    "RESET_BOX": (_reset_box, STATUS),
}


# ---------------------------------------------------------------------------------------------
# Helpers


def preset_seconds(preset: str) -> int:
    minutes, seconds = preset.split(":")
    return int(minutes) * 60 + int(seconds)


def _rest_timer(new: dict[str, Any], seconds: float | None) -> None:
    """Stop the server clock at `seconds` (the preset, usually)."""
    new["timerRemainingSec"] = float(seconds) if seconds is not None else None
    new["timerEndsAtMs"] = None


def _cleared_tiebreaks() -> dict[str, Any]:
    """Decisions belong to one route's ties; the preferences (a judge's habit) are kept."""
    return {
        "timeTiebreakDecisions": {},
        "timeTiebreakResolvedFingerprint": None,
        "timeTiebreakResolvedDecision": None,
        "prevRoundsTiebreakDecisions": {},
        "prevRoundsTiebreakOrders": {},
        "prevRoundsTiebreakRanks": {},
        "prevRoundsTiebreakLineageRanks": {},
        "prevRoundsTiebreakResolvedFingerprint": None,
        "prevRoundsTiebreakResolvedDecision": None,
        BADGES_KEY: {},
    }


def _next_unmarked(competitors: list[dict[str, Any]], after: int) -> int | None:
    return next((i for i in range(after + 1, len(competitors)) if not competitors[i].get("marked")), None)


def _with_route_value(table: Mapping[str, Any], name: str, route: int, value: float) -> dict[str, Any]:
    existing = table.get(name)
    row = list(existing) if isinstance(existing, list) else []
    row.extend([None] * (route + 1 - len(row)))
    row[route] = value
    return {**table, name: row}


def _with_entry(mapping: Mapping[str, Any], key: str, value: Any) -> dict[str, Any]:
    """A copy with `key` set to `value`, or removed when `value` is empty."""
    copy = dict(mapping)
    if value:
        copy[key] = value
    else:
        copy.pop(key, None)
    return _newest(copy, MAX_TIEBREAK_ENTRIES)


def _newest(mapping: dict[str, Any], limit: int) -> dict[str, Any]:
    """At most `limit` entries, the latest added (dicts keep insertion order). Only decisions on
    ties long gone are dropped: the one just made is always the newest."""
    if len(mapping) <= limit:
        return mapping
    return dict(list(mapping.items())[len(mapping) - limit :])


def _finite_or_none(value: object) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None
