"""Finds or creates the actor of a box; the entry point transport uses for commands and reads."""
from __future__ import annotations

import asyncio
import dataclasses
import logging
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from actors.box_actor import BoxActor
from actors.codes import INTERNAL_ERROR, SHUTTING_DOWN
from actors.messages import Clock, Execute, Fanout, Origin, Reply, Republish, RestoreBox
from actors.persister import GroupCommit, Persister
from actors.recovery.restore import Recovery
from actors.rules import Command, build_public_box, build_snapshot, default_state
from actors.runtime import NOT_NOW, ActorFailed, ActorStopped, ActorSystem

log = logging.getLogger("belay.registry")


class BoxUnavailable(Exception):
    """A read of a box whose history cannot rebuild it: there is no state to show (BOX_UNAVAILABLE)."""

    def __init__(self, box_id: int, reason: str) -> None:
        super().__init__(f"box {box_id} is unavailable: {reason}")
        self.box_id = box_id
        self.reason = reason


class BoxRegistry:
    def __init__(self, system: ActorSystem, persister: Persister, fanout: Fanout, clock: Clock,
                 officials: Callable[[], Mapping[str, str]]) -> None:
        self._system = system
        self._persister = persister
        self._fanout = fanout
        self._clock = clock
        self._officials = officials
        self._boxes: dict[int, BoxActor] = {}
        # A box not created yet shows this sessionId; the box adopts it when it is created,
        # so a client that read the default snapshot can send commands with it.
        self._provisional: dict[int, str] = {}
        self._closed = False

    # -- lifecycle -------------------------------------------------------------------------------

    def adopt(self, recovery: Recovery) -> None:
        for box in recovery.restored:
            self._spawn(box.box_id, box.state, box.seq).arm_timer()
        for lost in recovery.unavailable:
            # Only the last version is known: whatever brings the box back goes on above it.
            placeholder = {**default_state(str(uuid.uuid4())), "boxVersion": lost.box_version}
            self._spawn(lost.box_id, placeholder, lost.seq, unavailable=lost.reason)

    async def close(self) -> None:
        """Stop taking commands, let each box finish its current one, then stop the boxes."""
        self._closed = True
        for actor in self._boxes.values():
            actor.stop()
        for actor in self._boxes.values():
            await actor.finished.wait()

    # -- commands --------------------------------------------------------------------------------

    async def execute(self, command: Command, origin: Origin) -> Reply:
        return await self._ask(command.box_id, Execute(command, origin))

    async def restore(self, box_id: int, message: RestoreBox) -> Reply:
        return await self._ask(box_id, message)

    async def restore_all(self, restores: Mapping[int, RestoreBox]) -> dict[int, Reply]:
        """Several boxes at once: their events share one write, so all are restored or none is."""
        if len(restores) == 1:
            [(box_id, message)] = restores.items()
            return {box_id: await self.restore(box_id, message)}
        group = GroupCommit(self._persister, len(restores))

        async def one(box_id: int, message: RestoreBox) -> Reply:
            reply = await self._ask(box_id, dataclasses.replace(message, group=group))
            if reply.code is not None:
                group.abort()  # a box that failed before joining must not keep the others waiting
            return reply

        replies = await asyncio.gather(*(one(box_id, message) for box_id, message in restores.items()))
        return dict(zip(restores, replies))

    async def _ask(self, box_id: int, message: object) -> Reply:
        """In this task if the box can (`Actor.try_now`), else through its mailbox."""
        if self._closed:
            return Reply.error(SHUTTING_DOWN)
        actor = self._boxes.get(box_id) or self._create(box_id)
        try:
            reply: Reply = actor.try_now(message)
            if reply is NOT_NOW:
                reply = await actor.ask(message)
            return reply
        except ActorStopped:
            return Reply.error(SHUTTING_DOWN)
        except ActorFailed:
            return Reply.error(INTERNAL_ERROR)

    def republish_all(self) -> None:
        """Every box sends its snapshot again (the officials in it changed)."""
        for actor in self._boxes.values():
            if not actor.stopping:
                actor.tell(Republish())

    # -- reads (never create a box) --------------------------------------------------------------

    def __contains__(self, box_id: int) -> bool:
        return box_id in self._boxes

    def box_ids(self) -> list[int]:
        """The boxes that have a state (not the unavailable ones)."""
        return sorted(box_id for box_id, actor in self._boxes.items() if actor.unavailable is None)

    def unavailable_boxes(self) -> dict[int, str]:
        """Boxes whose history cannot rebuild them, with the reason, until an admin brings them back."""
        return {box_id: actor.unavailable for box_id, actor in sorted(self._boxes.items())
                if actor.unavailable is not None}

    def state(self, box_id: int) -> dict[str, Any]:
        """Raises BoxUnavailable rather than pretend such a box is fresh."""
        actor = self._boxes.get(box_id)
        if actor is not None:
            if actor.unavailable is not None:
                raise BoxUnavailable(box_id, actor.unavailable)
            return actor.state
        return default_state(self._provisional_session(box_id))

    def now_ms(self) -> int:
        """The boxes' clock: anything that reads their timers (a backup snapshot) reads it too."""
        return self._clock.now_ms()

    def snapshot(self, box_id: int) -> dict[str, Any]:
        return build_snapshot(self.state(box_id), box_id, self._clock.now_ms(), self._officials())

    def public_boxes(self) -> list[dict[str, Any]]:
        now_ms = self._clock.now_ms()
        return [build_public_box(a.state, box_id, now_ms) for box_id, a in sorted(self._boxes.items())
                if a.unavailable is None]

    def public_box(self, box_id: int) -> dict[str, Any]:
        return build_public_box(self.state(box_id), box_id, self._clock.now_ms())

    # -- internals -------------------------------------------------------------------------------

    def _provisional_session(self, box_id: int) -> str:
        session = self._provisional.get(box_id)
        if session is None:
            session = self._provisional[box_id] = str(uuid.uuid4())
        return session

    def _create(self, box_id: int) -> BoxActor:
        state = default_state(self._provisional.pop(box_id, "") or str(uuid.uuid4()))
        return self._spawn(box_id, state, 0)

    def _spawn(self, box_id: int, state: dict[str, Any], seq: int, unavailable: str | None = None) -> BoxActor:
        actor = BoxActor(box_id, state, seq, persister=self._persister, fanout=self._fanout,
                         clock=self._clock, officials=self._officials, unavailable=unavailable)
        self._boxes[box_id] = actor
        self._system.spawn(actor)
        return actor
