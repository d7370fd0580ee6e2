"""Result routes: save_ranking, the podium, and a box's CSV and official ZIP exports (reference §1.5, §1.6, §1.8).

Translate and authorize only: the ranking is actors.rules.results, the files are built by the export
worker process (actors/jobs/exports.py).
"""
from __future__ import annotations

import math
import time
import unicodedata
from collections.abc import Callable, Mapping
from typing import Any, Literal, TypeVar, overload

import orjson
from aiohttp import web

from actors.jobs import exports
from actors.jobs.exports import (
    MAX_RESULT_ATHLETES,
    MAX_RESULT_ROUTES,
    NO_RANKING_SAVED,
    ExportError,
    ResultsJob,
)
from actors.rules import CommandError, default_state, normalize_name
from actors.rules.commands import MAX_ROUTES
from actors.rules.limits import MAX_BOX_ID
from actors.rules.names import MAX_CATEGORY_LENGTH, MAX_NAME_LENGTH, clean_text
from actors.rules.results import ResultsInput
from actors.rules.tiebreak import TIEBREAK_KEYS
from transport.http.auth import Need, authorize
from transport.http.bodies import read_json_object, require_box_id
from transport.http.errors import (
    BOX_NOT_FOUND,
    INVALID_CATEGORIE,
    INVALID_REQUEST,
    MISSING_SCORES,
    RANKING_NOT_FOUND,
    ClientError,
)
from transport.keys import EXPORT_RUNNER, REGISTRY, STORAGE

MAX_SCORE = 100.0
MAX_TIME_S = 24 * 3600.0
MAX_DECISIONS = 1000
MAX_HOLDS = 100

TOO_MANY_ATHLETES = f"too many athletes for the results (at most {MAX_RESULT_ATHLETES})"
TOO_MANY_ROUTES = f"too many routes for the results (at most {MAX_RESULT_ROUTES})"

T = TypeVar("T")

routes = web.RouteTableDef()


@routes.post("/api/save_ranking")
async def save_ranking(request: web.Request) -> web.Response:
    authorize(request, Need.ADMIN)
    body = await read_json_object(request)
    category = check_category(body.get("categorie"))
    job = job_from_body(body, category)
    folder = request.app[STORAGE].results_dir / exports.results_folder(category)
    reply = await _export(request, exports.save_ranking_job, job, str(folder))
    return web.json_response(reply, dumps=_dumps)


@routes.get("/api/podium/{category}")
async def podium(request: web.Request) -> web.Response:
    category = check_category(request.match_info["category"])
    path = request.app[STORAGE].results_dir / exports.results_folder(category) / "overall.xlsx"
    top = await _export(request, exports.podium_job, str(path))
    if top is None:
        raise ClientError(RANKING_NOT_FOUND, NO_RANKING_SAVED)
    return web.json_response(top, dumps=_dumps)


def _existing_box(request: web.Request) -> tuple[int, dict[str, Any]]:
    """The admin's box (404 for a box that was never created: reading never creates one)."""
    box_id = require_box_id(request.match_info["box_id"])
    authorize(request, Need.ADMIN, box_id)
    registry = request.app[REGISTRY]
    if box_id not in registry:
        raise ClientError(BOX_NOT_FOUND)
    return box_id, registry.state(box_id)


@routes.get("/api/admin/export/box/{box_id}")
async def export_box_csv(request: web.Request) -> web.Response:
    box_id, state = _existing_box(request)
    snapshot = request.app[REGISTRY].snapshot(box_id)
    job = job_from_state(state, box_id)
    header = {"boxId": box_id, "categorie": state["categorie"], "boxVersion": state["boxVersion"],
              **{key: snapshot[key] for key in ("holdCount", "started", "timerState", "currentClimber", "remaining")}}
    text = await _export(request, exports.box_csv_job, job, header, _athletes(state))
    return web.Response(text=text, content_type="text/csv", charset="utf-8",
                        headers={"Content-Disposition": f"attachment; filename=box_{box_id}_export.csv"})


@routes.get("/api/admin/export/official/box/{box_id}")
async def export_official_zip(request: web.Request) -> web.Response:
    box_id, state = _existing_box(request)
    if not any(isinstance(v, (int, float)) and not isinstance(v, bool)
               for values in (state.get("scores") or {}).values() for v in (values or [])):
        raise ClientError(MISSING_SCORES)
    job = job_from_state(state, box_id)
    folder = exports.ascii_folder(state["categorie"] or f"box_{box_id}")
    now = time.gmtime()
    metadata = {
        "boxId": box_id,
        "competitionId": None,
        "categorie": state["categorie"],
        "routesCount": state["routesCount"],
        **{key: state.get(key) for key in TIEBREAK_KEYS},
        "clubs": dict(job.given.clubs),
        "exportedAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", now),
    }
    data = await _export(request, exports.official_zip_job, job, folder, metadata)
    filename = f"official_{folder}_box{box_id}_{time.strftime('%Y%m%dT%H%M%SZ', now)}.zip"
    return web.Response(body=data, content_type="application/zip",
                        headers={"Content-Disposition": f'attachment; filename="{filename}"'})


async def close_runner(app: web.Application) -> None:
    """on_cleanup: stop the export worker process."""
    await app[EXPORT_RUNNER].close()


async def _export(request: web.Request, job: Callable[..., T], *args: Any) -> T:
    """The job in the export worker; a job that fails answers its status with {"detail"}."""
    try:
        return await request.app[EXPORT_RUNNER].run(job, *args)
    except ExportError as exc:
        raise ClientError(exc.code, exc.detail) from None


# -- inputs ---------------------------------------------------------------------------------------

# save_ranking body field → box state key, for the lead ranking of the active route.
_BODY_DECISIONS = {
    "time_tiebreak_preference": ("timeTiebreakPreference", "choice"),
    "time_tiebreak_resolved_decision": ("timeTiebreakResolvedDecision", "choice"),
    "time_tiebreak_resolved_fingerprint": ("timeTiebreakResolvedFingerprint", "text"),
    "time_tiebreak_decisions": ("timeTiebreakDecisions", "choices"),
    "prev_rounds_tiebreak_preference": ("prevRoundsTiebreakPreference", "choice"),
    "prev_rounds_tiebreak_resolved_decision": ("prevRoundsTiebreakResolvedDecision", "choice"),
    "prev_rounds_tiebreak_resolved_fingerprint": ("prevRoundsTiebreakResolvedFingerprint", "text"),
    "prev_rounds_tiebreak_decisions": ("prevRoundsTiebreakDecisions", "choices"),
    "prev_rounds_tiebreak_orders": ("prevRoundsTiebreakOrders", "orders"),
    "prev_rounds_tiebreak_ranks_by_fingerprint": ("prevRoundsTiebreakRanks", "ranks_by_key"),
    "prev_rounds_tiebreak_lineage_ranks_by_key": ("prevRoundsTiebreakLineageRanks", "ranks_by_key"),
}


def check_category(value: object) -> str:
    """400 invalid_categorie unless it is text that can name a folder: never "", ".", "..", a separator, NUL or a
    control."""
    if not isinstance(value, str) or len(value) > MAX_CATEGORY_LENGTH:
        raise ClientError(INVALID_CATEGORIE)
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Cs") or ch in "/\\" for ch in value):
        raise ClientError(INVALID_CATEGORIE)
    category = unicodedata.normalize("NFC", value).strip()
    if category in ("", ".", ".."):
        raise ClientError(INVALID_CATEGORIE)
    return category


def job_from_body(body: Mapping[str, Any], category: str) -> ResultsJob:
    """A save_ranking body (§1.6), validated; every bad shape is a 400 naming the field."""
    routes_count = _int(body, "route_count", 1, MAX_ROUTES, required=True)
    if routes_count > MAX_RESULT_ROUTES:
        raise ClientError(INVALID_REQUEST, TOO_MANY_ROUTES)
    scores = _name_map(body, "scores", lambda v, where: _number_list(v, where, MAX_SCORE), required=True)
    times = _name_map(body, "times", lambda v, where: _number_list(v, where, MAX_TIME_S, times=True))
    clubs = _name_map(body, "clubs", _club)
    if body.get("include_clubs") is False:  # absent (the UI never sends it) shows the clubs it sends
        clubs = {}
    _bool(body, "include_clubs")
    show_times = _bool(body, "use_time_tiebreak")
    route_index = _int(body, "route_index", 1, routes_count) or routes_count
    holds_counts = _holds_list(body.get("holds_counts"))
    active_holds = _int(body, "active_holds_count", 0, MAX_HOLDS)
    if active_holds is None:
        active_holds = holds_counts[route_index - 1] if route_index <= len(holds_counts) else 0
    _int(body, "box_id", 0, MAX_BOX_ID)
    holds = (holds_counts + [0] * routes_count)[:routes_count]
    holds[route_index - 1] = active_holds
    given = ResultsInput(category=category, routes_count=routes_count, scores=scores, times=times,
                         clubs={n: c for n, c in clubs.items() if c}, holds_counts=holds,
                         show_times=show_times, active_route=route_index)

    lead_state = default_state("save_ranking")
    lead_state.update(
        categorie=category, initiated=True, routeIndex=route_index, routesCount=routes_count,
        holdsCount=active_holds, holdsCounts=holds, timeCriterionEnabled=show_times,
        competitors=[{"nume": name, "marked": True} for name in scores], scores=scores, times=times,
    )
    for field, (key, kind) in _BODY_DECISIONS.items():
        value = _decision_value(field, body.get(field), kind)
        if value is not None:
            lead_state[key] = value
    resolved = _decision_value("prev_rounds_tiebreak_resolved_ranks_by_name",
                               body.get("prev_rounds_tiebreak_resolved_ranks_by_name"), "ranks")
    fingerprint = lead_state["prevRoundsTiebreakResolvedFingerprint"]
    if resolved and fingerprint and fingerprint not in lead_state["prevRoundsTiebreakRanks"]:
        lead_state["prevRoundsTiebreakRanks"] = {**lead_state["prevRoundsTiebreakRanks"], fingerprint: resolved}
    return ResultsJob(given, lead_state)


def job_from_state(state: Mapping[str, Any], box_id: int) -> ResultsJob:
    """A live box: every competitor and every scored name; decisions from the box's own state."""
    routes_count = state["routesCount"]
    athletes = _athletes(state)
    if len(athletes) > MAX_RESULT_ATHLETES:
        raise ClientError(INVALID_REQUEST, TOO_MANY_ATHLETES)
    if routes_count > MAX_RESULT_ROUTES:
        raise ClientError(INVALID_REQUEST, TOO_MANY_ROUTES)
    scores = state.get("scores") or {}
    holds = (list(state["holdsCounts"]) + [0] * routes_count)[:routes_count]
    route_index = state["routeIndex"]
    if 1 <= route_index <= routes_count and state["holdsCount"] > 0:
        holds[route_index - 1] = state["holdsCount"]
    given = ResultsInput(
        category=state["categorie"] or f"Box {box_id}",
        routes_count=routes_count,
        scores={name: list(scores.get(name) or []) for name in athletes},
        times=dict(state.get("times") or {}),
        clubs={c["nume"]: c["club"] for c in state["competitors"] if isinstance(c.get("club"), str) and c["club"]},
        holds_counts=holds,
        show_times=state["timeCriterionEnabled"] is True,
        active_route=route_index,
    )
    return ResultsJob(given, dict(state))


def _athletes(state: Mapping[str, Any]) -> list[str]:
    names = dict.fromkeys(c["nume"] for c in state["competitors"])
    names.update(dict.fromkeys(state.get("scores") or {}))
    return list(names)


def _name_map(body: Mapping[str, Any], field: str, convert: Any, required: bool = False) -> dict[str, Any]:
    value = body.get(field)
    if value is None:
        if required:
            raise ClientError(INVALID_REQUEST, f"{field} is required")
        return {}
    if not isinstance(value, dict):
        raise ClientError(INVALID_REQUEST, f"{field} must be an object keyed by athlete name")
    if len(value) > MAX_RESULT_ATHLETES:
        raise ClientError(INVALID_REQUEST, TOO_MANY_ATHLETES)
    result: dict[str, Any] = {}
    for raw_name, item in value.items():
        try:
            name = normalize_name(raw_name)
        except CommandError:
            raise ClientError(INVALID_REQUEST,
                              f"{field}: athlete names must be 1 to {MAX_NAME_LENGTH} printable characters") from None
        if name in result:
            raise ClientError(INVALID_REQUEST, f"{field}: the name {name!r} appears twice")
        result[name] = convert(item, f"{field}[{name!r}]")
    return result


def _number_list(value: object, where: str, maximum: float, times: bool = False) -> list[float | None]:
    if value is None:
        return []
    if not isinstance(value, list) or len(value) > MAX_ROUTES:
        raise ClientError(INVALID_REQUEST, f"{where} must be a list of at most {MAX_ROUTES} numbers or nulls")
    return [_number(item, where, maximum, times) for item in value]


def _number(item: object, where: str, maximum: float, times: bool) -> float | None:
    if item is None:
        return None
    number: float | None = None
    if isinstance(item, (int, float)) and not isinstance(item, bool):
        number = float(item)
    elif times and isinstance(item, str):
        number = _time_text(item.strip())
    if number is None or not math.isfinite(number) or not 0 <= number <= maximum:
        kind = "a time in seconds or m:ss" if times else f"a number from 0 to {maximum:g}"
        raise ClientError(INVALID_REQUEST, f"{where}: each entry must be {kind}, or null")
    return number


def _time_text(text: str) -> float | None:
    """"m:ss" or a numeric string (§7.3); None when it is neither."""
    minutes, colon, seconds = text.partition(":")
    try:
        if colon:
            if not (minutes.isascii() and minutes.isdigit() and seconds.isascii() and seconds.isdigit()):
                return None
            return int(minutes) * 60.0 + int(seconds)
        digits = text.replace(".", "", 1)
        return float(text) if text and digits.isascii() and digits.isdigit() else None
    except ValueError:
        return None


def _club(value: object, where: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ClientError(INVALID_REQUEST, f"{where} must be text")
    club = clean_text(value)
    if len(club) > MAX_NAME_LENGTH:
        raise ClientError(INVALID_REQUEST, f"{where} must be at most {MAX_NAME_LENGTH} characters")
    return club


@overload
def _int(body: Mapping[str, Any], field: str, low: int, high: int, required: Literal[True]) -> int: ...
@overload
def _int(body: Mapping[str, Any], field: str, low: int, high: int, required: bool = False) -> int | None: ...
def _int(body: Mapping[str, Any], field: str, low: int, high: int, required: bool = False) -> int | None:
    value = body.get(field)
    if value is None:
        if required:
            raise ClientError(INVALID_REQUEST, f"{field} is required")
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise ClientError(INVALID_REQUEST, f"{field} must be an integer from {low} to {high}")
    return value


def _bool(body: Mapping[str, Any], field: str) -> bool:
    value = body.get(field)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise ClientError(INVALID_REQUEST, f"{field} must be true or false")
    return value


def _holds_list(value: object) -> list[int]:
    if value is None:
        return []
    if not isinstance(value, list) or len(value) > MAX_ROUTES or not all(
            isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= MAX_HOLDS for v in value):
        raise ClientError(INVALID_REQUEST, f"holds_counts must be a list of integers from 0 to {MAX_HOLDS}")
    return list(value)


def _decision_value(field: str, value: object, kind: str) -> Any:
    """The tie-break inputs, checked for shape only; the rules judge their meaning (§7.2)."""
    if value is None:
        return None
    bad = ClientError(INVALID_REQUEST, f"{field} has the wrong shape")
    if kind == "text":
        if not isinstance(value, str) or len(value) > 200:
            raise bad
        return value
    if kind == "choice":
        if not isinstance(value, str) or value.strip().lower() not in ("yes", "no"):
            raise ClientError(INVALID_REQUEST, f"{field} must be \"yes\" or \"no\"")
        return value.strip().lower()
    if not isinstance(value, dict) or len(value) > MAX_DECISIONS or not all(
            isinstance(k, str) and len(k) <= 200 for k in value):
        raise bad
    if kind == "choices":
        return {k: _decision_value(field, v, "choice") for k, v in value.items()}
    if kind == "orders":
        if not all(isinstance(v, list) and len(v) <= MAX_RESULT_ATHLETES and all(isinstance(n, str) for n in v)
                   for v in value.values()):
            raise bad
        return {k: list(v) for k, v in value.items()}
    if kind == "ranks_by_key":
        return {k: _decision_value(field, v, "ranks") for k, v in value.items()}
    # kind == "ranks": {name: positive int}
    if len(value) > MAX_RESULT_ATHLETES or not all(
            isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 1_000_000 for v in value.values()):
        raise bad
    return dict(value)


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()
