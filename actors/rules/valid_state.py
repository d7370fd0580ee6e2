"""Whether a whole box state is one the rules could have produced.

The one check behind every way a state reaches a box without going through the commands: a
checkpoint loaded at start-up, the state a RESTORE event carries when the log is replayed, and a
restore. Its bounds are the commands' own (`limits`, `names`), so a state that passes can take
any later command, encodes as an event, and holds no number the UI's JavaScript cannot.
"""

from collections.abc import Callable, Mapping
from typing import Any

from .commands import is_int, is_number, normal_timer_preset
from .limits import (
    ACTION_WINDOW,
    MAX_ACTION_ID_LENGTH,
    MAX_BOX_VERSION,
    MAX_COMPETITORS,
    MAX_EPOCH_MS,
    MAX_HOLDS,
    MAX_NAMES,
    MAX_RANK,
    MAX_REGISTERED_TIME,
    MAX_REMAINING_SEC,
    MAX_ROUTES,
    MAX_SCORE,
    MAX_SESSION_ID_LENGTH,
    MAX_TIEBREAK_ENTRIES,
    MAX_TOKEN_LENGTH,
)
from .names import MAX_CATEGORY_LENGTH, MAX_NAME_LENGTH
from .tiebreak import BADGES_KEY, DECISIONS
from .transitions import preset_seconds

TIMER_STATES = ("idle", "running", "paused")
COMPETITOR_KEYS = frozenset({"nume", "marked", "club"})
MAX_BADGES = MAX_COMPETITORS + MAX_NAMES  # one per ranking row: the start list and the scored


class InvalidState(ValueError):
    """A field out of the rules' bounds; the message names it: "boxVersion must be ..."."""

    def __init__(self, field: str, rule: str) -> None:
        super().__init__(f"{field} {rule}")
        self.field = field
        self.rule = rule

    def under(self, prefix: str) -> "InvalidState":
        """The same problem inside a bigger document: "state.boxVersion must be ..."."""
        return InvalidState(f"{prefix}.{self.field}", self.rule)


def check_state(state: Mapping[str, Any]) -> None:
    """Raises InvalidState for the first field out of bounds. `state` has every key of default_state."""
    _check_identity(state)
    _check_route(state)
    _check_timer(state)
    _check_competitors(state)
    _check_table(state, "scores", MAX_SCORE)
    _check_table(state, "times", MAX_REGISTERED_TIME)
    _check_tiebreaks(state)
    _check_badges(state)


def check_session_id(field: str, value: object) -> str:
    """A session id a client can send back: the command validator takes 1 to 64 characters."""
    if not (isinstance(value, str) and 1 <= len(value) <= MAX_SESSION_ID_LENGTH and value.isprintable()):
        raise InvalidState(field, f"must be 1 to {MAX_SESSION_ID_LENGTH} printable characters")
    return value


def check_epoch_ms(field: str, value: object, *, ahead_sec: int = 0) -> int:
    """A clock reading in epoch milliseconds, as the actor's clock gives it (or up to `ahead_sec` later)."""
    most = MAX_EPOCH_MS + ahead_sec * 1000
    if not (is_int(value) and 0 <= value <= most):
        raise InvalidState(field, f"must be an integer from 0 to {most}")
    return value


# ---------------------------------------------------------------------------------------------


def _check_identity(state: Mapping[str, Any]) -> None:
    check_session_id("sessionId", state["sessionId"])
    _int(state, "boxVersion", 0, MAX_BOX_VERSION)
    for key in ("initiated", "started", "timeCriterionEnabled"):
        if not isinstance(state[key], bool):
            raise InvalidState(key, "must be true or false")
    if not (isinstance(state["categorie"], str) and len(state["categorie"]) <= MAX_CATEGORY_LENGTH):
        raise InvalidState("categorie", f"must be a string of at most {MAX_CATEGORY_LENGTH} characters")
    recent = state["recentActionIds"]
    if not (isinstance(recent, list) and len(recent) <= ACTION_WINDOW
            and all(isinstance(i, str) and 1 <= len(i) <= MAX_ACTION_ID_LENGTH for i in recent)):
        raise InvalidState("recentActionIds", f"must be a list of at most {ACTION_WINDOW} strings "
                                              f"of 1 to {MAX_ACTION_ID_LENGTH} characters")


def _check_route(state: Mapping[str, Any]) -> None:
    # routeIndex may exceed routesCount: INIT_ROUTE sets them apart and RESET_BOX keeps the index.
    _int(state, "routeIndex", 1, MAX_ROUTES)
    _int(state, "routesCount", 1, MAX_ROUTES)
    _int(state, "holdsCount", 0, MAX_HOLDS)
    holds = state["holdsCounts"]
    if not (isinstance(holds, list) and len(holds) <= MAX_ROUTES and all(is_int(h) and 0 <= h <= MAX_HOLDS
                                                                         for h in holds)):
        raise InvalidState("holdsCounts", f"must be a list of at most {MAX_ROUTES} integers from 0 to {MAX_HOLDS}")
    top = state["holdsCount"] or MAX_HOLDS  # PROGRESS_UPDATE stops there
    progress = state["holdCount"]
    if not (is_number(progress) and 0 <= progress <= top and round(progress, 1) == progress):
        raise InvalidState("holdCount", f"must be a number from 0 to {top} in steps of 0.1")


def _check_timer(state: Mapping[str, Any]) -> None:
    timer = state["timerState"]
    if timer not in TIMER_STATES:
        raise InvalidState("timerState", "must be idle, running or paused")
    if state["started"] is not (timer == "running"):
        raise InvalidState("started", "must be true exactly when timerState is running")
    ends = state["timerEndsAtMs"]
    if ends is not None:
        check_epoch_ms("timerEndsAtMs", ends, ahead_sec=MAX_REMAINING_SEC)  # a deadline: now plus the time left
        if timer != "running":
            raise InvalidState("timerEndsAtMs", "must be null unless timerState is running")
    for key in ("timerRemainingSec", "remaining"):
        _number_or_null(state, key, MAX_REMAINING_SEC)
    _number_or_null(state, "lastRegisteredTime", MAX_REGISTERED_TIME)
    preset, seconds = state["timerPreset"], state["timerPresetSec"]
    if preset is None:
        if seconds is not None:
            raise InvalidState("timerPresetSec", "must be null when timerPreset is null")
    elif normal_timer_preset(preset) != preset:
        raise InvalidState("timerPreset", 'must be "MM:SS" (minutes 00-99, seconds 00-59) or null')
    elif not (is_int(seconds) and seconds == preset_seconds(preset)):
        raise InvalidState("timerPresetSec", f"must be {preset_seconds(preset)}, the seconds of timerPreset")


def _check_competitors(state: Mapping[str, Any]) -> None:
    competitors = state["competitors"]
    if not (isinstance(competitors, list) and len(competitors) <= MAX_COMPETITORS):
        raise InvalidState("competitors", f"must be a list of at most {MAX_COMPETITORS} competitors")
    for index, competitor in enumerate(competitors):
        where = f"competitors[{index}]"
        if not (isinstance(competitor, dict) and competitor.keys() <= COMPETITOR_KEYS):
            raise InvalidState(where, "must be an object with nume, marked and club only")
        if not _is_name(competitor.get("nume")):
            raise InvalidState(f"{where}.nume", f"must be a name of 1 to {MAX_NAME_LENGTH} characters")
        if not isinstance(competitor.get("marked", False), bool):
            raise InvalidState(f"{where}.marked", "must be true or false")
        club = competitor.get("club", "")
        if not (isinstance(club, str) and len(club) <= MAX_NAME_LENGTH):
            raise InvalidState(f"{where}.club", f"must be a string of at most {MAX_NAME_LENGTH} characters")
    names = {c["nume"] for c in competitors}
    for key in ("currentClimber", "preparingClimber"):
        if not (state[key] == "" or (isinstance(state[key], str) and state[key] in names)):
            raise InvalidState(key, "must be empty or the name of a competitor")


def _check_table(state: Mapping[str, Any], key: str, most: int) -> None:
    """scores or times: {name: [value of route 1, route 2, ...]}, null for a route without one."""
    table = state[key]
    if not (isinstance(table, dict) and len(table) <= MAX_NAMES):
        raise InvalidState(key, f"must be an object of at most {MAX_NAMES} names")
    for name, values in table.items():
        if not _is_name(name):
            raise InvalidState(f"{key}[{_shown(name)}]",
                               f"must be keyed by a name of 1 to {MAX_NAME_LENGTH} characters")
        if not (isinstance(values, list) and len(values) <= MAX_ROUTES
                and all(v is None or (is_number(v) and 0 <= v <= most) for v in values)):
            raise InvalidState(f"{key}[{_shown(name)}]",
                               f"must be a list of at most {MAX_ROUTES} numbers from 0 to {most} or nulls")


def _check_tiebreaks(state: Mapping[str, Any]) -> None:
    """Decisions must have the shapes and sizes the commands write, or the ranking would misread them."""
    for prefix in ("timeTiebreak", "prevRoundsTiebreak"):
        for key in (prefix + "Preference", prefix + "ResolvedDecision"):
            if state[key] not in (None, *DECISIONS):
                raise InvalidState(key, "must be yes, no or null")
        fingerprint = state[prefix + "ResolvedFingerprint"]
        if fingerprint is not None and not _is_token(fingerprint):
            raise InvalidState(prefix + "ResolvedFingerprint",
                               f"must be a string of 1 to {MAX_TOKEN_LENGTH} characters or null")
        _map(state, prefix + "Decisions", lambda d: isinstance(d, str) and d in DECISIONS, "yes or no")
    _map(state, "prevRoundsTiebreakOrders", lambda order: isinstance(order, list) and len(order) <= MAX_COMPETITORS
         and all(_is_name(name) for name in order), f"lists of at most {MAX_COMPETITORS} names")
    _map(state, "prevRoundsTiebreakRanks", lambda ranks: _is_ranks(ranks, MAX_COMPETITORS),
         f"{{name: rank from 1 to {MAX_RANK}}} of at most {MAX_COMPETITORS} names")
    _map(state, "prevRoundsTiebreakLineageRanks", lambda ranks: _is_ranks(ranks, MAX_NAMES),
         f"{{name: rank from 1 to {MAX_RANK}}} of at most {MAX_NAMES} names")


def _check_badges(state: Mapping[str, Any]) -> None:
    badges = state[BADGES_KEY]
    if not (isinstance(badges, dict) and len(badges) <= MAX_BADGES and all(
            _is_name(name) and isinstance(flags, dict) and flags.keys() == {"tb_prev", "tb_time"}
            and all(isinstance(flag, bool) for flag in flags.values()) for name, flags in badges.items())):
        raise InvalidState(BADGES_KEY, "must map names to {tb_prev: true/false, tb_time: true/false}")


# ---------------------------------------------------------------------------------------------


def _int(state: Mapping[str, Any], key: str, lo: int, hi: int) -> None:
    if not (is_int(state[key]) and lo <= state[key] <= hi):
        raise InvalidState(key, f"must be an integer from {lo} to {hi}")


def _number_or_null(state: Mapping[str, Any], key: str, most: int) -> None:
    value = state[key]
    if value is not None and not (is_number(value) and 0 <= value <= most):
        raise InvalidState(key, f"must be a number from 0 to {most} or null")


def _map(state: Mapping[str, Any], key: str, valid: Callable[[Any], bool], what: str) -> None:
    value = state[key]
    if not (isinstance(value, dict) and len(value) <= MAX_TIEBREAK_ENTRIES
            and all(_is_token(k) and valid(v) for k, v in value.items())):
        raise InvalidState(key, f"must map at most {MAX_TIEBREAK_ENTRIES} keys of 1 to {MAX_TOKEN_LENGTH} "
                                f"characters to {what}")


def _is_ranks(value: object, most: int) -> bool:
    return isinstance(value, dict) and len(value) <= most and all(
        _is_name(name) and is_int(rank) and 1 <= rank <= MAX_RANK for name, rank in value.items())


def _is_name(value: object) -> bool:
    return isinstance(value, str) and 1 <= len(value) <= MAX_NAME_LENGTH


def _is_token(value: object) -> bool:
    return isinstance(value, str) and 1 <= len(value) <= MAX_TOKEN_LENGTH


def _shown(name: object, most: int = 40) -> str:
    """A key as an error message quotes it: never the whole of a huge hostile string."""
    text = repr(name)
    return text if len(text) <= most else text[:most] + "..."
