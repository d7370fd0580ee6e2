"""Shared builders for the rules tests: a box driven through parse_command + apply_command."""

from typing import Any

from actors.rules import Outcome, apply_command, default_state, parse_command

SESSION = "session-1"
NEW_SESSION = "session-2"
NAMES = ["Ana", "Bob", "Cris", "Dan"]


def send(state: dict[str, Any], raw: dict[str, Any], now_ms: int = 0, new_session_id: str = NEW_SESSION) -> Outcome:
    """Parse a wire body (boxId 0 and the box's sessionId filled in) and apply it."""
    body = {"boxId": 0, **raw}
    if body["type"] != "INIT_ROUTE":
        body.setdefault("sessionId", state["sessionId"])
    return apply_command(state, parse_command(body), now_ms, new_session_id)


def initiated_box(
    names: list[str] = NAMES,
    holds_count: int = 10,
    preset: str | None = "05:00",
    route_index: int = 1,
    routes_count: int = 2,
    state: dict[str, Any] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": "INIT_ROUTE",
        "routeIndex": route_index,
        "holdsCount": holds_count,
        "routesCount": routes_count,
        "holdsCounts": [holds_count] * routes_count,
        "competitors": [{"nume": name} for name in names],
        "categorie": "U16",
        **extra,
    }
    if preset is not None:
        body["timerPreset"] = preset
    return send(state or default_state(SESSION), body).state


def run(state: dict[str, Any], *bodies: dict[str, Any], now_ms: int = 0) -> dict[str, Any]:
    for body in bodies:
        state = send(state, body, now_ms).state
    return state
