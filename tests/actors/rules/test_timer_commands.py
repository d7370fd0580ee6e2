"""START/STOP/RESUME_TIMER, TIMER_SYNC and SET_TIMER_PRESET with the server-side clock always on."""

from actors.rules import default_state, remaining_seconds, running_deadline_ms

from .helpers import SESSION, initiated_box, run, send


def test_start_timer_runs_the_clock_from_the_preset() -> None:
    box = initiated_box(preset="01:00")
    out = send(box, {"type": "START_TIMER"}, now_ms=5_000)
    state = out.state
    assert (state["started"], state["timerState"]) == (True, "running")
    assert state["timerEndsAtMs"] == 65_000
    assert running_deadline_ms(state) == 65_000
    assert remaining_seconds(state, 35_000) == 30.0
    assert (out.changed, out.snapshot, out.public, out.durable) == (True, True, "BOX_FLOW_UPDATE", True)
    assert out.echo == {"type": "START_TIMER", "boxId": 0, "boxVersion": box["boxVersion"] + 1, "sessionId": SESSION}


def test_start_timer_clears_the_registered_time_and_the_legacy_remaining() -> None:
    box = run(initiated_box(), {"type": "REGISTER_TIME", "registeredTime": 12}, {"type": "TIMER_SYNC", "remaining": 40})
    state = send(box, {"type": "START_TIMER"}, now_ms=0).state
    assert state["lastRegisteredTime"] is None and state["remaining"] is None
    assert state["timerEndsAtMs"] == 40_000  # the stored remainder wins over the preset


def test_server_side_timer_flow_start_stop_resume() -> None:
    box = initiated_box(preset="1:00")
    box = send(box, {"type": "START_TIMER"}, now_ms=0).state
    assert box["timerEndsAtMs"] == 60_000
    box = send(box, {"type": "STOP_TIMER"}, now_ms=30_000).state
    assert (box["started"], box["timerState"], box["timerEndsAtMs"]) == (False, "paused", None)
    assert box["timerRemainingSec"] == 30.0
    assert remaining_seconds(box, 99_000) == 30.0
    assert running_deadline_ms(box) is None
    box = send(box, {"type": "RESUME_TIMER"}, now_ms=40_000).state
    assert (box["started"], box["timerState"], box["timerEndsAtMs"]) == (True, "running", 70_000)


def test_a_repeated_start_while_running_keeps_the_end_time() -> None:
    box = send(initiated_box(preset="01:00"), {"type": "START_TIMER"}, now_ms=0).state
    again = send(box, {"type": "START_TIMER"}, now_ms=20_000)
    assert again.state["timerEndsAtMs"] == 60_000
    assert again.state["boxVersion"] == box["boxVersion"] + 1


def test_stop_timer_from_idle_pauses_at_the_preset() -> None:
    box = send(initiated_box(preset="02:00"), {"type": "STOP_TIMER"}, now_ms=0).state
    assert (box["timerState"], box["timerRemainingSec"]) == ("paused", 120.0)


def test_stop_timer_without_any_clock_uses_the_remaining_the_client_sent() -> None:
    box = initiated_box(preset=None)
    box = send(box, {"type": "STOP_TIMER", "remaining": 42}, now_ms=0).state
    assert box["timerRemainingSec"] == 42.0


def test_stop_after_the_deadline_leaves_zero_never_negative() -> None:
    box = send(initiated_box(preset="00:10"), {"type": "START_TIMER"}, now_ms=0).state
    assert remaining_seconds(box, 15_000) == 0.0
    assert send(box, {"type": "STOP_TIMER"}, now_ms=15_000).state["timerRemainingSec"] == 0.0


def test_remaining_is_rounded_to_milliseconds() -> None:
    box = send(initiated_box(preset="05:00"), {"type": "START_TIMER"}, now_ms=0).state
    assert remaining_seconds(box, 1) == 299.999


def test_start_without_any_preset_runs_without_a_deadline() -> None:
    box = send(initiated_box(preset=None), {"type": "START_TIMER"}, now_ms=0).state
    assert box["timerState"] == "running" and box["timerEndsAtMs"] is None
    assert remaining_seconds(box, 0) is None and running_deadline_ms(box) is None


def test_timer_sync_sets_the_remaining_time_of_a_stopped_clock() -> None:
    box = initiated_box(preset="05:00")
    out = send(box, {"type": "TIMER_SYNC", "remaining": 45.5, "competitor": "timer_sync_source:controlpanel:ab"})
    assert out.state["remaining"] == 45.5 and out.state["timerRemainingSec"] == 45.5
    assert (out.changed, out.snapshot, out.public, out.durable) == (True, False, "BOX_FLOW_UPDATE", False)
    assert out.echo == {
        "type": "TIMER_SYNC",
        "boxId": 0,
        "boxVersion": box["boxVersion"],
        "sessionId": SESSION,
        "remaining": 45.5,
        "competitor": "timer_sync_source:controlpanel:ab",
    }


def test_timer_sync_never_bumps_the_box_version() -> None:
    box = initiated_box()
    synced = run(box, {"type": "TIMER_SYNC", "remaining": 10}, {"type": "TIMER_SYNC", "remaining": 9})
    assert synced["boxVersion"] == box["boxVersion"]
    # A client holding the pre-sync version is not stale.
    out = send(synced, {"type": "SUBMIT_SCORE", "competitor": "Ana", "score": 3, "boxVersion": box["boxVersion"]})
    assert out.state["boxVersion"] == box["boxVersion"] + 1


def test_timer_sync_cannot_extend_a_running_timer() -> None:
    box = send(initiated_box(preset="01:00"), {"type": "START_TIMER"}, now_ms=0).state
    out = send(box, {"type": "TIMER_SYNC", "remaining": 60}, now_ms=10_000)
    assert out.state is box
    assert (out.changed, out.public, out.durable) == (False, None, False)
    assert out.echo is not None and out.echo["remaining"] == 60.0
    assert send(box, {"type": "STOP_TIMER"}, now_ms=20_000).state["timerRemainingSec"] == 40.0


def test_timer_sync_with_the_same_value_changes_nothing() -> None:
    box = run(initiated_box(), {"type": "TIMER_SYNC", "remaining": 30})
    out = send(box, {"type": "TIMER_SYNC", "remaining": 30})
    assert out.state is box and not out.changed and out.echo is not None


def test_set_timer_preset_on_an_idle_box_reloads_the_clock() -> None:
    out = send(initiated_box(preset="05:00"), {"type": "SET_TIMER_PRESET", "timerPreset": "4:30"})
    state = out.state
    assert (state["timerPreset"], state["timerPresetSec"]) == ("04:30", 270)
    assert state["remaining"] == 270.0 and state["timerRemainingSec"] == 270.0
    assert out.public == "BOX_FLOW_UPDATE" and out.echo["timerPreset"] == "04:30"


def test_set_timer_preset_while_running_or_paused_changes_only_the_preset() -> None:
    running = send(initiated_box(preset="01:00"), {"type": "START_TIMER"}, now_ms=0).state
    state = send(running, {"type": "SET_TIMER_PRESET", "timerPreset": "03:00"}, now_ms=1_000).state
    assert state["timerPresetSec"] == 180 and state["timerEndsAtMs"] == 60_000
    paused = send(running, {"type": "STOP_TIMER"}, now_ms=10_000).state
    state = send(paused, {"type": "SET_TIMER_PRESET", "timerPreset": "03:00"}).state
    assert state["timerPresetSec"] == 180 and state["timerRemainingSec"] == 50.0


def test_timers_of_different_boxes_are_independent() -> None:
    box_1 = initiated_box()
    box_2 = initiated_box()
    started = send(box_1, {"type": "START_TIMER"}, now_ms=0).state
    assert started["timerState"] == "running" and box_2["timerState"] == "idle"


def test_timer_commands_on_an_uninitiated_box_do_not_crash() -> None:
    box = default_state(SESSION)
    box = run(box, {"type": "START_TIMER"}, {"type": "STOP_TIMER"}, {"type": "RESUME_TIMER"})
    assert box["timerState"] == "running" and box["boxVersion"] == 3
