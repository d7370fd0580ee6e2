"""The box actor on its own: answers, the log and what subscribers are sent, with the disk failing."""
from __future__ import annotations

import errno

from actors.box_actor import BoxActor
from actors.codes import BOX_UNAVAILABLE, INVALID_COMMAND, STORAGE_UNAVAILABLE
from actors.messages import Origin, Reply, RestoreBox
from actors.rules import default_state
from tests.actors.conftest import LOG, Rig, command, init_route


async def started_box(rig: Rig, box_id: int = 0) -> BoxActor:
    box = rig.box(box_id, default_state(f"session-{box_id}"))
    assert await box.ask(init_route(box_id)) == Reply.ok()
    return box


async def test_a_durable_command_is_answered_once_its_event_is_in_the_log_then_published(rig: Rig) -> None:
    box = await started_box(rig)
    assert await box.ask(command(box, "PROGRESS_UPDATE", delta=1)) == Reply.ok()
    assert [(e["seq"], e["boxVersion"], e["action"]) for e in rig.log()] == [(1, 1, "INIT_ROUTE"),
                                                                              (2, 2, "PROGRESS_UPDATE")]
    assert (box.seq, box.state["boxVersion"], box.state["holdCount"]) == (2, 2, 1)
    last = rig.fanout.publications[-1]
    assert last.echo is not None and last.echo["type"] == "PROGRESS_UPDATE" and last.echo["boxVersion"] == 2
    assert last.snapshot is not None and last.snapshot["holdCount"] == 1


async def test_a_durable_command_whose_commit_fails_answers_storage_unavailable_and_changes_nothing(rig: Rig) -> None:
    box = await started_box(rig)
    state, seq, published = box.state, box.seq, len(rig.fanout.publications)
    rig.disk.inject("fdatasync", errno.EIO, path_contains=LOG)

    reply = await box.ask(command(box, "PROGRESS_UPDATE", delta=1))

    assert reply == Reply.error(STORAGE_UNAVAILABLE)
    assert (box.state, box.seq) == (state, seq)
    assert len(rig.fanout.publications) == published  # nothing was shown
    assert [e["seq"] for e in rig.log()] == [1]  # the failed batch was cut off the log
    # Service resumes by itself, with the next seq: the failed one was never written.
    assert await box.ask(command(box, "PROGRESS_UPDATE", delta=1)) == Reply.ok()
    assert [(e["seq"], e["boxVersion"]) for e in rig.log()] == [(1, 1), (2, 2)]


async def test_a_timer_sync_is_answered_before_its_event_is_durable(rig: Rig) -> None:
    box = await started_box(rig)
    rig.disk.hold()
    reply = box.try_now(command(box, "TIMER_SYNC", remaining=250))  # in the caller's task, no wait
    assert reply == Reply.ok()
    await rig.disk.until_holding()
    assert box.state["remaining"] == 250 and box.seq == 2
    assert rig.persister.status.events == 1  # answered, not yet durable
    rig.disk.release()
    assert await box.ask(command(box, "PROGRESS_UPDATE", delta=1)) == Reply.ok()
    assert [(e["seq"], e["action"]) for e in rig.log()] == [(1, "INIT_ROUTE"), (2, "TIMER_SYNC"),
                                                            (3, "PROGRESS_UPDATE")]


async def test_an_early_answered_command_whose_commit_fails_rolls_the_box_back_and_republishes_it(rig: Rig) -> None:
    box = await started_box(rig)
    durable_state, durable_seq, durable_view = box.state, box.seq, box.snapshot()
    rig.disk.inject("fdatasync", errno.EIO, path_contains=LOG)
    since = len(rig.fanout.publications)

    assert box.try_now(command(box, "TIMER_SYNC", remaining=123)) == Reply.ok()
    assert box.state["remaining"] == 123  # shown at once, before it is durable
    echo = rig.fanout.publications[since].echo
    assert echo is not None and echo["remaining"] == 123

    # The batch fails: the box goes back to its last durable state and shows it again.
    shown = await rig.fanout.next_matching(lambda p: p.public_kind == "BOX_FLOW_UPDATE", since=since + 1)
    assert shown.snapshot == durable_view and durable_view["remaining"] != 123
    assert (box.state, box.seq) == (durable_state, durable_seq)
    assert [e["seq"] for e in rig.log()] == [1]
    # The next command goes on from the durable state, with the seq the failed event never used.
    assert await box.ask(command(box, "PROGRESS_UPDATE", delta=1)) == Reply.ok()
    assert [(e["seq"], e["action"]) for e in rig.log()] == [(1, "INIT_ROUTE"), (2, "PROGRESS_UPDATE")]
    assert box.state["remaining"] == durable_state["remaining"] and box.state["holdCount"] == 1


async def test_a_command_after_an_early_answered_one_applies_on_its_verdict(rig: Rig) -> None:
    """A durable command waits for the early-answered events before it; if they failed, it applies
    on the state they left behind, never on one that was not made durable."""
    box = await started_box(rig)
    rig.disk.hold()
    assert box.try_now(command(box, "TIMER_SYNC", remaining=42)) == Reply.ok()
    await rig.disk.until_holding()
    rig.disk.inject("fdatasync", errno.EIO, path_contains=LOG)
    after = box.ask(command(box, "PROGRESS_UPDATE", delta=1))
    rig.disk.release()
    assert await after == Reply.ok()
    assert box.state["remaining"] != 42 and box.state["holdCount"] == 1
    assert [(e["seq"], e["action"]) for e in rig.log()] == [(1, "INIT_ROUTE"), (2, "PROGRESS_UPDATE")]


async def test_a_command_the_rules_refuse_answers_invalid_command_with_their_reason(rig: Rig) -> None:
    box = await started_box(rig)
    reply = await box.ask(command(box, "SUBMIT_SCORE", idx=7, score=5))
    assert reply.code == INVALID_COMMAND
    assert reply.body == {"detail": "Invalid command: idx 7 is out of range (the box has 2 competitors)"}
    assert [e["seq"] for e in rig.log()] == [1]


async def test_a_stale_command_is_ignored(rig: Rig) -> None:
    box = await started_box(rig)
    reply = await box.ask(command(box, "PROGRESS_UPDATE", delta=1, boxVersion=0))
    assert reply == Reply.ignored("stale_version")


async def test_an_unavailable_box_answers_box_unavailable_until_an_admin_starts_it_over(rig: Rig) -> None:
    box = rig.box(0, {**default_state("placeholder"), "boxVersion": 7}, seq=9, unavailable="its log has a hole")
    assert await box.ask(command(box, "PROGRESS_UPDATE", delta=1)) == Reply.error(BOX_UNAVAILABLE)
    assert box.try_now(command(box, "REQUEST_STATE")) == Reply.error(BOX_UNAVAILABLE)
    assert await box.ask(init_route(0)) == Reply.error(BOX_UNAVAILABLE)  # a judge may not
    assert rig.fanout.publications == [] and rig.log() == []

    assert await box.ask(init_route(0, role="admin")) == Reply.ok()
    assert box.unavailable is None and box.state["boxVersion"] == 8 and box.seq == 10
    [event] = rig.log()
    assert (event["seq"], event["boxVersion"], "restoredState" in event) == (10, 8, True)


async def test_a_restore_that_cannot_commit_leaves_the_box_as_it_was(rig: Rig) -> None:
    box = await started_box(rig)
    state, seq = box.state, box.seq
    rig.disk.inject("fdatasync", errno.EIO, path_contains=LOG)
    reply = await box.ask(RestoreBox(default_state("saved"), "backup zip", Origin("admin", "admin")))
    assert reply == Reply.error(STORAGE_UNAVAILABLE)
    assert (box.state, box.seq) == (state, seq)
