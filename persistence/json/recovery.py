"""The events a start replays, gathered from the log and, only where needed, older archives."""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from persistence.json.checkpoints import LoadedCheckpoints
from persistence.types import is_box_id, is_int


class History:
    """Events per box from the log and, when needed, older archives, keyed by seq."""

    def __init__(self, checkpoint_seqs: dict[int, int]) -> None:
        self._after = checkpoint_seqs
        self._by_box: dict[int, dict[int, dict[str, Any]]] = {}
        self.bad_lines = 0

    def add(self, lines: Iterable[dict[str, Any] | None]) -> None:
        for event in lines:
            if event is None:
                self.bad_lines += 1
                continue
            box, seq = event.get("boxId"), event.get("seq")
            # Lines without a per-box seq are audit-only (e.g. written by the old backend).
            if not is_box_id(box) or not is_int(seq) or seq <= self._after.get(box, 0):
                continue
            # An earlier copy of a seq wins: the log is read before older archives, and within
            # one file a repeated seq can only be a stale line.
            self._by_box.setdefault(box, {}).setdefault(seq, event)

    def incomplete(self, also: Iterable[int]) -> set[int]:
        """Boxes (with events, or listed in `also`) whose first needed seq is not known yet."""
        boxes = set(self._by_box) | set(also)
        return {box for box in boxes if self._after.get(box, 0) + 1 not in self._by_box.get(box, {})}

    def runs(self) -> tuple[dict[int, list[dict[str, Any]]], set[int]]:
        """The events per box in seq order, and the boxes whose events do not run without a hole
        from the first needed seq. Events past a hole are kept: a later self-contained event
        (a restore) may still rebuild the box."""
        runs: dict[int, list[dict[str, Any]]] = {}
        holes: set[int] = set()
        for box, by_seq in self._by_box.items():
            seqs = sorted(by_seq)
            first = self._after.get(box, 0) + 1
            if seqs[0] != first or seqs[-1] - first + 1 != len(seqs):
                holes.add(box)
            runs[box] = [by_seq[seq] for seq in seqs]
        return runs, holes


def highest_points(loaded: LoadedCheckpoints, events: dict[int, list[dict[str, Any]]],
                   holes: set[int]) -> dict[int, tuple[int, int]]:
    """Per box, the highest (seq, boxVersion) named by its checkpoint (used or set aside) or its
    events after it. Versions only grow along a sound history, so only a broken one is searched."""
    highest: dict[int, tuple[int, int]] = {}

    def note(box: int, seq: int, version: object) -> None:
        seen_seq, seen_version = highest.get(box, (0, 0))
        highest[box] = (max(seq, seen_seq), max(version if is_int(version) else 0, seen_version))

    for box, checkpoint in loaded.valid.items():
        note(box, checkpoint.seq, checkpoint.state.get("boxVersion"))
    for box, (seq, mark) in loaded.unrebuildable.items():
        note(box, seq, mark.box_version)
    for box, run in events.items():
        if box in holes or box in loaded.unrebuildable:
            for event in run:
                note(box, event["seq"], event.get("boxVersion"))
        else:
            note(box, run[-1]["seq"], run[-1].get("boxVersion"))
    return highest
