"""The server-side countdown (reference-backend §3.6): derived from the state and the caller's clock."""

from collections.abc import Mapping
from typing import Any

from .limits import MAX_REMAINING_SEC


def remaining_seconds(state: Mapping[str, Any], now_ms: int) -> float | None:
    """Seconds left, by priority: running deadline, stored remainder, legacy client value, preset.

    Never more than a clock can hold, even when the wall clock jumped back under a running one.
    """
    ends_at: int | None = state.get("timerEndsAtMs")
    if ends_at is not None:
        return round(min(float(MAX_REMAINING_SEC), max(0.0, (ends_at - now_ms) / 1000)), 3)
    for key in ("timerRemainingSec", "remaining", "timerPresetSec"):
        value = state.get(key)
        if value is not None:
            return round(min(float(MAX_REMAINING_SEC), max(0.0, float(value))), 3)
    return None


def running_deadline_ms(state: Mapping[str, Any]) -> int | None:
    """When the actor must wake up to announce that a running clock reached zero."""
    return state.get("timerEndsAtMs") if state.get("timerState") == "running" else None
