"""Validation of a raw `/api/cmd` body into a `Command` (reference-backend §3.2, with §10's fixes)."""

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeGuard

from .errors import CommandError
from .limits import (
    MAX_ACTION_ID_LENGTH,
    MAX_BOX_ID,
    MAX_BOX_VERSION,
    MAX_COMPETITORS,
    MAX_DELTA,
    MAX_HOLDS,
    MAX_IDX,
    MAX_RANK,
    MAX_REGISTERED_TIME,
    MAX_REMAINING_SEC,
    MAX_ROUTES,
    MAX_SCORE,
    MAX_SESSION_ID_LENGTH,
    MAX_TOKEN_LENGTH,
)
from .names import MAX_CATEGORY_LENGTH, MAX_NAME_LENGTH, clean_text, normalize_name

# The limits are re-exported: transport imports MAX_ROUTES and MAX_COMPETITORS from here.
__all__ = [
    "COMMAND_TYPES",
    "MAX_BOX_VERSION",
    "MAX_COMPETITORS",
    "MAX_RANK",
    "MAX_ROUTES",
    "Command",
    "CommandError",
    "is_int",
    "is_number",
    "normal_timer_preset",
    "parse_command",
]

COMMAND_TYPES: tuple[str, ...] = (
    "INIT_ROUTE",
    "START_TIMER",
    "STOP_TIMER",
    "RESUME_TIMER",
    "PROGRESS_UPDATE",
    "REGISTER_TIME",
    "TIMER_SYNC",
    "SET_TIMER_PRESET",
    "SUBMIT_SCORE",
    "SET_TIME_CRITERION",
    "SET_TIME_TIEBREAK_DECISION",
    "SET_PREV_ROUNDS_TIEBREAK_DECISION",
    "RESET_PARTIAL",
    "RESET_BOX",
    "ACTIVE_CLIMBER",
    "REQUEST_ACTIVE_COMPETITOR",
    "REQUEST_STATE",
)

SESSION_REQUIRED = "sessionId required for all commands except INIT_ROUTE"

# Which validated fields each type keeps (everything else is checked, then dropped), and which it needs.
# Each entry of REQUIRED is a set of alternatives, one of which must be present.
_TYPE_FIELDS: dict[str, tuple[str, ...]] = {
    "INIT_ROUTE": ("routeIndex", "holdsCount", "routesCount", "holdsCounts", "competitors", "categorie", "timerPreset"),
    "START_TIMER": (),
    "STOP_TIMER": ("remaining",),  # last-resort fallback for the paused time (§3.4)
    "RESUME_TIMER": (),
    "PROGRESS_UPDATE": ("delta",),
    "REGISTER_TIME": ("registeredTime",),
    "TIMER_SYNC": ("remaining", "competitor"),
    "SET_TIMER_PRESET": ("timerPreset",),
    "SUBMIT_SCORE": ("competitor", "idx", "score", "registeredTime"),
    "SET_TIME_CRITERION": ("timeCriterionEnabled",),
    "SET_TIME_TIEBREAK_DECISION": ("timeTiebreakDecision", "timeTiebreakFingerprint"),
    "SET_PREV_ROUNDS_TIEBREAK_DECISION": (
        "prevRoundsTiebreakDecision",
        "prevRoundsTiebreakFingerprint",
        "prevRoundsTiebreakLineageKey",
        "prevRoundsTiebreakOrder",
        "prevRoundsTiebreakRanksByName",
    ),
    "RESET_PARTIAL": ("resetTimer", "clearProgress", "unmarkAll"),
    "RESET_BOX": (),
    "ACTIVE_CLIMBER": ("competitor",),
    "REQUEST_ACTIVE_COMPETITOR": ("competitor",),
    "REQUEST_STATE": (),
}

_REQUIRED: dict[str, tuple[tuple[str, ...], ...]] = {
    "INIT_ROUTE": (("routeIndex",), ("holdsCount",)),
    "PROGRESS_UPDATE": (("delta",),),
    "SUBMIT_SCORE": (("competitor", "idx"),),
    "REGISTER_TIME": (("registeredTime",),),
    "TIMER_SYNC": (("remaining",),),
    "SET_TIME_CRITERION": (("timeCriterionEnabled",),),
    "SET_TIME_TIEBREAK_DECISION": (("timeTiebreakDecision",), ("timeTiebreakFingerprint",)),
    "SET_PREV_ROUNDS_TIEBREAK_DECISION": (("prevRoundsTiebreakDecision",), ("prevRoundsTiebreakFingerprint",)),
    "SET_TIMER_PRESET": (("timerPreset",),),
    "ACTIVE_CLIMBER": (("competitor",),),
}


@dataclass(frozen=True, slots=True)
class Command:
    type: str
    box_id: int
    session_id: str | None
    box_version: int | None
    action_id: str | None
    fields: Mapping[str, Any]  # normalised, wire-named; a plain dict that nobody mutates

    def to_json(self) -> dict[str, Any]:
        """The form the event log stores; `parse_command(cmd.to_json()) == cmd`."""
        out: dict[str, Any] = {"type": self.type, "boxId": self.box_id}
        if self.session_id is not None:
            out["sessionId"] = self.session_id
        if self.box_version is not None:
            out["boxVersion"] = self.box_version
        if self.action_id is not None:
            out["actionId"] = self.action_id
        out.update(self.fields)
        return out


def parse_command(raw: object) -> Command:
    if not isinstance(raw, dict):
        raise CommandError("Invalid command: body must be a JSON object")
    body = {key: value for key, value in raw.items() if value is not None}
    # Legacy aliases: `time` for registeredTime, `competitorIdx` for idx (the reference silently lost the latter).
    if "registeredTime" not in body and "time" in body:
        body["registeredTime"] = body["time"]
    if "idx" not in body and "competitorIdx" in body:
        body["idx"] = body["competitorIdx"]

    if "boxId" not in body:
        raise CommandError("Invalid command: boxId is required")
    box_id = _int("boxId", body["boxId"], 0, MAX_BOX_ID)
    cmd_type = body.get("type")
    if not isinstance(cmd_type, str) or cmd_type not in _TYPE_FIELDS:
        raise CommandError("Invalid command: type must be one of " + ", ".join(COMMAND_TYPES))

    fields = {}
    for name, value in body.items():  # a body has a handful of keys; there are many more parsers
        parse = _FIELD_PARSERS.get(name)
        if parse is not None and (parsed := parse(name, value)) is not None:
            fields[name] = parsed
    for options in _REQUIRED.get(cmd_type, ()):
        if fields.keys().isdisjoint(options):
            raise CommandError(f"Invalid command: {cmd_type} requires {' or '.join(options)}")

    session_id = _optional_text("sessionId", body.get("sessionId"), MAX_SESSION_ID_LENGTH, strip=False)
    if session_id is None and cmd_type != "INIT_ROUTE":
        raise CommandError(SESSION_REQUIRED)
    box_version = _int("boxVersion", body["boxVersion"], 0, MAX_BOX_VERSION) if "boxVersion" in body else None
    action_id = body.get("actionId")
    if action_id is not None and (not isinstance(action_id, str) or not 1 <= len(action_id) <= MAX_ACTION_ID_LENGTH):
        raise CommandError(f"Invalid command: actionId must be a string of 1 to {MAX_ACTION_ID_LENGTH} characters")

    kept = {name: fields[name] for name in _TYPE_FIELDS[cmd_type] if name in fields}
    return Command(cmd_type, box_id, session_id, box_version, action_id, kept)


# ---------------------------------------------------------------------------------------------
# Field parsers: each takes (field name, non-null raw value) and returns the normalised value
# (None = treat as absent) or raises CommandError.


def is_int(value: object) -> TypeGuard[int]:
    """A JSON integer: bools are not numbers."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: object) -> TypeGuard[int | float]:
    """JSON numbers only: bools are not numbers and NaN/inf never pass."""
    if isinstance(value, float):
        return math.isfinite(value)
    return is_int(value)


def _float(name: str, value: object, lo: float, hi: float) -> float:
    if not is_number(value) or not lo <= value <= hi:
        raise CommandError(f"Invalid command: {name} must be a number between {lo:g} and {hi:g}")
    return float(value)


def _int(name: str, value: object, lo: int, hi: int) -> int:
    if not is_number(value) or value != int(value) or not lo <= value <= hi:
        raise CommandError(f"Invalid command: {name} must be an integer between {lo} and {hi}")
    return int(value)


def _bool(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise CommandError(f"Invalid command: {name} must be true or false")
    return value


def _optional_text(name: str, value: object, max_len: int, *, strip: bool = True) -> str | None:
    """Ids and fingerprints: an empty string counts as absent, anything longer than max_len is refused."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise CommandError(f"Invalid command: {name} must be a string")
    text = value.strip() if strip else value
    if len(text) > max_len:
        raise CommandError(f"Invalid command: {name} must be at most {max_len} characters")
    return text or None


def _token(name: str, value: object) -> str:
    text = _optional_text(name, value, MAX_TOKEN_LENGTH)
    if text is None:
        raise CommandError(f"Invalid command: {name} must be 1 to {MAX_TOKEN_LENGTH} characters")
    return text


def _decision(name: str, value: object) -> str:
    decision = value.strip().lower() if isinstance(value, str) else None
    if decision not in ("yes", "no"):
        raise CommandError(f'Invalid command: {name} must be "yes" or "no"')
    return decision


def _delta(name: str, value: object) -> float:
    if not is_number(value) or not -MAX_DELTA <= value <= MAX_DELTA or value == 0:
        raise CommandError(f"Invalid command: {name} must be a number between -{MAX_DELTA} and {MAX_DELTA}, not 0")
    return float(value)


def _holds_counts(name: str, value: object) -> list[int]:
    if not isinstance(value, list) or len(value) > MAX_ROUTES:
        raise CommandError(f"Invalid command: {name} must be a list of at most {MAX_ROUTES} integers")
    return [_int(name, item, 0, MAX_HOLDS) for item in value]


def _categorie(name: str, value: object) -> str:
    text = clean_text(value) if isinstance(value, str) else ""
    if not text or len(text) > MAX_CATEGORY_LENGTH:
        raise CommandError(f"Invalid command: {name} must be a non-empty string of at most "
                           f"{MAX_CATEGORY_LENGTH} characters")
    return text


_PRESET = re.compile(r"([0-9]{1,2}):([0-9]{2})")


def normal_timer_preset(value: object) -> str | None:
    """The preset as the rules store it ("MM:SS", zero-padded, seconds 0-59), or None if it is none."""
    match = _PRESET.fullmatch(value.strip()) if isinstance(value, str) else None
    if match is None or int(match.group(2)) > 59:
        return None
    return f"{int(match.group(1)):02d}:{match.group(2)}"


def _timer_preset(name: str, value: object) -> str:
    preset = normal_timer_preset(value)
    if preset is None:
        raise CommandError(f'Invalid command: {name} must look like "MM:SS" (minutes 0-99, seconds 0-59)')
    return preset


_TRUTHY = frozenset({"true", "1", "yes", "y", "on"})


def _marked(value: object) -> bool:
    """Spreadsheets and old clients send `marked` as anything; only clear yeses count."""
    if isinstance(value, bool):
        return value
    if is_number(value):
        return value != 0
    return isinstance(value, str) and value.strip().lower() in _TRUTHY


def _club(value: object) -> str | None:
    if is_number(value):
        value = str(value)  # a spreadsheet cell may hold a club number
    if not isinstance(value, str):
        raise CommandError("Invalid command: competitor club must be a string")
    club = clean_text(value)
    if len(club) > MAX_NAME_LENGTH:
        raise CommandError(f"Invalid command: competitor club must be at most {MAX_NAME_LENGTH} characters")
    return club or None


def _competitors(name: str, value: object) -> list[dict[str, Any]]:
    if not isinstance(value, list) or len(value) > MAX_COMPETITORS:
        raise CommandError(f"Invalid command: {name} must be a list of at most {MAX_COMPETITORS} competitors")
    out = []
    for item in value:
        if not isinstance(item, dict) or item.get("nume") is None:
            raise CommandError("Invalid command: every competitor must be an object with a name (nume)")
        competitor: dict[str, Any] = {"nume": normalize_name(item["nume"]), "marked": _marked(item.get("marked"))}
        club = _club(item["club"]) if item.get("club") is not None else None
        if club is not None:
            competitor["club"] = club
        out.append(competitor)
    return out


def _name_list(name: str, value: object) -> list[str]:
    if not isinstance(value, list) or len(value) > MAX_COMPETITORS:
        raise CommandError(f"Invalid command: {name} must be a list of at most {MAX_COMPETITORS} names")
    return list(dict.fromkeys(normalize_name(item) for item in value))


def _ranks_by_name(name: str, value: object) -> dict[str, int] | None:
    if not isinstance(value, dict) or len(value) > MAX_COMPETITORS:
        raise CommandError(f"Invalid command: {name} must be an object of at most {MAX_COMPETITORS} name: rank pairs")
    ranks = {normalize_name(athlete): _int(f"{name} rank", rank, 1, MAX_RANK) for athlete, rank in value.items()}
    return ranks or None


_FIELD_PARSERS: dict[str, Callable[[str, Any], Any]] = {
    "delta": _delta,
    "score": lambda n, v: _float(n, v, 0, MAX_SCORE),
    "registeredTime": lambda n, v: _float(n, v, 0, MAX_REGISTERED_TIME),
    "remaining": lambda n, v: _float(n, v, 0, MAX_REMAINING_SEC),
    "routeIndex": lambda n, v: _int(n, v, 1, MAX_ROUTES),
    "holdsCount": lambda n, v: _int(n, v, 0, MAX_HOLDS),
    "routesCount": lambda n, v: _int(n, v, 1, MAX_ROUTES),
    "idx": lambda n, v: _int(n, v, 0, MAX_IDX),
    "holdsCounts": _holds_counts,
    "competitors": _competitors,
    "competitor": lambda n, v: normalize_name(v),
    "categorie": _categorie,
    "timerPreset": _timer_preset,
    "timeCriterionEnabled": _bool,
    "resetTimer": _bool,
    "clearProgress": _bool,
    "unmarkAll": _bool,
    "timeTiebreakDecision": _decision,
    "prevRoundsTiebreakDecision": _decision,
    "timeTiebreakFingerprint": _token,
    "prevRoundsTiebreakFingerprint": _token,
    "prevRoundsTiebreakLineageKey": _token,
    "prevRoundsTiebreakOrder": _name_list,
    "prevRoundsTiebreakRanksByName": _ranks_by_name,
}
