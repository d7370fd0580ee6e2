"""The registry on its own: which reads and commands create boxes, shutdown, restores of several
boxes, and boxes whose history cannot rebuild them."""
from __future__ import annotations

import asyncio
import errno

import pytest

from actors.codes import BOX_UNAVAILABLE, RESTORE_ABORTED, RESTORE_REFUSED, SHUTTING_DOWN, STORAGE_UNAVAILABLE
from actors.messages import Origin, Reply, RestoreBox
from actors.recovery.restore import Recovery, UnavailableBox
from actors.registry import BoxRegistry, BoxUnavailable
from actors.rules import Command, default_state, parse_command
from actors.rules.commands import MAX_BOX_VERSION
from tests.actors.conftest import LOG, Rig, init_route

ADMIN = Origin(username="admin", role="admin")
JUDGE = Origin(username="judge", role="judge")


def progress(registry: BoxRegistry, box_id: int) -> Command:
    return parse_command({"type": "PROGRESS_UPDATE", "boxId": box_id, "delta": 1,
                          "sessionId": registry.state(box_id)["sessionId"]})


def restore(version: int = 3) -> RestoreBox:
    return RestoreBox({**default_state("saved"), "boxVersion": version}, "backup zip", ADMIN)


async def test_reading_a_box_never_creates_it(rig: Rig) -> None:
    registry = rig.registry()
    first = registry.state(5)
    assert registry.snapshot(5)["boxVersion"] == 0 and registry.public_box(5)["boxId"] == 5
    assert 5 not in registry and registry.box_ids() == [] and registry.public_boxes() == []
    assert registry.state(5)["sessionId"] == first["sessionId"]  # every read shows the same session
    assert rig.log() == [] and rig.fanout.publications == []


async def test_a_command_creates_its_box_in_the_session_a_read_showed(rig: Rig) -> None:
    registry = rig.registry()
    shown = registry.state(3)["sessionId"]
    reply = await registry.execute(init_route(3, sessionId=shown).command, JUDGE)
    assert reply == Reply.ok()
    assert 3 in registry and registry.box_ids() == [3]
    assert registry.state(3)["sessionId"] == shown  # the client's session was not stale
    [event] = rig.log()
    assert (event["boxId"], event["action"], event["baseSessionId"]) == (3, "INIT_ROUTE", shown)


async def test_after_close_every_request_answers_shutting_down(rig: Rig) -> None:
    registry = rig.registry()
    assert await registry.execute(init_route(0).command, JUDGE) == Reply.ok()
    await registry.close()
    assert await registry.execute(progress(registry, 0), JUDGE) == Reply.error(SHUTTING_DOWN)
    assert await registry.execute(init_route(1).command, JUDGE) == Reply.error(SHUTTING_DOWN)
    assert await registry.restore(0, restore()) == Reply.error(SHUTTING_DOWN)
    assert 1 not in registry


async def test_several_boxes_are_restored_with_one_write(rig: Rig) -> None:
    registry = rig.registry()
    for box_id in (0, 1):
        assert await registry.execute(init_route(box_id).command, JUDGE) == Reply.ok()
    syncs = rig.disk.syncs_of(LOG)
    replies = await registry.restore_all({0: restore(), 1: restore(), 2: restore()})
    assert all(reply.code is None for reply in replies.values())
    assert rig.disk.syncs_of(LOG) == syncs + 1
    assert [(e["boxId"], e["action"]) for e in rig.log()[2:]] == [(0, "RESTORE"), (1, "RESTORE"), (2, "RESTORE")]
    assert registry.box_ids() == [0, 1, 2] and all(registry.state(b)["boxVersion"] == 4 for b in (0, 1, 2))


async def test_a_restore_of_several_boxes_that_cannot_commit_restores_none(rig: Rig) -> None:
    registry = rig.registry()
    for box_id in (0, 1):
        assert await registry.execute(init_route(box_id).command, JUDGE) == Reply.ok()
    before = {box_id: registry.state(box_id) for box_id in (0, 1)}
    rig.disk.inject("fdatasync", errno.EIO, path_contains=LOG)
    replies = await registry.restore_all({0: restore(), 1: restore()})
    assert replies == {0: Reply.error(STORAGE_UNAVAILABLE), 1: Reply.error(STORAGE_UNAVAILABLE)}
    assert {box_id: registry.state(box_id) for box_id in (0, 1)} == before
    assert [e["action"] for e in rig.log()] == ["INIT_ROUTE", "INIT_ROUTE"]


async def test_a_box_that_refuses_its_restore_aborts_the_others(rig: Rig) -> None:
    registry = rig.registry()
    for box_id in (0, 1):
        assert await registry.execute(init_route(box_id).command, JUDGE) == Reply.ok()
    before = {box_id: registry.state(box_id) for box_id in (0, 1)}
    # No room above the second one's version: it refuses before joining, and must not keep box 0 waiting.
    replies = await asyncio.wait_for(registry.restore_all({0: restore(), 1: restore(MAX_BOX_VERSION)}), 10)
    assert replies[0] == Reply.error(RESTORE_ABORTED) and replies[1].code == RESTORE_REFUSED
    assert {box_id: registry.state(box_id) for box_id in (0, 1)} == before
    assert [e["action"] for e in rig.log()] == ["INIT_ROUTE", "INIT_ROUTE"]


def adopt_unavailable(rig: Rig) -> BoxRegistry:
    registry = rig.registry()
    registry.adopt(Recovery(restored=[], unavailable=[UnavailableBox(4, seq=6, box_version=5,
                                                                     reason="its log lacks seq 3")]))
    return registry


async def test_an_unavailable_box_stays_unavailable_to_reads_and_commands(rig: Rig) -> None:
    registry = adopt_unavailable(rig)
    assert registry.unavailable_boxes() == {4: "its log lacks seq 3"}
    assert registry.box_ids() == [] and registry.public_boxes() == []
    with pytest.raises(BoxUnavailable):
        registry.state(4)
    with pytest.raises(BoxUnavailable):
        registry.snapshot(4)
    command = parse_command({"type": "PROGRESS_UPDATE", "boxId": 4, "delta": 1, "sessionId": "any"})
    assert await registry.execute(command, ADMIN) == Reply.error(BOX_UNAVAILABLE)
    assert await registry.execute(init_route(4).command, JUDGE) == Reply.error(BOX_UNAVAILABLE)
    assert registry.unavailable_boxes() == {4: "its log lacks seq 3"} and rig.log() == []


@pytest.mark.parametrize("way", ["restore", "rollback", "an admin starts it over"])
async def test_an_unavailable_box_comes_back_by_a_restore_a_rollback_or_an_admin_starting_it_over(
        rig: Rig, way: str) -> None:
    registry = adopt_unavailable(rig)
    if way == "an admin starts it over":
        reply = await registry.execute(init_route(4).command, ADMIN)
    else:
        source = "backup zip" if way == "restore" else "rollback to version 2"
        reply = await registry.restore(4, RestoreBox({**default_state("saved"), "boxVersion": 2}, source, ADMIN))
    assert reply.code is None
    assert registry.unavailable_boxes() == {} and registry.box_ids() == [4]
    assert registry.state(4)["boxVersion"] == 6  # above every version its history names
    [event] = rig.log()
    assert (event["seq"], "restoredState" in event) == (7, True)  # replays without the lost history
