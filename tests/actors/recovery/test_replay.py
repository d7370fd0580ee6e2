"""The one replay (actors/recovery/replay.py) and history (actors/recovery/history.py), on event
lines the rules wrote."""
from __future__ import annotations

from typing import Any

import orjson
import pytest

from actors.events import encode_event, encode_restore
from actors.messages import Origin, RestoreBox
from actors.recovery.history import UnknownVersion, state_at, versions
from actors.recovery.replay import ReplayError, rebuild, replay
from actors.rules import apply_command, default_state, needs_new_session, parse_command
from persistence.types import Checkpoint

NOW = 1_767_225_600_000
ADMIN = Origin("admin", "admin", "10.0.0.2", "test")
INIT = {"type": "INIT_ROUTE", "routeIndex": 1, "holdsCount": 20, "competitors": [{"nume": "Ana"}, {"nume": "Dan"}],
        "categorie": "U16", "timerPreset": "03:00"}


def logged(*commands: dict[str, Any], state: dict[str, Any] | None = None, seq: int = 0) -> list[dict[str, Any]]:
    """Event lines exactly as a box actor writes them, one per command, one second apart."""
    state = state or default_state("first-session")
    events = []
    for raw in commands:
        seq += 1
        command = parse_command({"boxId": 0, "sessionId": "any", **raw})
        now_ms = NOW + seq * 1000
        outcome = apply_command(state, command, now_ms, f"session-{seq}" if needs_new_session(command) else "")
        line = encode_event(box_id=0, seq=seq, command=command, before=state, after=outcome.state, now_ms=now_ms,
                            origin=ADMIN, echo=outcome.echo)
        events.append(orjson.loads(line))
        state = outcome.state
    return events


def restore_event(saved: dict[str, Any], seq: int, live_version: int) -> dict[str, Any]:
    _, line = encode_restore(box_id=0, seq=seq, live_version=live_version,
                             message=RestoreBox(saved, "test", ADMIN), now_ms=NOW + seq * 1000, new_session_id="s-r")
    return orjson.loads(line)


SCORES = [INIT, {"type": "PROGRESS_UPDATE", "delta": 1}, {"type": "SUBMIT_SCORE", "competitor": "Ana", "score": 7},
          {"type": "TIMER_SYNC", "remaining": 99}, {"type": "PROGRESS_UPDATE", "delta": 1}]


def test_replay_from_scratch_rebuilds_the_state_the_rules_acknowledged() -> None:
    events = logged(*SCORES)
    rebuilt = replay(None, 0, events)
    assert (rebuilt.seq, rebuilt.state["boxVersion"], rebuilt.now_ms) == (5, 4, NOW + 5000)
    assert rebuilt.state["scores"] == {"Ana": [7.0]} and rebuilt.state["holdCount"] == 1
    assert rebuilt.state["sessionId"] == "first-session"


def test_an_event_that_replays_to_another_version_than_logged_is_refused() -> None:
    events = logged(*SCORES)
    events[2]["boxVersion"] = 9
    with pytest.raises(ReplayError, match="event seq 3 replays to version 3, the log says 9"):
        replay(None, 0, events)


def test_a_hole_is_refused_unless_a_self_contained_event_later_starts_a_clean_run() -> None:
    events = logged(*SCORES)
    holed = events[:1] + events[2:]
    with pytest.raises(ReplayError, match="the log lacks seq 2"):
        rebuild(None, holed)
    saved = replay(None, 0, events[:3]).state
    restored = restore_event(saved, 6, live_version=4)
    after = logged({"type": "PROGRESS_UPDATE", "delta": 1}, state=restored["restoredState"], seq=6)
    rebuilt = rebuild(None, [*holed, restored, *after])
    assert rebuilt.seq == 7 and rebuilt.state["boxVersion"] == 6 and rebuilt.state["holdCount"] == 1


def test_a_checkpoint_comes_first_and_the_log_must_follow_it_without_a_gap() -> None:
    events = logged(*SCORES)
    checkpoint = Checkpoint(0, 3, replay(None, 0, events[:3]).state)
    assert rebuild(checkpoint, events[3:]).state == replay(None, 0, events).state
    with pytest.raises(ReplayError, match="the log lacks seq 4"):
        rebuild(checkpoint, events[4:])


def test_a_history_that_ends_before_a_seq_written_elsewhere_is_refused() -> None:
    events = logged(*SCORES)
    with pytest.raises(ReplayError, match="its history ends at seq 3, but seq 5 was written"):
        rebuild(None, events[:3], last_seq=5)


def test_without_a_checkpoint_the_history_must_start_at_seq_1() -> None:
    events = logged(*SCORES)
    with pytest.raises(ReplayError, match="lacks its history from seq 1"):
        rebuild(None, events[1:])
    with pytest.raises(ReplayError, match="holds no event"):
        rebuild(None, [])
    del events[0]["baseSessionId"]
    with pytest.raises(ReplayError, match="baseSessionId"):
        rebuild(None, events)


def test_versions_fold_a_clock_sync_into_the_version_it_kept_and_state_at_takes_its_last_state() -> None:
    events = logged(*SCORES)
    found = versions(events)
    assert [(v.box_version, v.action, v.scores) for v in found] == [
        (1, "INIT_ROUTE", 0), (2, "PROGRESS_UPDATE", 0), (3, "SUBMIT_SCORE", 1), (4, "PROGRESS_UPDATE", 1)]
    state, as_of = state_at(events, 3)
    assert state["timerRemainingSec"] == 99 and as_of == NOW + 4000  # after the clock sync
    with pytest.raises(UnknownVersion):
        state_at(events, 7)


def test_versions_after_a_hole_cannot_be_rolled_back_to_until_a_restore() -> None:
    events = logged(*SCORES)
    holed = events[:2] + events[3:]
    found = versions(holed)
    assert [(v.box_version, v.problem is None) for v in found] == [(1, True), (2, True), (3, False), (4, False)]
    assert found[2].problem == "the log lacks seq 3" and found[2].categorie is None
    with pytest.raises(ReplayError, match="lacks seq 3"):
        state_at(holed, 4)
    restored = restore_event(state_at(holed, 2)[0], 6, live_version=4)
    assert state_at([*holed, restored], 5)[0]["boxVersion"] == 5
