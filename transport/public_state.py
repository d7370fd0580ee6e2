"""What the spectator routes serve, from the core's boxes or from an edge's copy of them.

The routes (transport/http/public.py, the public sockets of transport/ws/endpoints.py) read only
this protocol, so an edge serves them with the very same code as the core.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from actors.officials import OfficialsActor
from actors.registry import BoxRegistry, BoxUnavailable
from actors.rules import build_public_box, build_snapshot


class PublicState(Protocol):
    def public_boxes(self) -> list[dict[str, Any]]:
        """Every box with a state, as the spectators see it now."""

    def snapshot(self, box_id: int) -> dict[str, Any] | None:
        """A box's STATE_SNAPSHOT now; None for a box that has no state to show (unavailable)."""

    def officials(self) -> Mapping[str, str]: ...


class CorePublicState:
    """The core's boxes and officials, and what the Redis publisher reads of them."""

    def __init__(self, registry: BoxRegistry, officials: OfficialsActor) -> None:
        self._registry = registry
        self._officials = officials

    def public_boxes(self) -> list[dict[str, Any]]:
        return self._registry.public_boxes()

    def snapshot(self, box_id: int) -> dict[str, Any] | None:
        try:
            return self._registry.snapshot(box_id)
        except BoxUnavailable:
            return None

    def officials(self) -> Mapping[str, str]:
        return self._officials.current

    def box_ids(self) -> list[int]:
        return self._registry.box_ids()

    def unavailable_ids(self) -> list[int]:
        return list(self._registry.unavailable_boxes())

    def views(self, box_id: int) -> tuple[int, int | None, dict[str, Any], dict[str, Any]] | None:
        """(boxVersion, the clock's deadline, snapshot, public box), all from one state; None if the
        box has no state to show."""
        if box_id not in self._registry:
            return None
        try:
            state = self._registry.state(box_id)
        except BoxUnavailable:
            return None
        now_ms = self._registry.now_ms()
        return (state["boxVersion"], state.get("timerEndsAtMs"),
                build_snapshot(state, box_id, now_ms, self._officials.current),
                build_public_box(state, box_id, now_ms))
